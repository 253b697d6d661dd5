"""The replay buffer's journal: a buffer rebuilt on the journal of one that 'died' (was
dropped without close) holds exactly what it held, and serves what an uninterrupted buffer
would have served. The reference is a plain buffer given the same operations, never restarted.
"""

from __future__ import annotations

import random
from pathlib import Path

from rollout.buffer import ReplayBuffer
from rollout.buffer_config import ReplayBufferConfig
from rollout.buffer_journal import EVENTS_FILE
from tests.unit.rollout.test_buffer import episode, ids

# Counters and index fields a restart must keep (memory/spill fields describe the process).
KEPT = (
    "buffer/size_episodes",
    "buffer/size_turns",
    "buffer/ready_episodes",
    "buffer/policy_version",
    "buffer/mean_lag",
    "buffer/max_lag",
    "buffer/reward_mean",
    "buffer/success_rate",
    "buffer/total_added",
    "buffer/total_consumed",
    "buffer/dropped_stale",
    "buffer/duplicates_ignored",
    "buffer/evicted",
)


def kept(buf: ReplayBuffer) -> dict[str, float]:
    stats = buf.stats()
    return {k: stats[k] for k in KEPT}


def journaled(folder: Path, **kw) -> ReplayBuffer:
    return ReplayBuffer(ReplayBufferConfig(**kw), journal_dir=folder)


def test_a_restarted_buffer_holds_what_it_held(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    buf = journaled(folder, max_staleness=1, capacity_episodes=5)
    for i in range(7):  # capacity 5: two evicted
        buf.add(episode(f"e{i}", turns=i % 3 + 1, version=i // 3, reward=i, success=i % 2 == 0))
    buf.add(episode("e6"))  # a duplicate
    buf.set_policy_version(2)  # e2 (version 0, lag 2) dropped stale
    first = buf.consume(2, request_id="update-1")
    before = kept(buf)

    again = journaled(folder, max_staleness=1, capacity_episodes=5)  # the old one 'died'
    assert kept(again) == before
    assert again.stats()["buffer/restarts"] == 1
    # The retried request gets the same episodes; the next one continues in FIFO order.
    assert again.consume(2, request_id="update-1").equals(first)
    assert ids(again.consume(10, request_id="update-2")) == ["e5", "e6"]
    assert again.add(episode("e0")) == 0  # still remembered as seen
    assert again.add(episode("new", version=2)) == 1


def test_files_go_once_their_episodes_are_consumed_and_unpinned(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    buf = journaled(folder)
    for i in range(3):
        buf.add(episode(f"e{i}"))
    assert len(list(folder.glob("add-*.parquet"))) == 3
    buf.consume(3, request_id="a")  # pinned for a retry of "a"
    assert len(list(folder.glob("add-*.parquet"))) == 3
    buf.consume(1, request_id="b")  # nothing left; "a" released
    assert sorted(p.name for p in folder.iterdir()) == [EVENTS_FILE]
    buf.close()
    assert not folder.exists()


def test_a_torn_last_event_and_a_half_written_file_are_dropped(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    buf = journaled(folder)
    buf.add(episode("a"))
    buf.add(episode("b"))
    with (folder / EVENTS_FILE).open("a") as f:
        f.write('{"op": "consume", "requ')  # died in mid-append
    (folder / "add-00000099.parquet.tmp").write_bytes(b"PAR")  # died in mid-write
    again = journaled(folder)
    assert not (folder / "add-00000099.parquet.tmp").exists()
    assert ids(again.consume(5)) == ["a", "b"]


def test_journaled_episodes_spill_without_a_second_copy(tmp_path: Path) -> None:
    buf = ReplayBuffer(ReplayBufferConfig(memory_bound_mb=1e-3), tmp_path, tmp_path / "j")
    eps = [episode(f"e{i}", turns=3) for i in range(20)]
    for ep in eps:
        buf.add(ep)
    stats = buf.stats()
    assert stats["buffer/spilled_episodes"] > 0
    assert not list(tmp_path.glob("buffer-spill-*"))  # no spill folder: the journal serves
    assert ids(buf.consume(20)) == [f"e{i}" for i in range(20)]


def test_random_operations_with_restarts_match_an_uninterrupted_buffer(tmp_path: Path) -> None:
    rng = random.Random(7)
    kw = {"max_staleness": 1, "capacity_episodes": 12, "memory_bound_mb": 4e-3}
    reference = ReplayBuffer(ReplayBufferConfig(**kw))
    folder = tmp_path / "journal"
    buf = journaled(folder, **kw)
    version, next_id, request = 0, 0, 0
    for step in range(300):
        op = rng.random()
        if op < 0.5:  # a batch of new episodes, sometimes with a resent one
            batch, in_batch = [], set()
            for _ in range(rng.randint(1, 3)):
                resend = rng.random() < 0.2 and next_id > 0
                eid = f"e{rng.randrange(next_id)}" if resend else f"e{next_id}"
                next_id += not resend
                if eid not in in_batch:
                    in_batch.add(eid)
                    ev = max(0, version - rng.randint(0, 2))
                    batch += episode(eid, turns=rng.randint(1, 3), version=ev, reward=rng.random())
            assert buf.add(batch) == reference.add(batch)
        elif op < 0.7:
            version += 1
            reference.set_policy_version(version)
            buf.set_policy_version(version)
        elif op < 0.9:
            n, request = rng.randint(0, 4), request + 1
            want = reference.consume(n)
            got = buf.consume(n, request_id=f"r{request}")
            assert got.equals(want), f"step {step}"
            if rng.random() < 0.3:  # the caller retries after a death
                buf = journaled(folder, **kw)
                assert buf.consume(n, request_id=f"r{request}").equals(want)
        else:
            buf = journaled(folder, **kw)  # a death between calls
        assert kept(buf) == kept(reference), f"step {step}"
    assert buf.consume(100, request_id="last").equals(reference.consume(100))
