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

from cluster.config import ExperimentConfig, save_config
from common.typed_config import ConfigError
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


def resolve_model(
    name_or_path: str, multimodal: bool | None = None, download: bool = False
) -> ResolvedModel:
    """An asset name, a HF folder or model id, or a training checkpoint folder (with ``hf/``
    inside). ``multimodal`` None: detected from the model's config.json."""
    from learner.assets import is_multimodal, resolve_model_path

    path = Path(name_or_path).expanduser()
    checkpoint_dir: Path | None = None
    if (path / CHECKPOINT_HF_DIR / "config.json").is_file():
        checkpoint_dir, model_path = path, path / CHECKPOINT_HF_DIR
    else:
        model_path = resolve_model_path(name_or_path, download)
        if path.name == CHECKPOINT_HF_DIR and (path.parent / TRAINER_STATE).is_file():
            checkpoint_dir = path.parent
    if multimodal is None:
        multimodal = is_multimodal(model_path, name_or_path)
    return ResolvedModel(model_path, checkpoint_dir, multimodal)


def with_chat_overrides(model: ResolvedModel, cfg: ExperimentConfig, folder: Path) -> ResolvedModel:
    """``model`` as the config's chat_template / system_prompt format it: a view of its folder
    under ``folder`` (learner/assets/chat_view.py), or the model itself without overrides."""
    from learner.assets.chat_view import chat_view

    text = cfg.model.chat_template_text()
    view = chat_view(model.model_path, folder, text, cfg.model.system_prompt)
    return replace(model, model_path=view)


def check_model(cfg: ExperimentConfig, name: str | None = None) -> ExperimentConfig:
    """Before Ray starts: the model exists (else a ConfigError naming model.name and what to
    do) and ``model.multimodal`` is settled (detected when null). Returns the settled config."""
    try:
        model = resolve_model(name or cfg.model.name, cfg.model.multimodal, cfg.model.download)
    except (FileNotFoundError, KeyError) as err:
        raise ConfigError(f"model.name: {err.args[0] if err.args else err}") from err
    from learner.assets.chat_view import current_template

    template = cfg.model.chat_template_text()  # a missing .jinja file fails here too
    needs_template = cfg.model.system_prompt is not None and template is None
    if needs_template and current_template(model.model_path) is None:
        raise ConfigError(
            f"model.system_prompt: {model.model_path} has no chat template to add it to; "
            "set model.chat_template too"
        )
    return replace(cfg, model=replace(cfg.model, multimodal=model.multimodal))


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
        "top_k": rollout.top_k,
        "min_p": rollout.min_p,
        "stop": list(rollout.stop),
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
    from cluster.run_logs import collect_worker_logs, driver_logs

    timings: dict[str, float] = {}
    cfg = check_model(cfg, checkpoint)  # a missing model fails here, before Ray starts
    out_dir.mkdir(parents=True, exist_ok=True)
    with driver_logs(out_dir) as logs:
        print(f"logs: {logs} (Ray, vLLM output; --verbose shows it here too)")
        start = time.perf_counter()
        init_ray(cfg.ray)
        timings["timing/ray_init"] = round(time.perf_counter() - start, 3)
        try:
            start = time.perf_counter()
            model = resolve_model(checkpoint, cfg.model.multimodal)
            model = with_chat_overrides(model, cfg, out_dir / "model")
            timings["timing/model_prepare"] = round(time.perf_counter() - start, 3)
            model_cfg = replace(cfg.model, name=checkpoint, multimodal=model.multimodal)
            cfg = replace(cfg, model=model_cfg)
            save_config(cfg, out_dir)  # the report folder says what it played, as a run's does
            return evaluate_model(cfg, model, out_dir, timings, stage=stage)
        finally:
            collect_worker_logs(out_dir)
            ray.shutdown()
