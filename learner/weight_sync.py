"""Weight publishing from the learner to the rollout engines, behind one interface.

``transport.sync(version)`` makes every rollout engine serve the learner's current policy as
``version``. Two transports:

- SharedMemoryTransport (CPU, one node): the learner group writes the policy's tensors (one
  safetensors file + config) under /dev/shm (a collective call: under ZeRO-3 every rank takes
  part in gathering); each engine reloads its weights in place from it. Two folders take
  turns, so the learner rewrites the one no engine has just loaded, in place (its pages stay
  allocated: about a warm memcpy instead of a fresh file per update).
- NcclBroadcastTransport (GPU): learner rank 0 and every vLLM worker form one NCCL group
  (vLLM's StatelessProcessGroup + PyNcclCommunicator); rank 0 broadcasts each parameter and
  the workers load it in place (rollout/weight_receiver.py). Needs GPUs; tested on GPU machines.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import Any, Protocol

import ray

from common.typed_config import RUN_NAME

SHM_ROOT = Path("/dev/shm")
"""Where the weight folders go (RAM-backed); the system temp folder where it is missing."""
# A 135M model's export + reload takes ~1 s on CPU; large models on slow disks take longer.
SYNC_TIMEOUT_S = 900


def private_weights_dir(run_name: str, base: Path | None = None) -> Path:
    """A fresh folder for one run's weight hand-off: made by mkdtemp (a name no one can guess
    or claim first, mode 0700), then checked to be a real folder owned by this user that no one
    else can enter. Two runs with the same name get two folders."""
    if not RUN_NAME.fullmatch(run_name):
        raise ValueError(f"run name {run_name!r}: not a plain name (see ExperimentConfig.name)")
    if base is None:
        base = SHM_ROOT if SHM_ROOT.is_dir() else Path(tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix=f"veriray-{run_name}-", dir=base))
    info = os.lstat(root)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(f"{root}: not a private folder of this user (mode, owner or type)")
    return root


class WeightTransport(Protocol):
    def sync(self, version: int) -> dict[str, float]: ...

    def close(self) -> None: ...


class SharedMemoryTransport:
    """Learner group -> /dev/shm checkpoint folder -> engines reload in place."""

    def __init__(self, learner: Any, fleet: Any, run_name: str) -> None:
        self.learner = learner
        self.fleet = fleet
        self.root = private_weights_dir(run_name)
        self.latest: Path | None = None
        """The folder the engines last loaded."""

    def sync(self, version: int) -> dict[str, float]:
        # The engines (and a late-joining worker) read the folder of the last sync; write the
        # other one.
        folder = self.root / ("slot1" if self.latest == self.root / "slot0" else "slot0")
        start = time.perf_counter()
        self.learner.export_weights(str(folder))
        exported = time.perf_counter()
        served = self.fleet.load_weights(version, str(folder))
        if any(v != version for v in served):
            raise RuntimeError(f"weight sync to version {version}: engines report {served}")
        done = time.perf_counter()
        self.latest = folder
        nbytes = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
        return {
            "timing/weight_export": exported - start,
            "timing/weight_load": done - exported,
            "timing/weight_sync": done - start,
            "perf/weight_sync_bytes": float(nbytes),
        }

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class NcclBroadcastTransport:
    """Learner rank 0 broadcasts every parameter to all vLLM workers over NCCL (GPU only).

    The rollout engines must be started with ``worker_extension_cls=WORKER_EXTENSION`` (set by
    RolloutConfig.weight_sync = "nccl"). Rank 0 needs ``nccl_group_init`` and
    ``nccl_broadcast_weights`` (learner/rank.py) and each rollout worker
    ``nccl_group_init`` / ``nccl_receive`` (rollout/worker.py).
    """

    def __init__(self, learner: Any, fleet: Any, gpus_per_engine: int, port: int = 0) -> None:
        self.ranks = list(learner.ranks)
        self.rank0 = self.ranks[0]
        self.fleet = fleet
        self.gpus_per_engine = gpus_per_engine
        self.workers: list[Any] = []
        self.version: int | None = None  # the last version broadcast
        self._join(port)
        self.specs: list[tuple[str, str, list[int]]] = ray.get(self.rank0.weight_specs.remote())
        fleet.on_new_worker = self._serve_late_joiner

    def _serve_late_joiner(self, handle: Any) -> None:
        """A worker the fleet just started (scale-up, replacement) gets the current policy
        before it plays: the group is rebuilt with it and the last version broadcast again."""
        if self.version is None:
            return  # nothing broadcast yet: every engine serves the starting weights
        self._join(extra=[handle])
        self._broadcast(self.version)

    def _join(self, port: int = 0, extra: list[Any] | None = None) -> None:
        """(Re)build the NCCL group: learner rank 0 + every GPU of every current engine
        (and of ``extra`` workers not in the fleet's list yet)."""
        workers = [*self.fleet.worker_handles, *(extra or [])]
        addr, free = ray.get(self.rank0.address.remote())
        world = 1 + self.gpus_per_engine * len(workers)
        # Rank 0 hosts the rendezvous; engine workers join at offsets 1, 1 + gpus, ...
        joins = [
            w.nccl_group_init.remote(addr, port or free, 1 + i * self.gpus_per_engine, world)
            for i, w in enumerate(workers)
        ]
        ray.get([self.rank0.nccl_group_init.remote(addr, port or free, 0, world), *joins])
        self.workers = workers

    def sync(self, version: int) -> dict[str, float]:
        start = time.perf_counter()
        if _actor_ids(self.fleet.worker_handles) != _actor_ids(self.workers):
            self._join()  # workers were added, replaced or drained since the last group
        self._broadcast(version)
        self.version = version
        return {"timing/weight_sync": time.perf_counter() - start}

    def _broadcast(self, version: int) -> None:
        receives = [w.nccl_receive.remote(version, self.specs) for w in self.workers]
        # Every rank: under ZeRO-3 each tensor's gather is a collective (only rank 0 sends).
        sends = [r.nccl_broadcast_weights.remote() for r in self.ranks]
        ray.get([*sends, *receives], timeout=SYNC_TIMEOUT_S)

    def close(self) -> None:
        pass


def _actor_ids(handles: list[Any]) -> list[str]:
    return [h._actor_id.hex() for h in handles]


def make_transport(rollout: Any, learner: Any, fleet: Any, run_name: str) -> WeightTransport:
    """The transport ``rollout.weight_sync`` names: 'shm' (CPU, one node) or 'nccl' (GPUs)."""
    if rollout.weight_sync == "nccl":
        return NcclBroadcastTransport(learner, fleet, rollout.tensor_parallel_size)
    return SharedMemoryTransport(learner, fleet, run_name)
