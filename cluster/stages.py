"""The stages the controller runs, each a small function over the components.

Components never reference the controller: the fleet plays episodes, the learner group trains,
the buffer holds trajectories, the evaluator scores suites. These functions wire one stage.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray

from cluster.checkpoints import CHECKPOINTS_DIR, newest_complete, save_atomically
from cluster.config import ExperimentConfig, save_config
from envs.families import SFTRequest
from evaluation.flops import ComputeMeter
from rollout.images import ImageStore
from rollout.runner import EpisodeSpec

CONTROL_ACTOR = "veriray-control"


@ray.remote(num_cpus=0)
class ControlActor:
    """The running job's control point: desired rollout workers and a status snapshot.

    ``veriray scale N`` sets the desired count; the fleet polls it between chunks."""

    def __init__(self, workers: int) -> None:
        self.desired_workers = workers
        self.status: dict[str, Any] = {}

    def set_workers(self, n: int) -> int:
        if n < 1:
            raise ValueError(f"rollout workers: need at least 1, got {n}")
        self.desired_workers = n
        return n

    def get_workers(self) -> int:
        return self.desired_workers

    def set_status(self, status: dict[str, Any]) -> None:
        self.status = status

    def get_status(self) -> dict[str, Any]:
        return self.status | {"desired_workers": self.desired_workers}


def start_control(cfg: ExperimentConfig) -> Any:
    with_name = ControlActor.options(
        name=CONTROL_ACTOR, namespace=cfg.ray.namespace, get_if_exists=False, lifetime=None
    )
    return with_name.remote(cfg.rollout.num_workers)


def sft_rows(cfg: ExperimentConfig, model_path: str, out_dir: Path) -> list[Any]:
    """Expert conversations from the task family (its training split) -> Parquet -> training
    rows."""
    from learner.sft import load_sft_rows
    from learner.sft_data import write_sft_parquet

    spec = cfg.task.spec
    if spec.sft_examples is None:  # the config check says so first; this guards direct calls
        raise ValueError(f"task family {spec.name} supplies no SFT examples")
    store = ImageStore(cfg.run_dir / "images") if cfg.model.multimodal else None
    s = cfg.sft
    request = SFTRequest(cfg.task.train_dict(), s.examples, s.seed, store, thought=s.thought)
    examples = spec.sft_examples(request)
    path = out_dir / "sft_data.parquet"
    write_sft_parquet(examples, path)
    return load_sft_rows(path, model_path, max_len=cfg.rollout.max_model_len)


def rl_specs(cfg: ExperimentConfig, update: int) -> list[EpisodeSpec]:
    """The episodes of one RL update: fresh training tasks seeded by the update, each played
    ``rl.samples_per_task`` times in one group (the group baseline's peers)."""
    import numpy as np

    task = cfg.task.train_dict()
    k = cfg.rl.samples_per_task
    rng = np.random.default_rng([cfg.seed, update])
    seeds = rng.integers(0, 2**31 - 1, size=cfg.rl.episodes_per_update // k)
    return [
        EpisodeSpec(
            f"rl-u{update}-t{t}-s{j}",
            cfg.task.family,
            task,
            {"seed": int(seed)},
            group_id=f"rl-u{update}-t{t}",
        )
        for t, seed in enumerate(seeds)
        for j in range(k)
    ]


def latest_checkpoint(run_dir: Path, say: Callable[[str], None] | None = None) -> Path | None:
    """The newest complete checkpoint of an arm (cluster/checkpoints.py); ``say`` hears one
    line per checkpoint skipped on the way (unfinished or damaged)."""
    found, skipped = newest_complete(run_dir / CHECKPOINTS_DIR)
    for line in skipped if say is not None else []:
        say(f"--resume: skipped {run_dir / CHECKPOINTS_DIR}/{line}")
    return found


def save_rl_checkpoint(
    group: Any, meter: ComputeMeter, run_dir: Path, update: int, cfg: ExperimentConfig
) -> Path:
    """Save atomically: complete under its final name, or not there at all. The arm's config
    goes in too, so the checkpoint alone says which task it plays (`veriray eval`)."""

    def write(folder: Path) -> None:
        group.save_checkpoint(str(folder))
        meter.save(folder)
        save_config(cfg, folder)

    return save_atomically(run_dir / CHECKPOINTS_DIR, update, write)
