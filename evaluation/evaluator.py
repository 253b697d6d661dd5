"""The evaluation harness: play a task family's held-out suites and record curve points.

Components and what they own:
- ``Evaluator``: which suites, how many episodes, the list of recorded points and sweeps.
  It plays episodes through anything with ``play(specs, progress) -> list[EpisodeResult]``
  (the rollout fleet in production, a fake in unit tests) and never references the training
  controller.
- ``evaluation.metrics``: episodes -> numbers; ``evaluation.report``: numbers -> files.

Wiring rule: the controller calls ``Evaluator.run(stage, step, meter)`` at the init, every K
updates (``EvaluationConfig.due``) and at stage ends; the evaluator reads the meter's training
compute for the x-axis and adds its own tokens to ``meter.eval_tokens`` (off the axis).
Each point is appended to ``<out_dir>/eval_points.jsonl`` at once, so a crashed run keeps its
curve.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from envs.families import family
from evaluation.config import TUNING_SUITES, EvaluationConfig
from evaluation.flops import ComputeMeter, turn_tokens
from evaluation.metrics import headline, suite_metrics
from evaluation.samples import append_samples, drop_samples, sample_rows
from rollout.runner import EpisodeResult, EpisodeSpec

logger = logging.getLogger(__name__)

POINTS_FILE = "eval_points.jsonl"
SWEEPS_FILE = "viter_sweeps.jsonl"


def prompt_id(options: dict[str, Any]) -> str:
    """A stable id of one prompt: a hash of its reset options (the task state)."""
    text = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class SuitePrompts:
    """A suite's distinct prompts, in play order."""

    options: list[dict[str, Any]]  # env.reset options
    ids: list[str]  # prompt_id of each
    texts: list[str]  # the first user turn of each
    in_suite: int  # the suite's distinct prompts before the cap (= len(ids) when uncapped)


class EpisodePlayer(Protocol):
    def play(
        self, specs: list[EpisodeSpec], progress: Callable[[int], Any] | None = None
    ) -> list[EpisodeResult]:
        """Play every spec once, results in order; ``progress(n)`` as n episodes finish."""
        ...


