"""Metrics to the Ray dashboard (Prometheus) and the run's trackers (TensorBoard, a JSONL
file, wandb offline, MLflow local; cluster/tracking.py), in one call.

Names keep fixed namespaces (``rollout/``, ``learner/``, ``buffer/``, ``eval/``, ``timing/``,
``perf/``; see docs/metrics.md). On the dashboard a name becomes a gauge
``veriray_<namespace>_<name>`` tagged with the run; ``timing/*`` values also feed a histogram
per stage, and ``*_total`` counters count episodes and tokens across the run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cluster.tracking import DEFAULT_TRACKING, Tracker, make_trackers

_INVALID = re.compile(r"[^a-zA-Z0-9_]")
# Stage timings on CPU run from milliseconds (env steps) to many minutes (SFT epochs).
TIMING_BOUNDARIES_S = [0.01, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800]
COUNTERS = {"rollout/episodes_delta": "episodes_total", "rollout/tokens_delta": "tokens_total"}


def prometheus_name(key: str) -> str:
    return "veriray_" + _INVALID.sub("_", key)


class MetricsLogger:
    """The dashboard's gauges, counters and histograms, plus every tracker in ``tracking``."""

    def __init__(
        self,
        run_dir: str | Path,
        run_name: str,
        tracking: list[str] | tuple[str, ...] = tuple(DEFAULT_TRACKING),
        config: dict[str, Any] | None = None,
    ) -> None:
        self.run_name = run_name
        self.run_dir = Path(run_dir)
        self._gauges: dict[str, Any] = {}
        self._histograms: dict[str, Any] = {}
        self._counters: dict[str, Any] = {}
        self.trackers: list[Tracker] = make_trackers(tracking, self.run_dir, run_name, config)

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
        for tracker in self.trackers:
            tracker.log(step, values)

    def log_samples(self, step: int, key: str, rows: list[dict[str, Any]]) -> None:
        """A samples table (prompt, response, reward, verdict, ...) to every tracker."""
        if rows:
            for tracker in self.trackers:
                tracker.log_samples(step, key, rows)

    def close(self) -> None:
        for tracker in self.trackers:
            tracker.close()
