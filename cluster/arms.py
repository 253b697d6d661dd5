"""The two arms of the study, each run once per training seed from the shared SFT warm start.

- ``rl_arm``: PPO (or GRPO) from the warm start: generate -> train -> publish weights ->
  evaluate every K updates -> checkpoint. A fresh learner group, so a fresh optimizer.
- ``sft_arm``: continued SFT from the same warm-start weights, with a fresh optimizer, trained
  until its compute reaches each of the RL arm's evaluation points (the study's equal-FLOPs
  comparison) and evaluated there, on the same prompts.

Both take the arm's config (``ExperimentConfig.arm_config(seed)``) and write into the seed's
folder (``ExperimentConfig.arm_dir(seed)``). Components never reference the controller: these
functions wire one arm from the fleet, a learner group, the buffer and the evaluator.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import random
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from tqdm import tqdm

from cluster.checkpoints import checkpoint_update
from cluster.config import ExperimentConfig
from cluster.refill import play_with_refills
from cluster.stages import latest_checkpoint, rl_specs, save_rl_checkpoint
from evaluation.flops import ComputeMeter, turn_tokens
from evaluation.samples import append_samples, drop_samples, train_rows
from verifier.base import VERIFIER_ERROR_FIELD

# Version tags of SFT-arm weights on the engines, far from the RL policy versions (0, 1, ...).
SFT_ARM_VERSION_BASE = 1_000_000


class StageTimer(dict):
    """Seconds per named stage, as ``timing/<stage>`` metrics. ``announce`` prints each
    stage's name as it starts (the run's stages, not the steps inside an update)."""

    def __init__(self, announce: bool = False) -> None:
        super().__init__()
        self.announce = announce

    @contextmanager
    def __call__(self, stage: str):
        if self.announce:
            print(f"== {stage.replace('_', ' ')}", flush=True)
        start = time.perf_counter()
        yield
        self[f"timing/{stage}"] = round(time.perf_counter() - start, 3)


def stage_learner(learner: Any, lr: float | None) -> Any:
    """The learner config of a stage: the shared one, with the stage's learning rate."""
    return learner if lr is None else dataclasses.replace(learner, lr=lr)


