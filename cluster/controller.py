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

Stages: base eval -> SFT warm start -> init eval -> RL arm (generate -> train -> publish
weights -> eval every K -> checkpoint) -> continued-SFT arm from the same init, trained to the
RL arm's compute and evaluated at the same GFLOPs (the SFT curve) -> report.
Every stage is timed (timing/<stage>) and logged to the dashboard and TensorBoard.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from tqdm import tqdm

from cluster.config import ExperimentConfig
from cluster.metrics import MetricsLogger
from cluster.ray_runtime import init_ray
from cluster.stages import (
    latest_checkpoint,
    rl_specs,
    save_rl_checkpoint,
    sft_rows,
    start_control,
)
from envs.families import config_dict
from evaluation.evaluator import POINTS_FILE, SWEEPS_FILE, Evaluator, load_records
from evaluation.flops import ComputeMeter, turn_tokens
from evaluation.report import build_report, write_report
from evaluation.run import (
    eval_rollout_config,
    resolve_model,
    resolved_eval_config,
    sampling_of,
)
from rollout.engine import Sampling
from rollout.fleet import RolloutFleet

# Version tags of SFT-arm weights on the engines, far from the RL policy versions (0, 1, ...).
SFT_ARM_VERSION_BASE = 1_000_000


@dataclasses.dataclass
class EvalPlayer:
    """The fleet as the evaluator sees it: plays with the evaluation's pinned sampling."""

    fleet: RolloutFleet
    sampling: Sampling

    def play(self, specs: list[Any]) -> list[Any]:
        return self.fleet.play(specs, sampling=self.sampling)


class StageTimer(dict):
    @contextmanager
    def __call__(self, stage: str):
        start = time.perf_counter()
        yield
        self[f"timing/{stage}"] = round(time.perf_counter() - start, 3)


def run_experiment(cfg: ExperimentConfig, resume: bool = False) -> Path:
    """Run every enabled stage of ``cfg``; return the run folder (report.md inside)."""
    t, run_dir = StageTimer(), cfg.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise FileNotFoundError(f"--resume: no checkpoint under {run_dir / 'checkpoints'}")
    if not resume:
        for stale in (POINTS_FILE, SWEEPS_FILE, "metrics.jsonl"):
            (run_dir / stale).unlink(missing_ok=True)
    with t("ray_init"):
        handle = init_ray(cfg.ray)
    print(f"Ray dashboard: {handle.dashboard_url} (token file: veriray ray token-path)")
    print(f"Scale rollout workers while it runs: veriray scale N --address {handle.gcs_address}")
    control = start_control(cfg)
    log = MetricsLogger(run_dir, cfg.name, cfg.tensorboard)
    with t("model_prepare"):
        model = resolve_model(cfg.model.name, cfg.model.multimodal)
    meter = ComputeMeter.for_model(model.model_path)
    with t("fleet_start"):
        fleet = RolloutFleet(
            model.model_path, cfg.rollout, cfg.model.multimodal, run_dir / "images", cfg.placement
        )
    eval_cfg = resolved_eval_config(cfg)
    eval_rollout = eval_rollout_config(cfg.rollout, eval_cfg)
    player = EvalPlayer(fleet, Sampling.from_config(eval_rollout))
    ev = Evaluator(
        player,
        cfg.task.family,
        config_dict(cfg.task.active),
        eval_cfg,
        run_dir,
        sampling_of(eval_rollout),
    )
    ev.points = load_records(run_dir, POINTS_FILE) if resume else []
    init_path = str(model.model_path)
    try:
        if checkpoint is None:
            with t("eval_base"):
                ev.run("base" if cfg.sft.enabled else "init", 0, meter)
        if cfg.sft.enabled:
            init_path, meter = sft_warm_start(cfg, fleet, ev, meter, log, t, checkpoint)
        init_meter = ComputeMeter.from_dict(meter.to_dict())  # both arms start from the init
        if cfg.rl.enabled:
            rl_stage(cfg, fleet, ev, meter, log, t, control, init_path, checkpoint)
        if cfg.sft.enabled:
            with t("sft_arm"):
                sft_arm(cfg, fleet, ev, init_meter, log)
        with t("report"):
            meta = {
                "name": cfg.name,
                "model": cfg.model.name,
                "task": cfg.task.family,
                "task_config": config_dict(cfg.task.active),
                "n_params": meter.n_params,
                "episodes_per_suite": ev.cfg.episodes,
                "seed": ev.cfg.seed,
                "training_seed": cfg.seed,
                "sampling": ev.sampling,
            }
            write_report(run_dir, build_report(meta, ev.points, ev.sweeps, dict(t)))
        log.log(cfg.rl.updates if cfg.rl.enabled else 0, dict(t))
    finally:
        fleet.shutdown()
        log.close()
        ray.shutdown()
    return run_dir


