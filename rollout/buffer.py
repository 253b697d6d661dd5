"""Replay buffer: finished episodes stream in from rollout workers, the learner takes them out.

- Storage: one Arrow table per episode (rows = turns, TRAJECTORY_SCHEMA, in turn order), kept
  in FIFO order of arrival. Past ``memory_bound_mb`` the oldest in-memory episodes are written
  to a Parquet spill file (one file per spilled chunk); an index remembers file + row offset, and
  consume / sample / save read them back transparently. A spill file is deleted once every
  episode in it has left the buffer.
- Versions: every episode carries the policy version that generated it; the learner announces
  its own with ``set_policy_version``. Staleness = learner version - episode version, and only
  episodes with staleness <= ``max_staleness`` are served (0 = strict on-policy).
- De-duplication by ``episode_id``: an episode already added, consumed, dropped or evicted is
  ignored when it arrives again (retried rollout tasks may resend it).

``ReplayBuffer`` is a plain class (tested without Ray). ``make_buffer_actor`` starts it as a Ray
actor whose ``consume`` may wait for episodes to arrive; the plain class never blocks.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rollout.buffer_config import ReplayBufferConfig
from rollout.trajectory import SCHEMA_VERSION, TRAJECTORY_SCHEMA, TurnRecord, to_record_batch

_MB = 1024 * 1024
_VERSION_KEY = b"veriray.trajectory.version"

SPILL_TARGET_FRACTION = 0.5
"""A spill brings in-memory bytes down to this fraction of the bound, so that spills come in
chunks (fewer, larger Parquet files) rather than one small file per arriving episode."""
SAVE_CHUNK_EPISODES = 256
"""save() streams the contents to Parquet this many episodes at a time (bounded memory)."""
CONSUME_POLL_S = 0.05
"""How often the actor's waiting consume re-checks the buffer."""

TrajectoryBatch = pa.RecordBatch | pa.Table | list[TurnRecord]


@dataclass
class _Episode:
    """Index entry of one held episode."""

    episode_id: str
    policy_version: int  # the oldest version among its turns (see ReplayBuffer.add)
    num_turns: int
    episode_return: float  # sum of the turn rewards
    success: bool  # episode_success
    nbytes: int  # Arrow bytes of `table` while in memory
    table: pa.Table | None  # rows in turn order; None once spilled
    spill_file: Path | None = None
    spill_offset: int = 0  # first row of this episode in spill_file