def rl_arm(
    cfg: ExperimentConfig,
    fleet: Any,
    ev: Any,
    meter: ComputeMeter,
    log: Any,
    control: Any,
    init_path: str,
    checkpoint: Path | None,
) -> dict[str, float]:
    """RL from ``init_path`` for ``cfg``'s training seed; returns the last update's timings."""
    from learner.group import LearnerGroup
    from learner.weight_sync import make_transport
    from rollout.buffer_actor import JOURNAL_PREFIX, make_buffer_actor

    seed, arm_dir = cfg.seed, cfg.arm_dir(cfg.seed)
    group = LearnerGroup(stage_learner(cfg.learner, cfg.rl.lr), init_path, cfg.placement)
    start = 0
    if checkpoint is not None:
        group.load_checkpoint(str(checkpoint))
        meter = ComputeMeter.load(checkpoint)
        start = checkpoint_update(checkpoint)
    # Points this arm recorded past its starting point are replayed (none on a fresh run).
    ev.drop_stage("rl", seed, after_step=start)
    drop_samples(cfg.run_dir, "rl", seed, after_step=start)  # the training rows too
    for old in arm_dir.glob(f"{JOURNAL_PREFIX}*"):  # an earlier start's: never resumed from
        shutil.rmtree(old, ignore_errors=True)
    buffer = make_buffer_actor(cfg.buffer, arm_dir)
    transport = make_transport(cfg.rollout, group, fleet, f"{cfg.name}-s{seed}")
    transport.sync(group.policy_version())
    image_dir = str(cfg.run_dir / "images")
    desired = lambda: ray.get(control.get_workers.remote())  # noqa: E731 (polled by the fleet)

    def play(u: int) -> tuple[list[Any], float]:  # episodes + the generation's own seconds
        t0 = time.perf_counter()
        ppo, specs = cfg.learner.ppo, rl_specs(cfg, u)
        if not ppo.dynamic_sampling:
            return fleet.play(specs, buffer, desired), time.perf_counter() - t0
        # Dynamic sampling: extra rounds of fresh groups until enough are informative.
        run = lambda part: fleet.play(part, buffer, desired)  # noqa: E731
        episodes = play_with_refills(
            run,
            specs,
            ppo.dynamic_sampling_max_refills,
            ppo.truncated_response,
            ppo.truncated_penalty,
        )
        return episodes, time.perf_counter() - t0

    pool = ThreadPoolExecutor(max_workers=1)  # async mode: the next batch plays while training
    pending = pool.submit(play, start)
    step_t = StageTimer()
    try:
        for update in tqdm(
            range(start, cfg.rl.updates),
            desc=f"rl (seed {seed})",
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
            colocated = cfg.rollout.enable_sleep_mode  # engines and learner share the GPUs
            if colocated:
                with step_t("engine_sleep"):
                    fleet.sleep()
            with step_t("train"):
                m = group.train_from_buffer(
                    buffer, len(episodes), cfg.rl.consume_timeout_s, image_dir, f"update-{u}"
                )
            if colocated:
                with step_t("engine_wake"):
                    fleet.wake_up()
            meter.add_inference_tokens(sum(turn_tokens(e.turns) for e in episodes))
            meter.add_training_tokens(int(m.get("learner/tokens", 0)))
            meter.add_forward_tokens(int(m.get("learner/forward_tokens", 0)))
            with step_t("weight_sync"):
                m |= transport.sync(group.policy_version())
            if cfg.rl.mode == "on_policy" and u < cfg.rl.updates:
                pending = pool.submit(play, u)
            m |= rollout_summary(episodes) | fleet.stats() | ray.get(buffer.stats.remote())
            log_train_samples(cfg, log, u, rl_specs(cfg, update), episodes)
            m["rollout/refill_episodes"] = float(len(episodes) - cfg.rl.episodes_per_update)
            if ev.cfg.due(u, last=u == cfg.rl.updates):
                with step_t("eval"):
                    m |= ev.log_metrics(ev.run("rl", u, meter, seed=seed))
            every = cfg.rl.checkpoint_every
            if u == cfg.rl.updates or (every and u % every == 0):
                with step_t("checkpoint"):
                    save_rl_checkpoint(group, meter, arm_dir, u, cfg)
            m |= dict(step_t) | {"perf/train_gflops": meter.total_gflops}
            m["timing/iteration"] = round(time.perf_counter() - it0, 3)
            log.log(u, {f"seed{seed}/{k}" if cfg.study.seeds > 1 else k: v for k, v in m.items()})
            status = {"stage": "rl", "seed": seed, "update": u, "of": cfg.rl.updates}
            control.set_status.remote(status)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        transport.close()
        group.shutdown()
        with contextlib.suppress(RayActorError, GetTimeoutError):  # its journal goes too
            ray.get(buffer.close.remote(), timeout=60)
        ray.kill(buffer)
    return {f"timing/rl_{k.split('/')[1]}": v for k, v in step_t.items()}


def log_train_samples(
    cfg: ExperimentConfig, log: Any, update: int, specs: list[Any], episodes: list[Any]
) -> None:
    """The first ``samples_per_step`` turns of an update's batch: to samples.parquet (suite
    ``train``) and to the trackers."""
    if cfg.samples_per_step == 0:
        return
    point = {"stage": "rl", "step": update, "seed": cfg.seed}
    rows = train_rows(point, cfg.task.family, specs, episodes, cfg.samples_per_step)
    if rows:
        append_samples(cfg.run_dir, rows)
        key = f"seed{cfg.seed}/samples/rl/train" if cfg.study.seeds > 1 else "samples/rl/train"
        log.log_samples(update, key, rows)


def rl_arm_with_restarts(
    cfg: ExperimentConfig,
    fleet: Any,
    ev: Any,
    meter: ComputeMeter,
    log: Any,
    control: Any,
    init_path: str,
    checkpoint: Path | None,
) -> dict[str, float]:
    """``rl_arm``, started again (up to ``rl.max_restarts`` times) when one of its actors dies:
    a learner rank or the replay buffer. Each start builds a fresh learner group and buffer from
    the arm's newest complete checkpoint (or from ``init_path``), drops the evaluation points
    recorded after it, and plays and trains the later updates again. Rollout actors are not
    in this loop: the fleet replaces them itself."""
    for restart in range(cfg.rl.max_restarts + 1):
        try:
            arm_meter = ComputeMeter.from_dict(meter.to_dict())  # untouched by a failed start
            return rl_arm(cfg, fleet, ev, arm_meter, log, control, init_path, checkpoint)
        except RayActorError as err:
            if restart == cfg.rl.max_restarts:
                raise
            checkpoint = latest_checkpoint(cfg.arm_dir(cfg.seed), print)
            where = checkpoint.name if checkpoint is not None else "the arm's start"
            print(
                f"rl (seed {cfg.seed}): an actor died ({type(err).__name__}); starting again "
                f"from {where} (restart {restart + 1} of {cfg.rl.max_restarts})",
                flush=True,
            )
            log.log(0, {f"seed{cfg.seed}/rl/restarts": float(restart + 1)})
    raise AssertionError("unreachable")


def sft_arm(
    cfg: ExperimentConfig, fleet: Any, ev: Any, meter: ComputeMeter, log: Any, rows: list[Any]
) -> None:
    """Continued SFT from the warm start for ``cfg``'s training seed: the SFT curve.

    Starts from the warm start's weights with a FRESH optimizer (as the RL arm does) and goes
    over the warm start's expert rows again, each pass in an order drawn from the seed.
    branch_compute 'match_rl': train until the meter reaches each of this seed's RL evaluation
    points and evaluate there. 'steps': sft.branch_steps steps, evaluated every
    evaluation.every_k_updates steps.
    """
    from learner.group import LearnerGroup

    seed, warm_dir = cfg.seed, cfg.run_dir / "sft" / "hf"
    if cfg.sft.warm_start_from:
        warm_dir = Path(cfg.sft.warm_start_from) / "sft" / "hf"
    match = cfg.sft.branch_compute == "match_rl"
    rl_points = [p for p in ev.points if p["stage"] == "rl" and p.get("seed") == seed]
    pending = sorted(p["train_gflops"] for p in rl_points)
    every = max(1, ev.cfg.every_k_updates or cfg.sft.branch_steps)
    if not (pending if match else cfg.sft.branch_steps):
        return
    arm_dir = cfg.arm_dir(seed) / "sft-arm"
    lr = cfg.sft.arm_lr if cfg.sft.arm_lr is not None else cfg.sft.lr
    group = LearnerGroup(stage_learner(cfg.learner, lr), warm_dir, cfg.placement)
    ev.drop_stage("sft", seed)  # a resumed run replays the whole arm from the warm start
    order = _pass_order(len(rows), random.Random(seed))
    per_step, step = group.cfg.rows_per_step, 0
    total = None if match else cfg.sft.branch_steps
    bar = tqdm(desc=f"sft arm (seed {seed})", unit="step", total=total)
    try:
        while pending if match else step < cfg.sft.branch_steps:
            step += 1
            batch = [rows[next(order)] for _ in range(per_step)]
            metrics = group.sft_step(batch, str(cfg.run_dir / "images"))
            meter.add_training_tokens(int(metrics.get("learner/tokens", 0)))
            if match:
                reached = [g for g in pending if meter.total_gflops >= g]
                pending, due = pending[len(reached) :], bool(reached)
            else:
                due = step % every == 0 or step == cfg.sft.branch_steps
            if due:
                folder = arm_dir / f"step-{step:06d}"
                group.export_policy(str(folder))
                fleet.load_weights(SFT_ARM_VERSION_BASE + step, str(folder))
                metrics |= ev.log_metrics(ev.run("sft", step, meter, seed=seed))
            prefix = f"seed{seed}/sft_arm" if cfg.study.seeds > 1 else "sft_arm"
            log.log(step, {f"{prefix}/{k}": v for k, v in metrics.items()})
            bar.update(1)
            bar.set_postfix(gflops=f"{meter.total_gflops:.0f}")
    finally:
        bar.close()
        group.shutdown()


def _pass_order(n: int, rng: random.Random):
    """Row indices pass after pass over ``n`` rows, each pass in a fresh order from ``rng``."""
    while True:
        order = list(range(n))
        rng.shuffle(order)
        yield from order


def _verifier_failed(verdict_json: str) -> bool:
    """Whether a turn's verdict records that verification raised (verifier.base.verify_total)."""
    try:
        fields = json.loads(verdict_json)
    except (TypeError, ValueError):
        return False
    return isinstance(fields, dict) and VERIFIER_ERROR_FIELD in fields


def rollout_summary(episodes: list[Any]) -> dict[str, float]:
    """Per-update rollout metrics, including what vLLM's prefix cache saved: the share of
    prompt tokens it served and the prefill tokens actually computed per episode."""
    n = max(1, len(episodes))
    turns = [t for e in episodes for t in e.turns]
    prompt = sum(len(t.prompt_token_ids) for t in turns)
    cached = sum(t.cached_prompt_tokens for t in turns)
    return {
        "rollout/prefix_cache_hit_rate": cached / max(1, prompt),
        "rollout/prefill_tokens_per_episode": (prompt - cached) / n,
        "rollout/episode_reward_mean": sum(e.total_reward for e in episodes) / n,
        "rollout/success_rate": sum(e.success for e in episodes) / n,
        "rollout/turns_mean": sum(len(e.turns) for e in episodes) / n,
        "rollout/verifier_errors": float(sum(_verifier_failed(t.verdict) for t in turns)),
        "rollout/episodes_delta": float(len(episodes)),
        "rollout/tokens_delta": float(
            sum(len(t.response_token_ids) for e in episodes for t in e.turns)
        ),
    }
