"""The controller: one experiment config in, every stage run, read top to bottom.

Components (each owns its state; none references the controller or another's internals):
- RolloutFleet (rollout/fleet.py): rollout workers (one vLLM engine each), env and verifier
  actor pools; plays episodes, streams them to the buffer, replaces dead actors, scales.
- LearnerGroup (learner/group.py): DeepSpeed ranks; SFT and PPO steps, checkpoints, exports.
- Replay buffer actor (rollout/buffer.py): versioned trajectories between rollout and learner.
- Weight transport (learner/weight_sync.py): learner -> engines (shared memory / NCCL).
- Evaluator (evaluation/evaluator.py): held-out ID/OOD suites -> curve points -> report.
- ControlActor (cluster/stages.py): `veriray scale` / `veriray status` while the job runs.
Wiring rule: the controller creates every component and passes handles between them.

Stages: base eval -> SFT warm start -> init eval -> for each training seed (study.seeds):
RL arm (generate -> train -> publish weights -> eval every K -> checkpoint), then the SFT arm
(continued SFT from the same warm-start weights, fresh optimizer, trained to the RL arm's
compute and evaluated at the same GFLOPs on the same prompts) -> report (the primary endpoint,
RL minus SFT out of distribution, first). The arms live in cluster/arms.py.
Every stage is timed (timing/<stage>) and logged to the dashboard and the trackers (`tracking`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from cluster.arms import StageTimer, rl_arm_with_restarts, sft_arm, stage_learner
from cluster.checkpoints import CHECKPOINTS_DIR, newest_complete
from cluster.config import ExperimentConfig, save_config
from cluster.evaluate import (
    check_model,
    eval_rollout_config,
    resolve_model,
    resolved_eval_config,
    sampling_of,
    with_chat_overrides,
)
from cluster.metrics import MetricsLogger
from cluster.ray_runtime import init_ray
from cluster.run_logs import collect_worker_logs, driver_logs
from cluster.stages import latest_checkpoint, sft_rows, start_control
from common.typed_config import ConfigError
from evaluation.evaluator import POINTS_FILE, SWEEPS_FILE, Evaluator, load_records
from evaluation.flops import COMPUTE_FILE, ComputeMeter
from evaluation.report import build_report, load_references, write_report
from evaluation.samples import SAMPLES_FILE, first_rows
from rollout.engine import Sampling
from rollout.fleet import RolloutFleet

# Written into a seed's folder when both of its arms are done, holding rl.updates: --resume
# skips that seed unless the run was extended (more updates continue from the checkpoint).
ARMS_DONE = "arms.done"


@dataclasses.dataclass
class EvalPlayer:
    """The fleet as the evaluator sees it: plays with the evaluation's pinned sampling."""

    fleet: RolloutFleet
    sampling: Sampling

    def play(self, specs: list[Any], progress: Any = None) -> list[Any]:
        return self.fleet.play(specs, sampling=self.sampling, progress=progress)


def run_experiment(cfg: ExperimentConfig, resume: bool = False) -> Path:
    """Run every enabled stage of ``cfg``; return the run folder (report.md inside).

    Ray's, vLLM's and DeepSpeed's output goes to <run>/logs (cluster/run_logs.py)."""
    cfg = check_model(cfg)  # a missing model fails here, before Ray starts
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with driver_logs(cfg.run_dir) as logs:
        print(f"logs: {logs} (Ray, vLLM, DeepSpeed output; --verbose shows it here too)")
        return _run_stages(cfg, resume)


