"""Placement groups per role, built in one place from the experiment config.

Roles: the learner ranks (one gang-scheduled group), env actors and verifier actors (one group
each) and rollout workers (one single-bundle group per worker, so that workers can be added and
removed while the job runs without re-reserving the others).

In common/ rather than cluster/: the learner group and the rollout fleet reserve their own
roles' groups with these helpers, and components never import cluster/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

# Reserving resources should take seconds; longer means the cluster cannot fit the request.
PLACEMENT_TIMEOUT_S = 300


class PlacementError(RuntimeError):
    """The cluster cannot fit a role's placement group."""


@dataclass(frozen=True)
class RoleSpec:
    name: str
    count: int
    cpus: float
    gpus: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)
    strategy: str = "PACK"

    def bundle(self) -> dict[str, float]:
        out = {"CPU": self.cpus, **self.resources}
        if self.gpus:
            out["GPU"] = self.gpus
        return {k: v for k, v in out.items() if v}


def role_specs(cfg: Any) -> dict[str, RoleSpec]:
    """The roles of an ExperimentConfig with their per-actor resources."""
    p, r, learner = cfg.placement, cfg.rollout, cfg.learner
    return {
        "learner": RoleSpec(
            "learner",
            learner.num_ranks,
            learner.cpus_per_rank,
            learner.gpus_per_rank,
            p.learner_resources,
            p.learner_strategy,
        ),
        "rollout": RoleSpec(
            "rollout",
            r.num_workers,
            r.cpus_per_worker,
            r.gpus_per_worker,
            p.rollout_resources,
            p.rollout_strategy,
        ),
        "env": RoleSpec(
            "env", r.env_actors, r.cpus_per_env_actor, 0.0, p.env_resources, p.env_strategy
        ),
        "verifier": RoleSpec(
            "verifier",
            r.verifier_actors,
            r.cpus_per_verifier_actor,
            0.0,
            p.verifier_resources,
            p.verifier_strategy,
        ),
    }


def reserve(
    spec: RoleSpec,
    count: int | None = None,
    name: str | None = None,
    timeout_s: float = PLACEMENT_TIMEOUT_S,
) -> PlacementGroup:
    """Create and wait for a placement group of ``count`` bundles of ``spec``'s resources."""
    n = spec.count if count is None else count
    bundle = spec.bundle()
    if not bundle:  # zero-resource actors (e.g. cpus 0) still need a bundle to pin them
        bundle = {"CPU": 0.001}
    pg = placement_group(
        [dict(bundle) for _ in range(n)],
        strategy=spec.strategy,
        name=name or f"veriray-{spec.name}",
    )
    ready, _ = ray.wait([pg.ready()], timeout=timeout_s)
    if not ready:
        remove_placement_group(pg)
        total = {k: v * n for k, v in bundle.items()}
        raise PlacementError(
            f"role {spec.name!r}: the cluster cannot fit {n} x {bundle} (total {total}) with "
            f"strategy {spec.strategy} within {timeout_s} s; lower the role's "
            f"count or per-actor resources, or add nodes (ray.cluster_resources(): "
            f"{ray.cluster_resources()})"
        )
    return pg


def in_bundle(pg: PlacementGroup, index: int, spec: RoleSpec) -> dict[str, Any]:
    """Actor options that run one actor of ``spec`` inside bundle ``index`` of ``pg``."""
    return {
        "num_cpus": spec.cpus,
        "num_gpus": spec.gpus,
        "resources": dict(spec.resources),
        "scheduling_strategy": PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=index
        ),
    }
