"""Create the rollout side in one place: env and verifier pools, then the workers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from rollout.config import RolloutConfig
from rollout.pools import EnvActor, VerifierActor
from rollout.runner import EpisodeResult, EpisodeSpec
from rollout.worker import RolloutWorker


@dataclass
class RolloutFleet:
    workers: list[Any]
    env_actors: list[Any]
    verifier_actors: list[Any]

    def play(self, specs: list[EpisodeSpec], buffer: Any = None) -> list[EpisodeResult]:
        """Spread episodes over the workers round-robin; results in input order."""
        n = len(self.workers)
        shards = [specs[i::n] for i in range(n)]
        futures = [w.play.remote(s, buffer) for w, s in zip(self.workers, shards) if s]
        by_worker = ray.get(futures)
        out: list[EpisodeResult | None] = [None] * len(specs)
        for i, results in enumerate(by_worker):
            out[i::n] = results
        return [r for r in out if r is not None]

    def load_weights(self, version: int, weights_dir: str) -> list[int]:
        return ray.get([w.load_weights.remote(version, weights_dir) for w in self.workers])

    def shutdown(self) -> None:
        ray.get([w.shutdown.remote() for w in self.workers])
        for actor in [*self.workers, *self.env_actors, *self.verifier_actors]:
            ray.kill(actor)


def start_fleet(
    model_path: str | Path, cfg: RolloutConfig, multimodal: bool, image_dir: str | Path
) -> RolloutFleet:
    env_cls = ray.remote(EnvActor).options(num_cpus=cfg.cpus_per_env_actor)
    verifier_cls = ray.remote(VerifierActor).options(num_cpus=cfg.cpus_per_verifier_actor)
    envs = [env_cls.remote(str(image_dir)) for _ in range(cfg.env_actors)]
    verifiers = [verifier_cls.remote() for _ in range(cfg.verifier_actors)]
    worker_cls = ray.remote(RolloutWorker).options(
        num_cpus=cfg.cpus_per_worker, num_gpus=cfg.gpus_per_worker
    )
    workers = [
        worker_cls.remote(str(model_path), cfg, multimodal, envs, verifiers, f"rollout-{i}")
        for i in range(cfg.num_workers)
    ]
    return RolloutFleet(workers, envs, verifiers)