def sft_warm_start(cfg, fleet, ev, meter, log, t, checkpoint) -> tuple[str, ComputeMeter]:
    """SFT data -> warm start (saved as a resumable checkpoint in run_dir/sft) -> 'init' eval.

    Returns (the warm start's HF folder, the meter after it)."""
    from learner.group import LearnerGroup
    from learner.sft import run_sft

    sft_dir = cfg.run_dir / "sft"
    warm_dir = sft_dir / "hf"
    if checkpoint is not None:  # resuming RL: the warm start is already on disk
        return str(warm_dir), ComputeMeter.load(sft_dir)
    with t("sft_data"):
        rows = sft_rows(cfg, str(fleet.model_path), sft_dir)
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
        with t("sft_save"):  # the SFT arm continues from here, optimizer state included
            group.save_checkpoint(str(sft_dir))
            meter.save(sft_dir)
        log.log(0, history[-1] | {"sft/examples": float(len(rows))})
    finally:
        group.shutdown()
    fleet.load_weights(0, str(warm_dir))
    with t("eval_init"):
        log.log(0, ev.log_metrics(ev.run("init", 0, meter)))
    return str(warm_dir), meter


def sft_arm(cfg, fleet, ev, meter, log) -> None:
    """Continued SFT from the warm start: the SFT curve of the comparison.

    branch_compute 'match_rl': train until the meter reaches each RL evaluation point's
    GFLOPs and evaluate there, so both arms are compared at equal training compute.
    'steps': sft.branch_steps steps, evaluated every evaluation.every_k_updates steps.
    """
    from learner.group import LearnerGroup

    match = cfg.sft.branch_compute == "match_rl"
    pending = sorted(p["train_gflops"] for p in ev.points if p["stage"] == "rl")
    every = max(1, ev.cfg.every_k_updates or cfg.sft.branch_steps)
    if not (pending if match else cfg.sft.branch_steps):
        return
    sft_dir = cfg.run_dir / "sft"
    rows = sft_rows(cfg, str(fleet.model_path), sft_dir)
    group = LearnerGroup(stage_learner(cfg.learner, cfg.sft.lr), sft_dir / "hf", cfg.placement)
    group.load_checkpoint(str(sft_dir))
    ev.drop_stage("sft")  # a resumed run replays the whole arm from the warm start
    per_step, step = group.cfg.rows_per_step, 0
    bar = tqdm(desc="sft arm", unit="step", total=None if match else cfg.sft.branch_steps)
    try:
        while pending if match else step < cfg.sft.branch_steps:
            step += 1
            batch = [rows[(step * per_step + i) % len(rows)] for i in range(per_step)]
            metrics = group.sft_step(batch, str(cfg.run_dir / "images"))
            meter.add_training_tokens(int(metrics.get("learner/tokens", 0)))
            if match:
                reached = [g for g in pending if meter.total_gflops >= g]
                pending, due = pending[len(reached) :], bool(reached)
            else:
                due = step % every == 0 or step == cfg.sft.branch_steps
            if due:
                folder = sft_dir / f"arm-{step:06d}"
                group.export_policy(str(folder))
                fleet.load_weights(SFT_ARM_VERSION_BASE + step, str(folder))
                metrics |= ev.log_metrics(ev.run("sft", step, meter))
            log.log(step, {f"sft_arm/{k}": v for k, v in metrics.items()})
            bar.update(1)
            bar.set_postfix(gflops=f"{meter.total_gflops:.0f}")
    finally:
        bar.close()
        group.shutdown()


