"""Metrics reach the node's Prometheus endpoint (what the Ray dashboard shows), TensorBoard
event files and the JSONL log."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import ray

from cluster.metrics import MetricsLogger, prometheus_name

# Ray exports custom metrics every ~10 s; allow a few rounds.
EXPORT_WAIT_S = 60


def test_metrics_on_the_prometheus_endpoint(ray_cluster, tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path, "metrics-test", ["tensorboard", "jsonl"])
    values = {
        "rollout/episode_reward_mean": 1.25,
        "buffer/size_episodes": 7.0,
        "timing/learner_step": 0.8,
        "rollout/episodes_delta": 16.0,
    }
    logger.log(1, values)
    logger.log(2, values | {"rollout/episodes_delta": 4.0})
    logger.close()
    node = next(n for n in ray.nodes() if n["Alive"])
    url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    wanted = {
        prometheus_name("rollout/episode_reward_mean"): "1.25",
        prometheus_name("buffer/size_episodes"): "7.0",
        "veriray_episodes_total": "20.0",
    }
    deadline = time.monotonic() + EXPORT_WAIT_S
    found: dict[str, str] = {}
    while time.monotonic() < deadline and len(found) < len(wanted):
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        for line in text.splitlines():
            for name in wanted:
                # Ray prefixes application metrics with "ray_" on the endpoint.
                if line.startswith(f"ray_{name}{{") and 'run="metrics-test"' in line:
                    found[name] = line.rsplit(" ", 1)[-1]
        time.sleep(2)
    assert {k: float(v) for k, v in found.items()} == {k: float(v) for k, v in wanted.items()}
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
