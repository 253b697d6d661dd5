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
- Journal (``journal_dir``): every stored episode also goes to a Parquet file there, and every
  change to an event log (rollout/buffer_journal.py). A buffer built on an existing journal
  resumes its state, which is how a restarted buffer actor loses nothing. The journal files
  double as spill files: spilling a journaled episode only drops its in-memory table. A
  ``consume`` with a ``request_id`` equal to the previous one returns the same episodes again
  (a call Ray retries after a death is served once).

``ReplayBuffer`` is a plain class (tested without Ray). ``rollout/buffer_actor.py`` runs it as a
Ray actor whose ``consume`` may wait for episodes to arrive; the plain class never blocks.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from rollout.buffer_config import ReplayBufferConfig
from rollout.buffer_journal import BufferJournal, JournalEntry, replay
from rollout.trajectory import SCHEMA_VERSION, TRAJECTORY_SCHEMA, TurnRecord, to_record_batch

logger = logging.getLogger(__name__)

_MB = 1024 * 1024
_VERSION_KEY = b"veriray.trajectory.version"

SPILL_TARGET_FRACTION = 0.5
"""A spill brings in-memory bytes down to this fraction of the bound, so that spills come in
chunks (fewer, larger Parquet files) rather than one small file per arriving episode."""
SAVE_CHUNK_EPISODES = 256
"""save() streams the contents to Parquet this many episodes at a time (bounded memory)."""

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
    spill_file: Path | None = None  # a spill or journal file holding its rows
    spill_offset: int = 0  # first row of this episode in spill_file

    @classmethod
    def from_journal(cls, e: JournalEntry) -> _Episode:
        return cls(
            e.episode_id, e.policy_version, e.num_turns, e.episode_return, e.success, 0, None,
            e.file, e.offset,
        )  # fmt: skip