def rl_stage(cfg, fleet, ev, meter, log, t, control, init_path, checkpoint) -> None:
    """RL from ``init_path``: generate -> train -> publish -> (eval) -> (checkpoint)."""
    from learner.group import LearnerGroup
    from learner.weight_sync import make_transport
    from rollout.buffer import make_buffer_actor

    with t("rl_setup"):
        group = LearnerGroup(stage_learner(cfg.learner, cfg.rl.lr), init_path, cfg.placement)
        start = 0
        if checkpoint is not None:
            group.load_checkpoint(str(checkpoint))
            meter = ComputeMeter.load(checkpoint)
            start = int(checkpoint.name.split("-")[1])
        buffer = make_buffer_actor(cfg.buffer, cfg.run_dir)
        transport = make_transport(cfg.rollout, group, fleet, cfg.name)
        transport.sync(group.policy_version())
    image_dir = str(cfg.run_dir / "images")
    desired = lambda: ray.get(control.get_workers.remote())  # noqa: E731 (polled by the fleet)

    def play(u: int) -> tuple[list[Any], float]:  # episodes + the generation's own seconds
        t0 = time.perf_counter()
        return fleet.play(rl_specs(cfg, u), buffer, desired), time.perf_counter() - t0

    pool = ThreadPoolExecutor(max_workers=1)  # async mode: the next batch plays while training
    pending = pool.submit(play, start)
    step_t = StageTimer()
    try:
        for update in tqdm(
            range(start, cfg.rl.updates),
            desc="rl",
            unit="update",
            initial=start,
            total=cfg.rl.updates,
        ):
            u, step_t, it0 = update + 1, StageTimer(), time.perf_counter()
            with step_t("rollout"):  # waiting for the batch (overlaps training when async)
                episodes, play_s = pending.result()
            step_t["timing/rollout_play"] = round(play_s, 3)
            if cfg.rl.mode == "async" and u < cfg.rl.updates:
                pending = pool.submit(play, u)
            with step_t("train"):
                m = group.train_from_buffer(
                    buffer, len(episodes), cfg.rl.consume_timeout_s, image_dir
                )
            meter.add_inference_tokens(sum(turn_tokens(e.turns) for e in episodes))
            meter.add_training_tokens(int(m.get("learner/tokens", 0)))
            meter.add_forward_tokens(int(m.get("learner/forward_tokens", 0)))
            with step_t("weight_sync"):
                m |= transport.sync(group.policy_version())
            if cfg.rl.mode == "on_policy" and u < cfg.rl.updates:
                pending = pool.submit(play, u)
            m |= rollout_summary(episodes) | fleet.stats() | ray.get(buffer.stats.remote())
            if ev.cfg.due(u, last=u == cfg.rl.updates):
                with step_t("eval"):
                    m |= ev.log_metrics(ev.run("rl", u, meter))
            every = cfg.rl.checkpoint_every
            if u == cfg.rl.updates or (every and u % every == 0):
                with step_t("checkpoint"):
                    save_rl_checkpoint(group, meter, cfg.run_dir, u)
            m |= dict(step_t) | {"perf/train_gflops": meter.total_gflops}
            m["timing/iteration"] = round(time.perf_counter() - it0, 3)
            log.log(u, m)
            control.set_status.remote({"stage": "rl", "update": u, "of": cfg.rl.updates})
        t.update({f"timing/rl_{k.split('/')[1]}": v for k, v in step_t.items()})
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        transport.close()
        group.shutdown()
        ray.kill(buffer)


def stage_learner(learner: Any, lr: float | None) -> Any:
    """The learner config of a stage: the shared one, with the stage's learning rate."""
    return learner if lr is None else dataclasses.replace(learner, lr=lr)


def rollout_summary(episodes: list[Any]) -> dict[str, float]:
    n = max(1, len(episodes))
    return {
        "rollout/episode_reward_mean": sum(e.total_reward for e in episodes) / n,
        "rollout/success_rate": sum(e.success for e in episodes) / n,
        "rollout/turns_mean": sum(len(e.turns) for e in episodes) / n,
        "rollout/episodes_delta": float(len(episodes)),
        "rollout/tokens_delta": float(
            sum(len(t.response_token_ids) for e in episodes for t in e.turns)
        ),
    }