def _run_stages(cfg: ExperimentConfig, resume: bool) -> Path:
    t, run_dir = StageTimer(announce=True), cfg.run_dir
    if resume and not (run_dir / "sft" / COMPUTE_FILE).is_file() and not _checkpoints(cfg):
        raise FileNotFoundError(f"--resume: no warm start or checkpoint under {run_dir}")
    if not resume:
        for stale in (POINTS_FILE, SWEEPS_FILE, SAMPLES_FILE, "metrics.jsonl"):
            (run_dir / stale).unlink(missing_ok=True)
    save_config(cfg, run_dir)  # what `veriray eval` / `compare` of this run play by default
    with t("ray_init"):
        handle = init_ray(cfg.ray)
    # The dashboard opens with a token dialog (Ray's token auth): say what to paste.
    print(
        f"Ray dashboard: {handle.dashboard_url} (it asks for a token: paste the output of "
        'cat "$(veriray ray token-path)")'
    )
    print(f"Scale rollout workers while it runs: veriray scale N --address {handle.gcs_address}")
    control = start_control(cfg)
    log = MetricsLogger(run_dir, cfg.name, cfg.tracking, tracked_config(cfg))
    with t("model_prepare"):
        model = resolve_model(cfg.model.name, cfg.model.multimodal)
        model = with_chat_overrides(model, cfg, run_dir / "model")
    meter = ComputeMeter.for_model(model.model_path)
    with t("fleet_start"):
        fleet = RolloutFleet(
            model.model_path, cfg.rollout, cfg.model.multimodal, run_dir / "images", cfg.placement
        )
    ev = make_evaluator(cfg, fleet, log)
    ev.points = load_records(run_dir, POINTS_FILE) if resume else []
    init_path, rows = str(model.model_path), []
    try:
        first = first_eval_stage(cfg, ev.points)
        if first is not None:
            with t(f"eval_{first}"):
                ev.run(first, 0, meter)
        if cfg.sft.enabled:
            init_path, meter, rows = sft_warm_start(cfg, fleet, ev, meter, log, t, resume)
        for seed in cfg.training_seeds:  # every seed's arms grow from the same init
            arm, done = cfg.arm_config(seed), cfg.arm_dir(seed) / ARMS_DONE
            if resume and done.is_file() and done.read_text() == str(cfg.rl.updates):
                continue  # both arms finished with this many RL updates
            checkpoint = latest_checkpoint(cfg.arm_dir(seed), print) if resume else None
            arm_meter = ComputeMeter.from_dict(meter.to_dict())
            if cfg.rl.enabled:
                with t(f"rl_arm_seed{seed}"):
                    timings = rl_arm_with_restarts(
                        arm, fleet, ev, arm_meter, log, control, init_path, checkpoint
                    )
                t.update(timings)
            if cfg.sft.enabled:
                with t(f"sft_arm_seed{seed}"):
                    sft_arm(arm, fleet, ev, ComputeMeter.from_dict(meter.to_dict()), log, rows)
            done.parent.mkdir(parents=True, exist_ok=True)
            done.write_text(str(cfg.rl.updates))
        with t("report"):
            meta, refs = report_meta(cfg, ev, meter), load_references(run_dir)
            report = build_report(meta, ev.points, ev.sweeps, dict(t), refs)
            write_report(run_dir, report)
        log.log(cfg.rl.updates if cfg.rl.enabled else 0, dict(t))
    finally:
        fleet.shutdown()
        log.close()
        collect_worker_logs(run_dir)  # before shutdown: the session folder is found through Ray
        ray.shutdown()
    return run_dir


def first_eval_stage(cfg: ExperimentConfig, points: list[dict[str, Any]]) -> str | None:
    """The evaluation before any training: "base" ahead of an SFT warm start (unless
    ``evaluation.base`` is off), "init" when RL starts from the model itself, None when a
    resumed run has it already or a shared warm start's run evaluated it."""
    if cfg.sft.warm_start_from or any(p["stage"] in ("base", "init") for p in points):
        return None
    if not cfg.sft.enabled:
        return "init"
    return "base" if cfg.evaluation.base else None


def tracked_config(cfg: ExperimentConfig) -> dict[str, Any]:
    """The experiment config as the trackers record it (plain JSON values)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def sample_key(cfg: ExperimentConfig, stage: str, suite: str, seed: int | None) -> str:
    """A samples table's name in the trackers, seed first like the metrics of several seeds."""
    key = f"samples/{stage}/{suite}"
    return f"seed{seed}/{key}" if seed is not None and cfg.study.seeds > 1 else key


def make_evaluator(
    cfg: ExperimentConfig, fleet: RolloutFleet, log: MetricsLogger | None = None
) -> Evaluator:
    """The held-out suites, played by the fleet with the evaluation's pinned sampling; with
    ``log``, the first ``samples_per_step`` rows of each suite at each point go to the
    trackers."""
    eval_cfg = resolved_eval_config(cfg)
    eval_rollout = eval_rollout_config(cfg.rollout, eval_cfg)
    player = EvalPlayer(fleet, Sampling.from_config(eval_rollout))
    ev = Evaluator(
        player,
        cfg.task.family,
        cfg.task.active_dict(),
        eval_cfg,
        cfg.run_dir,
        sampling_of(eval_rollout),
    )
    if log is not None and cfg.samples_per_step > 0:

        def sink(point: dict[str, Any], rows: list[dict[str, Any]]) -> None:
            by_suite: dict[str, list[dict[str, Any]]] = {}
            for r in first_rows(rows, cfg.samples_per_step):
                by_suite.setdefault(r["suite"], []).append(r)
            for suite, part in by_suite.items():
                key = sample_key(cfg, point["stage"], suite, point.get("seed"))
                log.log_samples(point["step"], key, part)

        ev.sample_sink = sink
    if cfg.study.primary_suite not in ev.suites:
        raise ConfigError(
            f"study.primary_suite: {cfg.study.primary_suite!r} is not an evaluated suite "
            f"({list(ev.suites)})"
        )
    return ev


