"""The evaluation harness: play a task family's held-out suites and record curve points.

Components and what they own:
- ``Evaluator``: which suites, how many episodes, the list of recorded points and sweeps.
  It plays episodes through anything with ``play(specs) -> list[EpisodeResult]`` (the rollout
  fleet in production, a fake in unit tests) and never references the training controller.
- ``evaluation.metrics``: episodes -> numbers; ``evaluation.report``: numbers -> files.

Wiring rule: the controller calls ``Evaluator.run(stage, step, meter)`` at the init, every K
updates (``EvaluationConfig.due``) and at stage ends; the evaluator reads the meter's training
compute for the x-axis and adds its own tokens to ``meter.eval_tokens`` (off the axis).
Each point is appended to ``<out_dir>/eval_points.jsonl`` at once, so a crashed run keeps its
curve.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from envs.families import family
from evaluation.config import EvaluationConfig
from evaluation.flops import ComputeMeter, turn_tokens
from evaluation.metrics import headline, suite_metrics
from rollout.runner import EpisodeResult, EpisodeSpec

POINTS_FILE = "eval_points.jsonl"
SWEEPS_FILE = "viter_sweeps.jsonl"

# The config field holding each family's verification budget (the study's VIter): GP counts
# attempts per hand, V-IRL tries per route point.
BUDGET_FIELD: dict[str, str] = {"generalpoints": "viter", "virl": "tries_per_point"}


class EpisodePlayer(Protocol):
    def play(self, specs: list[EpisodeSpec]) -> list[EpisodeResult]: ...


def with_budget(family_name: str, config: dict[str, Any], budget: int) -> dict[str, Any]:
    """A suite config with its verification budget replaced."""
    return config | {BUDGET_FIELD[family_name]: budget}


@dataclass
class Evaluator:
    """Plays the selected held-out suites and keeps every point and sweep of one run."""

    player: EpisodePlayer
    family_name: str
    task_config: dict[str, Any]
    """The TRAINING task config dict; the family derives each suite from it."""
    cfg: EvaluationConfig
    out_dir: Path | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    """How the player samples (temperature, max_new_tokens), recorded in the report."""
    points: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cfg.episodes is None:
            raise ValueError("episodes: resolve it (EvaluationConfig.episodes) before evaluating")
        all_suites = family(self.family_name).suites(self.task_config)
        wanted = self.cfg.suites or list(all_suites)
        missing = [s for s in wanted if s not in all_suites]
        if missing:
            raise ValueError(
                f"suites: {missing} not defined for this task (it has {list(all_suites)}; "
                "ood_visual needs observation_mode: image)"
            )
        self.suites: dict[str, dict[str, Any]] = {s: all_suites[s] for s in wanted}
        if self.out_dir is not None:
            self.out_dir = Path(self.out_dir)
            self.out_dir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ playing

    def play_suite(self, tag: str, name: str, suite: dict[str, Any]) -> list[EpisodeResult]:
        """Play one suite's held-out episodes (the same hands/routes on every call)."""
        assert self.cfg.episodes is not None
        options = family(self.family_name).eval_reset_options(
            suite, self.cfg.episodes, self.cfg.seed
        )
        specs = [
            EpisodeSpec(f"eval-{tag}-{name}-{i}", self.family_name, suite, o)
            for i, o in enumerate(options)
        ]
        return self.player.play(specs)

    def _play_all(
        self, tag: str, suites: dict[str, dict[str, Any]], meter: ComputeMeter | None
    ) -> tuple[dict[str, Any], dict[str, float]]:
        metrics: dict[str, Any] = {}
        timings: dict[str, float] = {}
        for name, suite in suites.items():
            start = time.perf_counter()
            episodes = self.play_suite(tag, name, suite)
            timings[f"timing/eval_{name}"] = round(time.perf_counter() - start, 3)
            metrics[name] = suite_metrics(episodes)
            if meter is not None:
                meter.add_eval_tokens(sum(turn_tokens(e.turns) for e in episodes))
        return metrics, timings

    # ------------------------------------------------------------------ public API

    def run(self, stage: str, step: int, meter: ComputeMeter | None = None) -> dict[str, Any]:
        """Evaluate every selected suite now; record and return the curve point.

        ``stage`` names the curve ("init", "sft", "rl", or "checkpoint"); ``step`` is the
        stage's update count. The x-axis is the meter's training GFLOPs (0 without a meter).
        """
        metrics, timings = self._play_all(f"{stage}{step}", self.suites, meter)
        point = {
            "stage": stage,
            "step": step,
            "train_gflops": meter.total_gflops if meter is not None else 0.0,
            "compute": meter.to_dict() if meter is not None else None,
            "suites": metrics,
            "timings": timings,
            "time": time.time(),
        }
        self.points.append(point)
        self._append(POINTS_FILE, point)
        return point

    def drop_stage(self, stage: str) -> None:
        """Forget every point of ``stage`` (in memory and on disk) before it is replayed."""
        self.points = [p for p in self.points if p["stage"] != stage]
        if self.out_dir is not None:
            text = "".join(json.dumps(p) + "\n" for p in self.points)
            (self.out_dir / POINTS_FILE).write_text(text)

    def sweep_viter(
        self,
        stage: str,
        step: int,
        budgets: list[int] | None = None,
        meter: ComputeMeter | None = None,
    ) -> dict[str, Any]:
        """Play the selected suites once per verification budget (the study's VIter sweep)."""
        budgets = budgets if budgets is not None else list(self.cfg.viter_sweep)
        if not budgets:
            raise ValueError("viter_sweep: no budgets to sweep")
        by_suite: dict[str, dict[str, Any]] = {name: {} for name in self.suites}
        for budget in budgets:
            suites = {
                name: with_budget(self.family_name, suite, budget)
                for name, suite in self.suites.items()
            }
            metrics, _ = self._play_all(f"{stage}{step}-viter{budget}", suites, meter)
            for name, m in metrics.items():
                by_suite[name][str(budget)] = m
        sweep = {"stage": stage, "step": step, "budgets": budgets, "suites": by_suite}
        self.sweeps.append(sweep)
        self._append(SWEEPS_FILE, sweep)
        return sweep

    def log_metrics(self, point: dict[str, Any]) -> dict[str, float]:
        """A point flattened for the metrics logger: ``eval/<suite>/<metric>``."""
        out: dict[str, float] = {"eval/train_gflops": point["train_gflops"]}
        for name, m in point["suites"].items():
            for metric in ("success", "step_accuracy", "recognition", "first_try"):
                value = headline(m, metric)
                if value is not None:
                    out[f"eval/{name}/{metric}"] = value[0]
                    out[f"eval/{name}/{metric}_stderr"] = value[1]
        return out

    def _append(self, filename: str, record: dict[str, Any]) -> None:
        if self.out_dir is None:
            return
        with open(self.out_dir / filename, "a") as f:
            f.write(json.dumps(record) + "\n")


def load_records(run_dir: str | Path, filename: str) -> list[dict[str, Any]]:
    """Points or sweeps a run appended so far (empty if none)."""
    path = Path(run_dir) / filename
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
