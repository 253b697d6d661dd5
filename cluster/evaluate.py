"""Evaluate one model (asset, HF folder or training checkpoint) on its own rollout workers.

Used by the main job (``veriray run``) and by ``veriray eval CHECKPOINT``. Scheduled evaluation
during training does NOT come here: the controller builds an ``Evaluator`` on the training
fleet once and calls ``run`` every K updates.

In cluster/ (it was evaluation/run.py) because it wires components: it resolves the model
(learner.assets), starts a rollout fleet and plays evaluation's suites on it, and cluster/ is
the only package that wires components.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cluster.config import ExperimentConfig
from evaluation.config import EvaluationConfig
from evaluation.evaluator import POINTS_FILE, SWEEPS_FILE, Evaluator
from evaluation.flops import ComputeMeter
from evaluation.report import build_report, write_report
from rollout.config import RolloutConfig

CHECKPOINT_HF_DIR = "hf"  # learner.checkpoint.HF_DIR (not imported: that module pulls torch)
TRAINER_STATE = "trainer_state.json"


@dataclass
class ResolvedModel:
    model_path: Path
    """The Hugging Face folder the engines load."""
    checkpoint_dir: Path | None
    """The training checkpoint holding it (compute.json, trainer_state.json), if any."""
    multimodal: bool


def resolve_model(name_or_path: str, multimodal: bool = False) -> ResolvedModel:
    """An asset name, a HF folder, or a training checkpoint folder (with ``hf/`` inside)."""
    from learner.assets import ASSETS, resolve_model_path

    path = Path(name_or_path).expanduser()
    checkpoint_dir: Path | None = None
    if (path / CHECKPOINT_HF_DIR / "config.json").is_file():
        checkpoint_dir, model_path = path, path / CHECKPOINT_HF_DIR
    else:
        model_path = resolve_model_path(name_or_path)
        if path.name == CHECKPOINT_HF_DIR and (path.parent / TRAINER_STATE).is_file():
            checkpoint_dir = path.parent
    asset_mm = name_or_path in ASSETS and ASSETS[name_or_path].multimodal
    config = json.loads((model_path / "config.json").read_text())
    return ResolvedModel(
        model_path, checkpoint_dir, multimodal or asset_mm or "vision_config" in config
    )


def checkpoint_step(checkpoint_dir: Path | None) -> int:
    """Optimizer steps of a training checkpoint (0 for a plain model folder)."""
    if checkpoint_dir is None or not (checkpoint_dir / TRAINER_STATE).is_file():
        return 0
    return int(json.loads((checkpoint_dir / TRAINER_STATE).read_text()).get("step", 0))


def resolved_eval_config(cfg: ExperimentConfig) -> EvaluationConfig:
    """The evaluation section with its defaults filled from the experiment (pinned values)."""
    ev = cfg.evaluation
    return replace(ev, episodes=ev.episodes if ev.episodes is not None else cfg.episodes)


def eval_rollout_config(rollout: RolloutConfig, ev: EvaluationConfig) -> RolloutConfig:
    """Rollout workers dedicated to evaluation sample with the evaluation's pinned values."""
    return replace(
        rollout,
        temperature=rollout.temperature if ev.temperature is None else ev.temperature,
        max_new_tokens=rollout.max_new_tokens if ev.max_new_tokens is None else ev.max_new_tokens,
    )


def sampling_of(rollout: RolloutConfig) -> dict[str, Any]:
    return {
        "temperature": rollout.temperature,
        "top_p": rollout.top_p,
        "max_new_tokens": rollout.max_new_tokens,
        "engine_seed": rollout.seed,
    }


def evaluate_model(
    cfg: ExperimentConfig,
    model: ResolvedModel,
    out_dir: Path,
    timings: dict[str, float],
    stage: str = "init",
    meter: ComputeMeter | None = None,
) -> dict[str, Any]:
    """Start workers, play the suites (and the VIter sweep if configured), write the report.

    Needs a connected Ray cluster. ``timings`` receives ``timing/<stage>`` entries.
    """
    from rollout.fleet import start_fleet

    ev = resolved_eval_config(cfg)
    rollout = eval_rollout_config(cfg.rollout, ev)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in (POINTS_FILE, SWEEPS_FILE):  # a fresh report, not appended to an old one
        (out_dir / stale).unlink(missing_ok=True)
    if meter is None:
        start = time.perf_counter()
        loaded = ComputeMeter.load_or_none(model.checkpoint_dir) if model.checkpoint_dir else None
        meter = loaded or ComputeMeter.for_model(model.model_path)
        timings["timing/count_parameters"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    fleet = start_fleet(
        model.model_path, rollout, model.multimodal, out_dir / "images", cfg.placement
    )
    # Actor creation returns at once: the engine build is part of the first suite's timing
    # until the fleet offers a readiness call.
    timings["timing/workers_start"] = round(time.perf_counter() - start, 3)
    try:
        evaluator = Evaluator(
            fleet, cfg.task.family, cfg.task.active_dict(), ev, out_dir, sampling_of(rollout)
        )
        evaluator.run(stage, checkpoint_step(model.checkpoint_dir), meter)
        if ev.viter_sweep:
            start = time.perf_counter()
            evaluator.sweep_viter(stage, evaluator.points[-1]["step"], meter=meter)
            timings["timing/viter_sweep"] = round(time.perf_counter() - start, 3)
    finally:
        fleet.shutdown()
    meta = {
        "name": cfg.name,
        "model": cfg.model.name,
        "model_path": str(model.model_path),
        "task": cfg.task.family,
        "task_config": cfg.task.active_dict(),
        "evaluation": asdict(ev),
        "episodes_per_suite": ev.episodes,
        "seed": ev.seed,
        "sampling": evaluator.sampling,
        "n_params": meter.n_params,
    }
    start = time.perf_counter()
    report = build_report(meta, evaluator.points, evaluator.sweeps, timings)
    write_report(out_dir, report)
    report["timings"]["timing/report"] = round(time.perf_counter() - start, 3)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate_checkpoint(
    cfg: ExperimentConfig, checkpoint: str, out_dir: Path, stage: str = "checkpoint"
) -> dict[str, Any]:
    """``veriray eval``: an embedded (or configured) Ray cluster, one model, one report."""
    import ray

    from cluster.ray_runtime import init_ray

    timings: dict[str, float] = {}
    start = time.perf_counter()
    init_ray(cfg.ray)
    timings["timing/ray_init"] = round(time.perf_counter() - start, 3)
    try:
        start = time.perf_counter()
        model = resolve_model(checkpoint, cfg.model.multimodal)
        timings["timing/model_prepare"] = round(time.perf_counter() - start, 3)
        cfg = replace(cfg, model=replace(cfg.model, name=checkpoint, multimodal=model.multimodal))
        return evaluate_model(cfg, model, out_dir, timings, stage=stage)
    finally:
        ray.shutdown()
