"""Where each role runs: placement strategy and extra resources per role. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from common.typed_config import check

Strategy = Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]


@dataclass
class PlacementConfig:
    """Placement groups per role. CPU/GPU amounts per actor come from each role's own section
    (rollout.cpus_per_worker, learner.gpus_per_rank, ...); this section says how to pack them
    and which custom node resources pin a role to particular nodes."""

    learner_strategy: Strategy = "PACK"
    """Bundle strategy of the learner ranks' placement group (PACK keeps NCCL traffic local)."""
    rollout_strategy: Strategy = "PACK"
    """Strategy of each rollout worker's bundle (one placement group per worker, so workers
    scale up and down while a job runs)."""
    env_strategy: Strategy = "PACK"
    """Bundle strategy of the env actors' placement group."""
    verifier_strategy: Strategy = "PACK"
    """Bundle strategy of the verifier actors' placement group."""
    learner_resources: dict[str, float] = field(default_factory=dict)
    """Extra custom resources per learner bundle, e.g. {"trainer_node": 0.01} to pin the
    learner to nodes started with --resources='{"trainer_node": 1}'."""
    rollout_resources: dict[str, float] = field(default_factory=dict)
    """Extra custom resources per rollout-worker bundle."""
    env_resources: dict[str, float] = field(default_factory=dict)
    """Extra custom resources per env-actor bundle."""
    verifier_resources: dict[str, float] = field(default_factory=dict)
    """Extra custom resources per verifier-actor bundle."""

    def __post_init__(self) -> None:
        for role in ("learner", "rollout", "env", "verifier"):
            resources = getattr(self, f"{role}_resources")
            for key, amount in resources.items():
                check(
                    key not in ("CPU", "GPU", "memory"),
                    f"{role}_resources",
                    f"{key!r} is set by the role's own section (cpus_/gpus_ fields), not here",
                )
                check(amount > 0, f"{role}_resources", f"{key!r} must be > 0, got {amount}")
