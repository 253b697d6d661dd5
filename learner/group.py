"""The learner group: N DeepSpeed ranks as Ray actors in one placement group."""

from __future__ import annotations

from typing import Any

import ray
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from learner.config import LearnerConfig
from learner.rank import LearnerRank

# Building a DeepSpeed engine loads the model and joins the process group: slow on CPU.
SETUP_TIMEOUT_S = 600


class LearnerGroup:
    """Creates the ranks (one bundle each, PACK), joins them into one process group."""

    def __init__(self, cfg: LearnerConfig, model_path: str) -> None:
        self.cfg = cfg
        bundle: dict[str, float] = {"CPU": cfg.cpus_per_rank}
        if cfg.gpus_per_rank:
            bundle["GPU"] = cfg.gpus_per_rank
        self.pg = placement_group([dict(bundle) for _ in range(cfg.num_ranks)], strategy="PACK")
        ray.get(self.pg.ready(), timeout=SETUP_TIMEOUT_S)
        actor_cls = ray.remote(LearnerRank)
        self.ranks = [
            actor_cls.options(
                num_cpus=cfg.cpus_per_rank,
                num_gpus=cfg.gpus_per_rank,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=self.pg, placement_group_bundle_index=i
                ),
            ).remote(i, cfg.num_ranks, cfg)
            for i in range(cfg.num_ranks)
        ]
        addr, port = ray.get(self.ranks[0].address.remote())
        ray.get(
            [r.setup.remote(addr, port, model_path) for r in self.ranks], timeout=SETUP_TIMEOUT_S
        )

    def call(self, method: str, per_rank_args: list[tuple] | None = None) -> list[Any]:
        """Call ``method`` on every rank (with its own args) and wait for all."""
        args = per_rank_args or [()] * len(self.ranks)
        return ray.get([getattr(r, method).remote(*a) for r, a in zip(self.ranks, args)])

    def shutdown(self) -> None:
        for r in self.ranks:
            ray.kill(r)
        remove_placement_group(self.pg)