class ReplayBuffer:
    """FIFO episode store with staleness filtering, de-duplication and Parquet spilling.

    Not thread-safe: one owner (a test, or the single event loop of the buffer actor).
    """

    def __init__(self, cfg: ReplayBufferConfig, run_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self._episodes: OrderedDict[str, _Episode] = OrderedDict()  # oldest first
        # Every id ever accepted (held, consumed, dropped, evicted): ~100 bytes an episode,
        # the price of ignoring resends after consumption.
        self._seen: set[str] = set()
        self._spill_refs: dict[Path, int] = {}  # spill file -> held episodes still in it
        self._spill_seq = 0
        self._spill_base = Path(cfg.spill_dir) if cfg.spill_dir else run_dir
        self._spill_dir: Path | None = None  # made on the first spill
        self._in_memory_bytes = 0
        self._num_turns = 0
        self._version = 0
        self._rng = random.Random(cfg.seed)
        self._counts = {
            "total_added": 0,
            "total_consumed": 0,
            "dropped_stale": 0,
            "duplicates_ignored": 0,
            "evicted": 0,
        }

    # ---- writing ------------------------------------------------------------------------
    def add(self, batch: TrajectoryBatch) -> int:
        """Add the turns of one or more complete episodes; return how many were newly stored.

        Episodes seen before are ignored (``duplicates_ignored``); with ``drop_stale`` an
        episode that is already too stale on arrival is dropped (``dropped_stale``). The whole
        batch is checked (schema, complete turns) before anything is stored.
        """
        table = as_trajectory_table(batch)
        ids = table.column("episode_id").to_pylist()
        turn_idx = table.column("turn_index").to_pylist()
        rows: dict[str, list[int]] = {}
        for row, eid in enumerate(ids):
            rows.setdefault(eid, []).append(row)
        for eid, idx in rows.items():
            idx.sort(key=turn_idx.__getitem__)
            turns = [turn_idx[i] for i in idx]
            if turns != list(range(len(idx))):
                raise ValueError(
                    f"episode {eid!r}: turn_index must be 0..{len(idx) - 1} once each "
                    f"(a complete episode), got {turns}"
                )
        stored = 0
        for eid, idx in rows.items():
            if eid in self._seen:
                self._counts["duplicates_ignored"] += 1
                continue
            self._seen.add(eid)
            self._counts["total_added"] += 1
            # take() copies, so the episode owns its buffers and nbytes is what spilling frees.
            ep_table = table.take(pa.array(idx, pa.int64()))
            versions = ep_table.column("policy_version").to_pylist()
            ep = _Episode(
                episode_id=eid,
                # Turns differ in version when weights were swapped mid-episode. The oldest is
                # the most off-policy turn, so judging the episode by it never serves data
                # staler than max_staleness.
                policy_version=min(versions),
                num_turns=len(idx),
                episode_return=float(sum(ep_table.column("reward").to_pylist())),
                success=any(ep_table.column("episode_success").to_pylist()),
                nbytes=ep_table.nbytes,
                table=ep_table,
            )
            if self.cfg.drop_stale and self._is_stale(ep):
                self._counts["dropped_stale"] += 1
                continue
            self._episodes[eid] = ep
            self._in_memory_bytes += ep.nbytes
            self._num_turns += ep.num_turns
            stored += 1
        while len(self._episodes) > self.cfg.capacity_episodes:
            self._remove(next(iter(self._episodes.values())))
            self._counts["evicted"] += 1
        self._maybe_spill()
        return stored

    def set_policy_version(self, version: int) -> None:
        """The learner's current policy version; with ``drop_stale`` drops what it outdates."""
        if version < self._version:
            raise ValueError(
                f"policy_version: versions only go forward, got {version} after {self._version}"
            )
        self._version = version
        if self.cfg.drop_stale:
            for ep in [e for e in self._episodes.values() if self._is_stale(e)]:
                self._remove(ep)
                self._counts["dropped_stale"] += 1

    def load(self, path: str | Path) -> int:
        """Add the episodes of a Parquet file written by save(); returns how many were stored."""
        return self.add(pq.read_table(path))

    # ---- reading ------------------------------------------------------------------------
    def consume(self, num_episodes: int) -> pa.Table:
        """Remove and return up to ``num_episodes`` servable episodes, oldest first.

        Turns of an episode are contiguous and in turn order. Never blocks: with too few
        episodes it returns what there is (the actor's consume can wait).
        """
        if num_episodes < 0:
            raise ValueError(f"num_episodes: must be >= 0, got {num_episodes}")
        picked: list[_Episode] = []
        for ep in self._episodes.values():
            if len(picked) == num_episodes:
                break
            if not self._is_stale(ep):  # kept-stale episodes (drop_stale=False) are skipped
                picked.append(ep)
        out = _concat(self._materialise(picked))
        for ep in picked:
            self._remove(ep)
        self._counts["total_consumed"] += len(picked)
        return out

    def sample(self, num_episodes: int) -> pa.Table:
        """Return up to ``num_episodes`` servable episodes drawn uniformly without replacement
        (seeded), without removing them."""
        if num_episodes < 0:
            raise ValueError(f"num_episodes: must be >= 0, got {num_episodes}")
        servable = [e for e in self._episodes.values() if not self._is_stale(e)]
        picked = self._rng.sample(servable, min(num_episodes, len(servable)))
        return _concat(self._materialise(picked))

    def ready_episodes(self) -> int:
        """How many episodes consume() would serve now."""
        return sum(not self._is_stale(e) for e in self._episodes.values())

    def save(self, path: str | Path) -> int:
        """Write every held episode (FIFO order, stale ones too) to one Parquet file with
        TRAJECTORY_SCHEMA; returns the number of episodes. Counters and the seen-id set are
        not saved."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")  # rename at the end: no half-written file
        held = list(self._episodes.values())
        with pq.ParquetWriter(tmp, TRAJECTORY_SCHEMA) as writer:
            for start in range(0, len(held), SAVE_CHUNK_EPISODES):
                chunk = self._materialise(held[start : start + SAVE_CHUNK_EPISODES])
                writer.write_table(_concat(chunk))
        os.replace(tmp, path)
        return len(held)

    def stats(self) -> dict[str, float]:
        """Dashboard metrics (``buffer/`` namespace) over the episodes held now."""
        held = list(self._episodes.values())
        n = len(held)
        lags = [self._version - e.policy_version for e in held]
        out: dict[str, float] = {
            "buffer/size_episodes": n,
            "buffer/size_turns": self._num_turns,
            "buffer/ready_episodes": self.ready_episodes(),
            "buffer/in_memory_mb": self._in_memory_bytes / _MB,
            "buffer/spilled_episodes": sum(e.table is None for e in held),
            "buffer/spill_files": len(self._spill_refs),
            "buffer/policy_version": self._version,
            # Means over an empty buffer are reported as 0 (dashboards choke on NaN);
            # size_episodes = 0 tells them apart.
            "buffer/mean_lag": sum(lags) / n if n else 0.0,
            "buffer/max_lag": max(lags, default=0),
            "buffer/reward_mean": sum(e.episode_return for e in held) / n if n else 0.0,
            "buffer/success_rate": sum(e.success for e in held) / n if n else 0.0,
        }
        out.update({f"buffer/{k}": v for k, v in self._counts.items()})
        return out

    def close(self) -> None:
        """Delete the spill folder (its files are the only copy of spilled episodes)."""
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None
        self._episodes.clear()
        self._spill_refs.clear()
        self._in_memory_bytes = self._num_turns = 0

    # ---- internals ----------------------------------------------------------------------
    def _is_stale(self, ep: _Episode) -> bool:
        return self._version - ep.policy_version > self.cfg.max_staleness

    def _remove(self, ep: _Episode) -> None:
        del self._episodes[ep.episode_id]
        self._num_turns -= ep.num_turns
        if ep.table is not None:
            self._in_memory_bytes -= ep.nbytes
            ep.table = None
        elif ep.spill_file is not None:
            self._spill_refs[ep.spill_file] -= 1
            if self._spill_refs[ep.spill_file] == 0:
                del self._spill_refs[ep.spill_file]
                ep.spill_file.unlink()

    def _materialise(self, eps: list[_Episode]) -> list[pa.Table]:
        """The tables of ``eps`` in the same order; each spill file needed is read once."""
        files: dict[Path, pa.Table] = {}
        out = []
        for ep in eps:
            if ep.table is not None:
                out.append(ep.table)
                continue
            assert ep.spill_file is not None
            if ep.spill_file not in files:
                # Parquet names list items "element"; the cast restores TRAJECTORY_SCHEMA.
                files[ep.spill_file] = pq.read_table(ep.spill_file).cast(TRAJECTORY_SCHEMA)
            out.append(files[ep.spill_file].slice(ep.spill_offset, ep.num_turns))
        return out

    def _maybe_spill(self) -> None:
        bound = self.cfg.memory_bound_mb * _MB
        if self._in_memory_bytes <= bound:
            return
        target = bound * SPILL_TARGET_FRACTION
        chunk: list[_Episode] = []
        remaining = self._in_memory_bytes
        for ep in self._episodes.values():  # oldest first
            if remaining <= target:
                break
            if ep.table is not None:
                chunk.append(ep)
                remaining -= ep.nbytes
        path = self._next_spill_path()
        with pq.ParquetWriter(path, TRAJECTORY_SCHEMA) as writer:
            for ep in chunk:
                writer.write_table(ep.table)
        offset = 0
        for ep in chunk:  # only once the file is complete
            ep.spill_file, ep.spill_offset, ep.table = path, offset, None
            offset += ep.num_turns
        self._spill_refs[path] = len(chunk)
        self._in_memory_bytes = remaining

    def _next_spill_path(self) -> Path:
        if self._spill_dir is None:
            base = Path(self._spill_base) if self._spill_base else None
            if base is not None:
                base.mkdir(parents=True, exist_ok=True)
            # A private folder: several buffers may share spill_dir / run_dir.
            self._spill_dir = Path(tempfile.mkdtemp(prefix="buffer-spill-", dir=base))
            # Also removed when the buffer is garbage-collected or the process exits normally.
            weakref.finalize(self, shutil.rmtree, self._spill_dir, True)
        self._spill_seq += 1
        return self._spill_dir / f"spill-{self._spill_seq:06d}.parquet"


def as_trajectory_table(batch: TrajectoryBatch) -> pa.Table:
    """Any accepted input -> a table with exactly TRAJECTORY_SCHEMA (metadata included).

    Raises ValueError naming every missing, unexpected, mistyped or null-holding column.
    """
    if isinstance(batch, list):
        if not all(isinstance(t, TurnRecord) for t in batch):
            raise TypeError("add: a list must hold TurnRecord objects")
        batch = to_record_batch(batch)
    if isinstance(batch, pa.RecordBatch):
        batch = pa.Table.from_batches([batch])
    if not isinstance(batch, pa.Table):
        raise TypeError(f"add: expected RecordBatch, Table or list[TurnRecord], got {type(batch)}")
    schema = batch.schema
    problems = []
    missing = [n for n in TRAJECTORY_SCHEMA.names if n not in schema.names]
    unexpected = [n for n in schema.names if n not in TRAJECTORY_SCHEMA.names]
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unexpected:
        problems.append(f"unexpected column(s) {unexpected}")
    for want in TRAJECTORY_SCHEMA:
        if want.name not in schema.names:
            continue
        got = schema.field(want.name).type
        if not _same_type(got, want.type):
            problems.append(f"column {want.name!r} has type {got}, expected {want.type}")
        elif not want.nullable and batch.column(want.name).null_count:
            problems.append(f"column {want.name!r} holds nulls but is not nullable")
    version = (schema.metadata or {}).get(_VERSION_KEY)
    if version is not None and version.decode() != str(SCHEMA_VERSION):
        problems.append(f"schema version {version.decode()}, expected {SCHEMA_VERSION}")
    if problems:
        raise ValueError("trajectory schema mismatch: " + "; ".join(problems))
    return batch.select(TRAJECTORY_SCHEMA.names).cast(TRAJECTORY_SCHEMA)


def _same_type(got: pa.DataType, want: pa.DataType) -> bool:
    # List item names differ between writers ("item" in Arrow, "element" from Parquet).
    if pa.types.is_list(want):
        return pa.types.is_list(got) and got.value_type == want.value_type
    return got == want


def _concat(tables: list[pa.Table]) -> pa.Table:
    if not tables:
        return TRAJECTORY_SCHEMA.empty_table()
    return pa.concat_tables(tables).combine_chunks()


class ReplayBufferActor:
    """The Ray actor around ReplayBuffer (start it with make_buffer_actor).

    Every method is async so that all run on the actor's one event loop, one at a time between
    awaits: adds from many rollout workers never interleave inside the buffer, and a consume
    that waits yields to them.
    """

    def __init__(self, cfg: ReplayBufferConfig, run_dir: str | None = None) -> None:
        self._buffer = ReplayBuffer(cfg, run_dir)

    async def add(self, batch: TrajectoryBatch) -> int:
        return self._buffer.add(batch)

    async def set_policy_version(self, version: int) -> None:
        self._buffer.set_policy_version(version)

    async def consume(self, num_episodes: int, timeout_s: float = 0.0) -> pa.Table:
        """Wait up to ``timeout_s`` for ``num_episodes`` servable episodes, then remove and
        return up to that many (fewer on timeout; 0 = do not wait)."""
        deadline = time.monotonic() + timeout_s
        while self._buffer.ready_episodes() < num_episodes and time.monotonic() < deadline:
            await asyncio.sleep(CONSUME_POLL_S)
        return self._buffer.consume(num_episodes)

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
    slot that a rollout worker or the learner needs. ``name`` makes it a named actor.
    """
    import ray  # here, not at the top: the plain buffer and its tests need no Ray

    options: dict[str, Any] = {"num_cpus": num_cpus}
    if name is not None:
        options["name"] = name
    actor_cls = ray.remote(ReplayBufferActor)
    return actor_cls.options(**options).remote(cfg, str(run_dir) if run_dir else None)
