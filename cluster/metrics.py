"""Metrics to the Ray dashboard (Prometheus), TensorBoard and a JSONL file, in one call.

Names keep fixed namespaces (``rollout/``, ``learner/``, ``buffer/``, ``eval/``, ``timing/``,
``perf/``; see docs/metrics.md). On the dashboard a name becomes a gauge
``veriray_<namespace>_<name>`` tagged with the run; ``timing/*`` values also feed a histogram
per stage, and ``*_total`` counters count episodes and tokens across the run.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
# Stage timings on CPU run from milliseconds (env steps) to many minutes (SFT epochs).
TIMING_BOUNDARIES_S = [0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800]
COUNTERS = {"rollout/episodes_delta": "episodes_total", "rollout/tokens_delta": "tokens_total"}


def prometheus_name(key: str) -> str:
    return "veriray_" + _INVALID.sub("_", key)


class MetricsLogger:
    def __init__(self, run_dir: str | Path, run_name: str, tensorboard: bool = True) -> None:
        self.run_name = run_name
        self.path = Path(run_dir) / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._gauges: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}
        self._counters: dict[str, Any] = {}
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, step: int, values: dict[str, float]) -> None:
        """Record ``values`` at ``step`` everywhere."""
        from ray.util import metrics as ray_metrics

        tags = {"run": self.run_name}
        for key, value in values.items():
            if not isinstance(value, int | float):
                continue
            if key in COUNTERS:
                name = prometheus_name(COUNTERS[key])
                if name not in self._counters:
                    self._counters[name] = ray_metrics.Counter(
                        name, description=f"veriray {COUNTERS[key]}", tag_keys=("run",)
                    )
                self._counters[name].inc(float(value), tags=tags)
                continue
            name = prometheus_name(key)
            if name not in self._gauges:
                self._gauges[name] = ray_metrics.Gauge(
                    name, description=f"veriray {key}", tag_keys=("run",)
                )
            self._gauges[name].set(float(value), tags=tags)
            if key.startswith("timing/"):
                hname = prometheus_name("timing_hist/" + key.split("/", 1)[1])
                if hname not in self._histograms:
                    self._histograms[hname] = ray_metrics.Histogram(
                        hname,
                        description=f"veriray {key} (s)",
                        boundaries=TIMING_BOUNDARIES_S,
                        tag_keys=("run",),
                    )
                self._histograms[hname].observe(float(value), tags=tags)
            if self.writer is not None:
                self.writer.add_scalar(key, float(value), step)
        with self.path.open("a") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