class ReplayBuffer:
    """FIFO episode store with staleness filtering, de-duplication and Parquet spilling.

    Not thread-safe: one owner (a test, or the single event loop of the buffer actor).
    """

    def __init__(
        self,
        cfg: ReplayBufferConfig,
        run_dir: str | Path | None = None,
        journal_dir: str | Path | None = None,
    ) -> None:
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
            "restarts": 0,
        }
        # The newest consume's episodes, kept readable for a retry of that same request.
        self._pinned: list[_Episode] = []
        self._last_request: str | None = None
        self._journal = self._open_journal(Path(journal_dir)) if journal_dir else None

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
        new: list[_Episode] = []
        dropped: list[str] = []
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
                dropped.append(eid)
                continue
            new.append(ep)
        if self._journal is not None:  # duplicates too: the event carries the counters
            path = self._journal.write_episodes([ep.table for ep in new]) if new else None
            offset = 0
            for ep in new:
                ep.spill_file, ep.spill_offset = path, offset
                offset += ep.num_turns
            if path is not None:
                self._spill_refs[path] = len(new)
            ids = [ep.episode_id for ep in new]
            self._log("add", file=path.name if path else None, ids=ids, dropped=dropped)
        for ep in new:
            self._episodes[ep.episode_id] = ep
            self._in_memory_bytes += ep.nbytes
            self._num_turns += ep.num_turns
        evicted = []
        while len(self._episodes) > self.cfg.capacity_episodes:
            evicted.append(self._remove(next(iter(self._episodes.values()))))
            self._counts["evicted"] += 1
        if evicted:
            self._log("remove", ids=evicted)
        self._maybe_spill()
        return len(new)

    def set_policy_version(self, version: int) -> None:
        """The learner's current policy version; with ``drop_stale`` drops what it outdates."""
        if version < self._version:
            raise ValueError(
                f"policy_version: versions only go forward, got {version} after {self._version}"
            )
        self._version = version
        self._log("version", v=version)
        if self.cfg.drop_stale:
            stale = [self._remove(e) for e in list(self._episodes.values()) if self._is_stale(e)]
            self._counts["dropped_stale"] += len(stale)
            if stale:
                self._log("remove", ids=stale)

    def load(self, path: str | Path) -> int:
        """Add the episodes of a Parquet file written by save(); returns how many were stored."""
        return self.add(pq.read_table(path))

    # ---- reading ------------------------------------------------------------------------
    def consume(self, num_episodes: int, request_id: str | None = None) -> pa.Table:
        """Remove and return up to ``num_episodes`` servable episodes, oldest first.

        Turns of an episode are contiguous and in turn order. Never blocks: with too few
        episodes it returns what there is (the actor's consume can wait). With a journal, a
        ``request_id`` equal to the previous consume's returns that consume's episodes again.
        """
        if num_episodes < 0:
            raise ValueError(f"num_episodes: must be >= 0, got {num_episodes}")
        journaled = self._journal is not None
        if request_id is not None and self.is_last_request(request_id):
            return _concat(self._materialise(self._pinned))
        picked: list[_Episode] = []
        for ep in self._episodes.values():
            if len(picked) == num_episodes:
                break
            if not self._is_stale(ep):  # kept-stale episodes (drop_stale=False) are skipped
                picked.append(ep)
        out = _concat(self._materialise(picked))
        for ep in self._pinned:
            self._unref(ep.spill_file)
        for ep in picked:
            self._remove(ep, keep_file=journaled)
        self._pinned, self._last_request = (picked, request_id) if journaled else ([], None)
        self._counts["total_consumed"] += len(picked)
        self._log("consume", request=request_id, ids=[ep.episode_id for ep in picked])
        return out

    def sample(self, num_episodes: int) -> pa.Table:
        """Return up to ``num_episodes`` servable episodes drawn uniformly without replacement
        (seeded), without removing them."""
        if num_episodes < 0:
            raise ValueError(f"num_episodes: must be >= 0, got {num_episodes}")
        servable = [e for e in self._episodes.values() if not self._is_stale(e)]
        picked = self._rng.sample(servable, min(num_episodes, len(servable)))
        return _concat(self._materialise(picked))

    def is_last_request(self, request_id: str) -> bool:
        """Whether ``request_id`` names the consume served last (a retry of it)."""
        return self._journal is not None and request_id == self._last_request

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
        """Delete the spill folder and the journal (their files are the only copy of spilled
        episodes): the buffer is done."""
        if self._spill_dir is not None:
            shutil.rmtree(self._spill_dir, ignore_errors=True)
            self._spill_dir = None
        if self._journal is not None:
            self._journal.close()
            shutil.rmtree(self._journal.folder, ignore_errors=True)
            self._journal = None
        self._pinned = []
        self._episodes.clear()
        self._spill_refs.clear()
        self._in_memory_bytes = self._num_turns = 0

    # ---- internals ----------------------------------------------------------------------
    def _is_stale(self, ep: _Episode) -> bool:
        return self._version - ep.policy_version > self.cfg.max_staleness

    def _remove(self, ep: _Episode, keep_file: bool = False) -> str:
        """Take ``ep`` out of the index; its file goes when nothing else needs it (unless
        ``keep_file``: a pinned episode). Returns its id."""
        del self._episodes[ep.episode_id]
        self._num_turns -= ep.num_turns
        if ep.table is not None:
            self._in_memory_bytes -= ep.nbytes
            if ep.spill_file is not None:  # journaled: its file can serve it again
                ep.table = None
        if not keep_file:
            self._unref(ep.spill_file)
        return ep.episode_id

    def _unref(self, path: Path | None) -> None:
        if path is None:
            return
        self._spill_refs[path] -= 1
        if self._spill_refs[path] == 0:
            del self._spill_refs[path]
            path.unlink(missing_ok=True)

    def _log(self, op: str, **fields: object) -> None:
        if self._journal is not None:
            self._journal.log({"op": op, **fields, "counts": self._counts})

    def _open_journal(self, folder: Path) -> BufferJournal:
        """Resume the state a journal records (none for a new folder); journal from now on."""
        state = replay(folder)
        self._seen, self._version = state.seen, state.version
        self._counts |= state.counts
        for entry in state.held:
            ep = self._episodes[entry.episode_id] = _Episode.from_journal(entry)
            self._num_turns += ep.num_turns
        self._pinned = [_Episode.from_journal(e) for e in state.pinned]
        self._last_request = state.last_request
        for ep in [*self._episodes.values(), *self._pinned]:
            assert ep.spill_file is not None
            self._spill_refs[ep.spill_file] = self._spill_refs.get(ep.spill_file, 0) + 1
        if state.seen:
            self._counts["restarts"] += 1
            logger.warning(
                "replay buffer restarted from its journal %s: %d episodes held, %d seen",
                folder,
                len(self._episodes),
                len(self._seen),
            )
        return BufferJournal(folder, state.next_seq)

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
                remaining -= ep.nbytes
                if ep.spill_file is not None:  # journaled: already on disk
                    ep.table = None
                else:
                    chunk.append(ep)
        self._in_memory_bytes = remaining
        if not chunk:
            return
        path = self._next_spill_path()
        with pq.ParquetWriter(path, TRAJECTORY_SCHEMA) as writer:
            for ep in chunk:
                writer.write_table(ep.table)
        offset = 0
        for ep in chunk:  # only once the file is complete
            ep.spill_file, ep.spill_offset, ep.table = path, offset, None
            offset += ep.num_turns
        self._spill_refs[path] = len(chunk)

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