def report_meta(cfg: ExperimentConfig, ev: Evaluator, meter: ComputeMeter) -> dict[str, Any]:
    """What the report says about the run besides its points."""
    return {
        "name": cfg.name,
        "model": cfg.model.name,
        "task": cfg.task.family,
        "task_config": cfg.task.active_dict(),
        "n_params": meter.n_params,
        "episodes_per_suite": ev.cfg.episodes,
        "seed": ev.cfg.seed,
        "training_seeds": cfg.training_seeds,
        "study": dataclasses.asdict(cfg.study),
        "arms": {
            "rl": {"lr": cfg.rl.lr or cfg.learner.lr, "updates": cfg.rl.updates},
            "sft": {"lr": cfg.sft.arm_lr or cfg.sft.lr or cfg.learner.lr},
        },
        "sampling": ev.sampling,
    }


def _checkpoints(cfg: ExperimentConfig) -> list[Path]:
    # Sizes only here (a quick "is there anything to resume"); the arm hashes its own later.
    found = [
        newest_complete(cfg.arm_dir(s) / CHECKPOINTS_DIR, check_hashes=False)[0]
        for s in cfg.training_seeds
    ]
    return [c for c in found if c is not None]


def sft_warm_start(
    cfg: ExperimentConfig,
    fleet: RolloutFleet,
    ev: Evaluator,
    meter: ComputeMeter,
    log: MetricsLogger,
    t: StageTimer,
    resume: bool,
) -> tuple[str, ComputeMeter, list[Any]]:
    """SFT data -> warm start (HF weights and its compute in run_dir/sft) -> 'init' eval.

    Returns (the warm start's HF folder, the meter after it, the expert rows, which the SFT
    arm goes over again). A resumed run whose warm start is on disk reuses it."""
    from learner.group import LearnerGroup
    from learner.sft import run_sft

    sft_dir = cfg.run_dir / "sft"
    warm_dir = sft_dir / "hf"
    with t("sft_data"):
        rows = sft_rows(cfg, str(fleet.model_path), sft_dir)
    reuse = Path(cfg.sft.warm_start_from) / "sft" if cfg.sft.warm_start_from else None
    if reuse is not None or (resume and (sft_dir / COMPUTE_FILE).is_file()):
        source = reuse or sft_dir
        if not (source / COMPUTE_FILE).is_file() or not (source / "hf").is_dir():
            raise ConfigError(
                f"sft.warm_start_from: {cfg.sft.warm_start_from} holds no finished warm start "
                f"(expected {source / 'hf'} and {source / COMPUTE_FILE})"
            )
        meter = ComputeMeter.load(source)
        fleet.load_weights(0, str(source / "hf"))
        if not any(p["stage"] == "init" for p in ev.points):
            with t("eval_init"):
                log.log(0, ev.log_metrics(ev.run("init", 0, meter)))
        return str(source / "hf"), meter, rows
    with t("sft_setup"):
        group = LearnerGroup(
            stage_learner(cfg.learner, cfg.sft.lr), fleet.model_path, cfg.placement
        )
    try:
        steps = -(-len(rows) // group.cfg.rows_per_step) * cfg.sft.warmup_epochs
        with t("sft_warm_start"), tqdm(total=steps, desc="sft warm start", unit="step") as bar:

            def progress(metrics: dict[str, float]) -> None:
                bar.update(1)
                bar.set_postfix(loss=f"{metrics.get('learner/loss', float('nan')):.3f}")
                log.log(bar.n, {f"sft_warm/{k}": v for k, v in metrics.items()})

            history = run_sft(
                group,
                rows,
                cfg.sft.warmup_epochs,
                warm_dir,
                cfg.sft.seed,
                str(cfg.run_dir / "images"),
                log=progress,
            )
        meter.add_training_tokens(sum(int(m.get("learner/tokens", 0)) for m in history))
        log.log(0, history[-1] | {"sft/examples": float(len(rows))})
    finally:
        group.shutdown()
    fleet.load_weights(0, str(warm_dir))
    with t("eval_init"):
        log.log(0, ev.log_metrics(ev.run("init", 0, meter)))
    meter.save(sft_dir)  # last: its presence marks a finished warm start (--resume)
    return str(warm_dir), meter, rows