def with_budget(family_name: str, config: dict[str, Any], budget: int) -> dict[str, Any]:
    """A suite config with its verification budget (the family's ``budget_field``, the
    study's VIter) replaced."""
    budget_field = family(family_name).budget_field
    if budget_field is None:
        raise ValueError(f"task family {family_name} has no verification budget to sweep")
    return config | {budget_field: budget}


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
    sample_sink: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None
    """Hears each point with its samples rows (the controller sends a few to the trackers)."""
    points: list[dict[str, Any]] = field(default_factory=list)
    sweeps: list[dict[str, Any]] = field(default_factory=list)
    _prompts: dict[str, SuitePrompts] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        all_suites = family(self.family_name).suites(self.task_config)
        wanted = self.cfg.suites or [s for s in all_suites if s not in TUNING_SUITES]
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

    def suite_prompts(self, name: str, suite: dict[str, Any]) -> SuitePrompts:
        """The suite's distinct prompts: reset options, stable ids and first-turn texts (the
        same at every point of the run; computed once per suite config)."""
        key = json.dumps(suite, sort_keys=True, default=str)
        if key not in self._prompts:
            fam = family(self.family_name)
            # Every prompt first, so a capped suite still reports how many it samples from.
            options = fam.eval_reset_options(suite, None, self.cfg.seed)
            in_suite = len(options)
            if self.cfg.episodes is not None and in_suite > self.cfg.episodes:
                options = fam.eval_reset_options(suite, self.cfg.episodes, self.cfg.seed)
            ids = [prompt_id(o) for o in options]
            if len(set(ids)) != len(ids):
                raise ValueError(f"suite {name}: the family returned the same prompt twice")
            env = fam.make_env(suite)
            texts = [str(env.reset(options=o)[0].get("text", "")) for o in options]
            self._prompts[key] = SuitePrompts(options, ids, texts, in_suite)
        return self._prompts[key]

    def play_suite(
        self,
        tag: str,
        name: str,
        suite: dict[str, Any],
        progress: Callable[[int], Any] | None = None,
    ) -> list[EpisodeResult]:
        """Play each of the suite's distinct prompts once (the same prompts on every call)."""
        prompts = self.suite_prompts(name, suite)
        specs = [
            EpisodeSpec(f"eval-{tag}-{name}-{i}", self.family_name, suite, o)
            for i, o in enumerate(prompts.options)
        ]
        return self.player.play(specs, progress=progress)

    def _play_all(
        self, tag: str, suites: dict[str, dict[str, Any]], meter: ComputeMeter | None
    ) -> tuple[dict[str, Any], dict[str, float], list[dict[str, Any]]]:
        metrics: dict[str, Any] = {}
        timings: dict[str, float] = {}
        samples: list[tuple[str, SuitePrompts, list[EpisodeResult]]] = []
        total = sum(len(self.suite_prompts(n, s).ids) for n, s in suites.items())
        # One bar per evaluation point, over every suite's prompts (a point takes minutes).
        bar = tqdm(total=total, desc=f"eval {tag}", unit="prompt")
        for name, suite in suites.items():
            start = time.perf_counter()
            bar.set_postfix(suite=name)
            episodes = self.play_suite(tag, name, suite, progress=bar.update)
            timings[f"timing/eval_{name}"] = round(time.perf_counter() - start, 3)
            prompts = self.suite_prompts(name, suite)
            extra = family(self.family_name).extra_metrics
            metrics[name] = suite_metrics(episodes) | {
                "distinct_prompts": len(prompts.ids),
                "prompts_in_suite": prompts.in_suite,
                "outcomes": {
                    "ids": prompts.ids,
                    "success": [int(e.success) for e in episodes],
                    "first_try": [int(bool(e.turns) and e.turns[0].success) for e in episodes],
                },
            }
            if extra is not None:
                metrics[name]["extra"] = {k: float(v) for k, v in extra(episodes).items()}
            samples.append((name, prompts, episodes))
            if meter is not None:
                meter.add_eval_tokens(sum(turn_tokens(e.turns) for e in episodes))
        bar.close()
        return metrics, timings, samples

    # ------------------------------------------------------------------ public API

    def run(
        self, stage: str, step: int, meter: ComputeMeter | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        """Evaluate every selected suite now; record and return the curve point.

        ``stage`` names the curve ("init", "sft", "rl", or "checkpoint"); ``step`` is the
        stage's update count; ``seed`` the training seed of an arm's point (None for the points
        every seed shares: base, init). The x-axis is the meter's training GFLOPs (0 without a
        meter).
        """
        tag = f"{stage}{step}" if seed is None else f"{stage}{step}-s{seed}"
        metrics, timings, samples = self._play_all(tag, self.suites, meter)
        point = {
            "stage": stage,
            "step": step,
            "seed": seed,
            "train_gflops": meter.total_gflops if meter is not None else 0.0,
            "compute": meter.to_dict() if meter is not None else None,
            "suites": metrics,
            "timings": timings,
            "time": time.time(),
        }
        self.points.append(point)
        self._append(POINTS_FILE, point)
        rows = [
            r
            for name, prompts, episodes in samples
            for r in sample_rows(point, name, prompts.ids, prompts.texts, episodes)
        ]
        if self.out_dir is not None:
            append_samples(self.out_dir, rows)
        if self.sample_sink is not None:
            self.sample_sink(point, rows)
        return point

    def drop_stage(self, stage: str, seed: int | None = None, after_step: int = -1) -> None:
        """Forget the points of ``stage`` (of one training ``seed``, when given) whose step is
        past ``after_step`` (all of them by default), in memory and on disk, before they are
        replayed: a resumed arm replays everything after the checkpoint it starts from."""
        kept = [
            p
            for p in self.points
            if not (
                p["stage"] == stage
                and (seed is None or p.get("seed") == seed)
                and p["step"] > after_step
            )
        ]
        if len(kept) == len(self.points):
            return  # nothing to replay (a fresh run): leave the files alone
        self.points = kept
        if self.out_dir is not None:
            text = "".join(json.dumps(p) + "\n" for p in self.points)
            tmp = self.out_dir / f"{POINTS_FILE}.tmp"
            tmp.write_text(text)
            tmp.replace(self.out_dir / POINTS_FILE)  # never half a file
            drop_samples(self.out_dir, stage, seed, after_step)

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
            metrics, _, _ = self._play_all(f"{stage}{step}-viter{budget}", suites, meter)
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
            for metric in ("success", "step_accuracy", "recognition", "first_try", "translation"):
                value = headline(m, metric)
                if value is not None:
                    out[f"eval/{name}/{metric}"] = value[0]
                    out[f"eval/{name}/{metric}_stderr"] = value[1]
            for key, value in m.get("extra", {}).items():  # the family's own numbers
                out[f"eval/{name}/{key}"] = value
        return out

    def _append(self, filename: str, record: dict[str, Any]) -> None:
        if self.out_dir is None:
            return
        with open(self.out_dir / filename, "a") as f:
            f.write(json.dumps(record) + "\n")


def load_records(run_dir: str | Path, filename: str) -> list[dict[str, Any]]:
    """Points or sweeps a run appended so far (empty if none).

    A crash while appending can leave the last line torn: it is dropped with a warning (its
    point is replayed on resume). A bad line anywhere else is damage, and an error."""
    path = Path(run_dir) / filename
    if not path.is_file():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if i < len(lines) - 1:
                raise ValueError(f"{path}: line {i + 1} is not JSON ({err})") from err
            logger.warning("%s: dropped a torn last line (an append cut short)", path)
    return records
