"""The replay buffer as a Ray actor (the plain class is rollout/buffer.py).

With a journal (the default when a run folder is given), the actor is started with Ray
restarts on: a buffer process that dies comes back with the same arguments, rebuilds its state
from the journal, and Ray retries the calls that were in flight. ``add`` is idempotent (episode
ids are de-duplicated) and ``consume`` takes a request id, so a retried call is served once.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from rollout.buffer import ReplayBuffer, TrajectoryBatch
from rollout.buffer_config import ReplayBufferConfig

CONSUME_POLL_S = 0.05
"""How often the actor's waiting consume re-checks the buffer."""
JOURNAL_PREFIX = "buffer-journal-"
"""Journal folders are made with this prefix inside the run folder given to the buffer."""


class ReplayBufferActor:
    """The Ray actor around ReplayBuffer (start it with make_buffer_actor).

    Every method is async so that all run on the actor's one event loop, one at a time between
    awaits: adds from many rollout workers never interleave inside the buffer, and a consume
    that waits yields to them.
    """

    def __init__(
        self, cfg: ReplayBufferConfig, run_dir: str | None = None, journal_dir: str | None = None
    ) -> None:
        self._buffer = ReplayBuffer(cfg, run_dir, journal_dir)

    async def add(self, batch: TrajectoryBatch) -> int:
        return self._buffer.add(batch)

    async def set_policy_version(self, version: int) -> None:
        self._buffer.set_policy_version(version)

    async def consume(
        self, num_episodes: int, timeout_s: float = 0.0, request_id: str | None = None
    ) -> pa.Table:
        """Wait up to ``timeout_s`` for ``num_episodes`` servable episodes, then remove and
        return up to that many (fewer on timeout; 0 = do not wait). A repeated ``request_id``
        (a call retried after a restart) gets the same episodes as the first."""
        deadline = time.monotonic() + timeout_s
        while self._buffer.ready_episodes() < num_episodes and time.monotonic() < deadline:
            if request_id is not None and self._buffer.is_last_request(request_id):
                break
            await asyncio.sleep(CONSUME_POLL_S)
        return self._buffer.consume(num_episodes, request_id)

    async def sample(self, num_episodes: int) -> pa.Table:
        return self._buffer.sample(num_episodes)

    async def ready_episodes(self) -> int:
        return self._buffer.ready_episodes()

    async def stats(self) -> dict[str, float]:
        return self._buffer.stats()

    async def save(self, path: str) -> int:
        return self._buffer.save(path)

    async def load(self, path: str) -> int:
        return self._buffer.load(path)

    async def close(self) -> None:
        self._buffer.close()


def make_buffer_actor(
    cfg: ReplayBufferConfig,
    run_dir: str | Path | None = None,
    *,
    name: str | None = None,
    num_cpus: float = 0.0,
) -> Any:
    """Start a ReplayBufferActor and return its handle.

    ``num_cpus`` defaults to 0: the buffer is memory- and I/O-bound and must not hold a CPU
    slot that a rollout worker or the learner needs. ``name`` makes it a named actor. With
    ``cfg.journal`` and a ``run_dir``, a private journal folder is made there and the actor
    restarts from it up to ``cfg.max_restarts`` times.
    """
    import ray  # here, not at the top: the plain buffer and its tests need no Ray

    options: dict[str, Any] = {"num_cpus": num_cpus}
    if name is not None:
        options["name"] = name
    journal_dir = None
    if cfg.journal and run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        journal_dir = tempfile.mkdtemp(prefix=JOURNAL_PREFIX, dir=run_dir)  # 0700, unique
        # -1: retry in-flight calls for as long as the actor is restarting (each is safe to
        # repeat); once restarts run out they fail with the actor's death.
        options |= {"max_restarts": cfg.max_restarts, "max_task_retries": -1}
    actor_cls = ray.remote(ReplayBufferActor)
    return actor_cls.options(**options).remote(cfg, str(run_dir) if run_dir else None, journal_dir)
