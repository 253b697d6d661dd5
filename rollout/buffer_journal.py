"""The replay buffer's journal: every held episode on disk plus an append-only event log, so a
buffer actor that dies restarts (Ray restarts it with the same arguments) holding exactly the
episodes it held, the same seen ids, counters and policy version.

Layout of a journal folder (private to one buffer, made by the caller):
- ``add-<seq>.parquet``: the episodes one ``add`` call stored, in arrival order.
- ``events.jsonl``: one JSON object per line, appended after the change it records:
  ``{"op": "add", "file", "ids", "dropped"}`` (episodes stored, and ids dropped stale on arrival),
  ``{"op": "consume", "request", "ids"}``, ``{"op": "remove", "ids"}`` (evicted or dropped
  stale), ``{"op": "version", "v"}``. Every event also carries the counters after it.

A file is deleted once none of its episodes is held or pinned (the episodes of the newest
consume stay readable, so a consume that Ray retries after a death gets the same episodes).
A process death (the case this is for) loses nothing the page cache holds, so nothing is
fsynced; a machine crash is what checkpoints are for.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rollout.trajectory import TRAJECTORY_SCHEMA

logger = logging.getLogger(__name__)

EVENTS_FILE = "events.jsonl"


@dataclass
class JournalEntry:
    """Where one episode's turns are in the journal, and what the buffer's index needs."""

    episode_id: str
    file: Path
    offset: int  # first row of the episode in `file`
    num_turns: int
    policy_version: int
    episode_return: float
    success: bool


@dataclass
class JournalState:
    """What replaying the event log gives back."""

    held: list[JournalEntry] = field(default_factory=list)  # FIFO order
    pinned: list[JournalEntry] = field(default_factory=list)  # the newest consume's episodes
    last_request: str | None = None
    seen: set[str] = field(default_factory=set)
    version: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    next_seq: int = 1


class BufferJournal:
    """Appends episodes and events to one journal folder (see the module docstring)."""

    def __init__(self, folder: str | Path, next_seq: int = 1) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq = next_seq
        self._events = (self.folder / EVENTS_FILE).open("a", encoding="utf-8")

    def write_episodes(self, tables: list[pa.Table]) -> Path:
        """One Parquet file holding ``tables`` in order; returns its path."""
        path = self.folder / f"add-{self._seq:08d}.parquet"
        self._seq += 1
        tmp = path.with_name(path.name + ".tmp")  # the event names only complete files
        with pq.ParquetWriter(tmp, TRAJECTORY_SCHEMA) as writer:
            for table in tables:
                writer.write_table(table)
        os.replace(tmp, path)
        return path

    def log(self, event: dict[str, Any]) -> None:
        self._events.write(json.dumps(event, separators=(",", ":")) + "\n")
        self._events.flush()  # into the page cache: survives the death of this process

    def close(self) -> None:
        self._events.close()


def read_events(folder: Path) -> list[dict[str, Any]]:
    """The event log; a torn last line (a death in mid-append) is dropped with a warning."""
    path = folder / EVENTS_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for i, line in enumerate(lines):
        try:
            events.append(json.loads(line))
        except ValueError as err:
            if i != len(lines) - 1:
                raise ValueError(
                    f"{path}: line {i + 1} is not JSON (the journal is damaged)"
                ) from err
            logger.warning("%s: dropped a torn last line", path)
    return events


def replay(folder: str | Path) -> JournalState:
    """Rebuild the buffer's state from a journal folder; deletes files nothing needs."""
    folder = Path(folder)
    state = JournalState()
    held: OrderedDict[str, str] = OrderedDict()  # episode id -> file name
    pinned: list[tuple[str, str]] = []
    file_of: dict[str, str] = {}
    for event in read_events(folder):
        op = event["op"]
        if op == "add":
            for eid in event["ids"]:
                held[eid] = file_of[eid] = event["file"]
            state.seen.update(event["ids"], event["dropped"])
            if event["file"] is not None:
                state.next_seq = max(state.next_seq, _seq_of(event["file"]) + 1)
        elif op == "consume":
            pinned = [(eid, file_of[eid]) for eid in event["ids"]]
            for eid in event["ids"]:
                held.pop(eid, None)
            state.last_request = event["request"]
        elif op == "remove":
            for eid in event["ids"]:
                held.pop(eid, None)
        elif op == "version":
            state.version = int(event["v"])
        state.counts = dict(event.get("counts", state.counts))
    needed = {name for name in held.values()} | {name for _, name in pinned}
    entries = {eid: e for name in sorted(needed) for eid, e in _index(folder / name).items()}
    state.held = [entries[eid] for eid in held]
    state.pinned = [entries[eid] for eid, _ in pinned]
    for stale in folder.glob("add-*.parquet*"):  # consumed, or a write cut short
        if stale.name not in needed:
            stale.unlink()
    return state


def _seq_of(name: str) -> int:
    return int(name.removeprefix("add-").removesuffix(".parquet"))


def _index(path: Path) -> dict[str, JournalEntry]:
    """Each episode of one journal file: its rows and the buffer's index fields."""
    cols = pq.read_table(
        path, columns=["episode_id", "policy_version", "reward", "episode_success"]
    ).to_pydict()
    out: dict[str, JournalEntry] = {}
    for row, eid in enumerate(cols["episode_id"]):
        entry = out.get(eid)
        if entry is None:
            entry = out[eid] = JournalEntry(
                eid, path, row, 0, cols["policy_version"][row], 0.0, False
            )
        entry.num_turns += 1
        entry.policy_version = min(entry.policy_version, cols["policy_version"][row])
        entry.episode_return += float(cols["reward"][row])
        entry.success = entry.success or bool(cols["episode_success"][row])
    return out
