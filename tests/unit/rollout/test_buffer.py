"""The replay buffer as a plain class: FIFO, de-duplication, staleness, spilling, Parquet."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rollout.buffer import ReplayBuffer, as_trajectory_table
from rollout.buffer_config import ReplayBufferConfig
from rollout.trajectory import TRAJECTORY_SCHEMA, TurnRecord, from_table, to_record_batch


def episode(
    eid: str, turns: int = 2, version: int = 0, reward: float = 1.0, success: bool = False
) -> list[TurnRecord]:
    """A complete episode whose token lists vary with the id and turn (list columns matter)."""
    seed = sum(map(ord, eid))
    return [
        TurnRecord(
            episode_id=eid,
            turn_index=t,
            task_family="generalpoints",
            task_state='{"target": 24}',
            prompt_token_ids=list(range(seed % 7 + 5 * t + 3)),
            response_token_ids=[seed % 100, t, 7],
            behaviour_logprobs=[-0.5, -0.25 * t, -1.0],
            response_text=f"{eid} turn {t}",
            reward=reward,
            success=success and t == turns - 1,
            done=t == turns - 1,
            truncated=False,
            verdict='{"parse_ok": true}',
            policy_version=version,
            group_id="g",
            image_ref=None if t % 2 else f"img/{eid}/{t}",
            extra={"t": t},
            episode_success=success,
        )
        for t in range(turns)
    ]


def table_of(*episodes: list[TurnRecord]) -> pa.Table:
    return pa.Table.from_batches([to_record_batch([t for ep in episodes for t in ep])])


def ids(table: pa.Table) -> list[str]:
    """Episode ids in order; asserts each episode's turns are contiguous and in turn order."""
    out: list[str] = []
    expected_turn = 0
    for eid, turn in zip(table["episode_id"].to_pylist(), table["turn_index"].to_pylist()):
        if not out or out[-1] != eid:
            assert eid not in out, f"turns of {eid} are not contiguous"
            out.append(eid)
            expected_turn = 0
        assert turn == expected_turn, f"{eid}: turn {turn}, expected {expected_turn}"
        expected_turn += 1
    return out


def make(**kw) -> ReplayBuffer:
    return ReplayBuffer(ReplayBufferConfig(**kw))


def test_consume_is_fifo_with_turns_together_and_in_order() -> None:
    buf = make()
    eps = [episode(f"e{i}", turns=i % 3 + 1) for i in range(5)]
    # Turns arrive shuffled and two episodes share a batch: the buffer restores turn order.
    shuffled = [*eps[0], *eps[1]]
    random.Random(0).shuffle(shuffled)
    assert buf.add(shuffled) == 2
    for ep in eps[2:]:
        assert buf.add(to_record_batch(ep)) == 1
    first = buf.consume(2)
    assert ids(first) == ["e0", "e1"]
    assert first.equals(table_of(eps[0], eps[1]), check_metadata=True)
    rest = buf.consume(10)
    assert ids(rest) == ["e2", "e3", "e4"]
    assert from_table(rest) == [t for ep in eps[2:] for t in ep]
    empty = buf.consume(3)
    assert empty.num_rows == 0 and empty.schema.equals(TRAJECTORY_SCHEMA, check_metadata=True)


def test_duplicates_are_ignored_while_held_and_after_consumption() -> None:
    buf = make()
    assert buf.add(episode("a")) == 1
    assert buf.add(episode("a")) == 0  # same episode twice
    assert buf.add([*episode("b"), *episode("a")]) == 1
    assert ids(buf.consume(5)) == ["a", "b"]
    assert buf.add(episode("a")) == 0  # already consumed
    assert buf.consume(5).num_rows == 0
    s = buf.stats()
    assert s["buffer/duplicates_ignored"] == 3
    assert s["buffer/total_added"] == 2 and s["buffer/total_consumed"] == 2


def test_incomplete_episode_rejects_the_whole_batch() -> None:
    buf = make()
    turns = [*episode("ok"), *episode("bad", turns=3)]
    del turns[3]  # drop turn 1 of "bad"
    with pytest.raises(ValueError, match=r"episode 'bad': turn_index must be 0\.\.1.*\[0, 2\]"):
        buf.add(turns)
    assert buf.stats()["buffer/size_episodes"] == 0
    assert buf.add(episode("ok")) == 1  # nothing of the failed batch was remembered


def test_strict_on_policy_serves_only_the_current_version() -> None:
    buf = make(max_staleness=0)
    buf.add(episode("v0a", version=0))
    buf.add(episode("v0b", version=0))
    buf.set_policy_version(1)  # drop_stale: both go now
    assert buf.stats()["buffer/dropped_stale"] == 2
    assert buf.add(episode("late", version=0)) == 0  # stale on arrival
    buf.add(episode("v1", version=1))
    assert ids(buf.consume(5)) == ["v1"]
    s = buf.stats()
    assert s["buffer/dropped_stale"] == 3 and s["buffer/size_episodes"] == 0
    with pytest.raises(ValueError, match=r"^policy_version: versions only go forward"):
        buf.set_policy_version(0)


def test_max_staleness_two_keeps_but_skips_stale_episodes() -> None:
    buf = make(max_staleness=2, drop_stale=False)
    for v in range(4):
        buf.add(episode(f"v{v}", version=v))
    buf.set_policy_version(3)  # staleness 3, 2, 1, 0
    assert buf.ready_episodes() == 3
    assert ids(buf.sample(10)) != [] and "v0" not in ids(buf.sample(10))
    assert ids(buf.consume(2)) == ["v1", "v2"]
    assert ids(buf.consume(2)) == ["v3"]
    s = buf.stats()
    assert s["buffer/size_episodes"] == 1 and s["buffer/ready_episodes"] == 0
    assert s["buffer/dropped_stale"] == 0 and s["buffer/mean_lag"] == 3


def test_episode_with_mixed_versions_is_judged_by_its_oldest_turn() -> None:
    buf = make(max_staleness=1)
    turns = episode("mixed", turns=3, version=5)
    turns[0].policy_version = 3  # weights swapped mid-episode
    buf.add(turns)
    buf.set_policy_version(4)  # oldest turn lags by 1: still servable
    assert buf.stats()["buffer/max_lag"] == 1
    buf.set_policy_version(5)  # lags by 2: dropped
    assert buf.stats()["buffer/dropped_stale"] == 1


def test_capacity_evicts_the_oldest() -> None:
    buf = make(capacity_episodes=3)
    for i in range(5):
        buf.add(episode(f"e{i}"))
    assert ids(buf.consume(10)) == ["e2", "e3", "e4"]
    assert buf.stats()["buffer/evicted"] == 2


def test_spill_past_memory_bound_then_consume_everything_back_in_order(tmp_path) -> None:
    # ~1.5 KB in memory; every episode here is a few hundred bytes, so most get spilled.
    buf = make(memory_bound_mb=1.5e-3, spill_dir=str(tmp_path))
    eps = [episode(f"e{i:02d}", turns=i % 3 + 1, reward=i) for i in range(30)]
    for ep in eps:
        buf.add(ep)
        assert buf.stats()["buffer/in_memory_mb"] <= 1.5e-3
    s = buf.stats()
    assert s["buffer/spilled_episodes"] > 10 and s["buffer/spill_files"] >= 2
    files = list(tmp_path.glob("buffer-spill-*/spill-*.parquet"))
    assert len(files) == s["buffer/spill_files"]
    got = [buf.consume(4) for _ in range(8)]
    assert buf.stats()["buffer/size_episodes"] == 0
    assert pa.concat_tables(got).equals(table_of(*eps), check_metadata=True)
    assert all(t.schema.equals(TRAJECTORY_SCHEMA, check_metadata=True) for t in got)
    assert list(tmp_path.glob("buffer-spill-*/*")) == []  # fully consumed files deleted
    buf.close()
    assert list(tmp_path.iterdir()) == []


def test_spill_file_is_deleted_when_its_last_episode_leaves(tmp_path) -> None:
    buf = make(memory_bound_mb=1.5e-3, spill_dir=str(tmp_path))
    for i in range(12):
        buf.add(episode(f"e{i:02d}"))
    before = buf.stats()["buffer/spill_files"]
    assert before >= 1
    buf.consume(1)
    consumed = 1
    while buf.stats()["buffer/spill_files"] == before:
        buf.consume(1)
        consumed += 1
    assert buf.stats()["buffer/spill_files"] == before - 1
    assert len(list(tmp_path.glob("*/*.parquet"))) == before - 1
    assert consumed < 12


def test_sample_is_seeded_uniform_and_does_not_remove(tmp_path) -> None:
    def filled() -> ReplayBuffer:
        buf = make(seed=7, memory_bound_mb=1.5e-3, spill_dir=str(tmp_path))
        for i in range(20):
            buf.add(episode(f"e{i:02d}"))
        return buf

    a, b = filled(), filled()
    draws = [ids(a.sample(5)) for _ in range(3)]
    assert draws == [ids(b.sample(5)) for _ in range(3)]
    assert all(len(set(d)) == 5 for d in draws) and len({tuple(d) for d in draws}) == 3
    assert a.stats()["buffer/size_episodes"] == 20
    assert sorted(ids(a.sample(100))) == [f"e{i:02d}" for i in range(20)]
    one = a.sample(1)
    assert from_table(one) == episode(ids(one)[0])  # spilled or not, contents intact
    counts = {f"e{i:02d}": 0 for i in range(20)}
    for _ in range(400):
        for eid in ids(a.sample(2)):
            counts[eid] += 1
    assert min(counts.values()) > 15  # 40 expected per episode


def test_save_load_round_trip_through_parquet(tmp_path) -> None:
    buf = make(memory_bound_mb=1.5e-3, spill_dir=str(tmp_path / "spill"))
    eps = [episode(f"e{i}", turns=i % 3 + 1, version=1, success=i % 2 == 0) for i in range(9)]
    for ep in eps:
        buf.add(ep)
    assert 0 < buf.stats()["buffer/spilled_episodes"] < 9  # both kinds are saved
    path = tmp_path / "out" / "buffer.parquet"
    assert buf.save(path) == 9
    expected = table_of(*eps)
    on_disk = pq.read_table(path)
    assert on_disk.schema.metadata == TRAJECTORY_SCHEMA.metadata
    assert as_trajectory_table(on_disk).equals(expected, check_metadata=True)
    other = make()
    assert other.load(path) == 9
    assert other.stats()["buffer/size_turns"] == buf.stats()["buffer/size_turns"]
    back = other.consume(100)
    assert back.equals(expected, check_metadata=True)
    assert from_table(back) == [t for ep in eps for t in ep]


def test_schema_errors_name_the_column() -> None:
    buf = make()
    good = table_of(episode("x"))
    with pytest.raises(ValueError, match=r"missing column\(s\) \['reward'\]"):
        buf.add(good.drop_columns(["reward"]))
    with pytest.raises(ValueError, match=r"unexpected column\(s\) \['foo'\]"):
        buf.add(good.append_column("foo", pa.array([1, 2])))
    mistyped = good.set_column(1, "turn_index", good["turn_index"].cast(pa.int64()))
    with pytest.raises(ValueError, match="column 'turn_index' has type int64, expected int32"):
        buf.add(mistyped)
    floats = good.set_column(
        5, "response_token_ids", good["response_token_ids"].cast(pa.list_(pa.float32()))
    )
    with pytest.raises(ValueError, match="column 'response_token_ids' has type list<item: float"):
        buf.add(floats)
    nulls = pa.table({**good.to_pydict(), "reward": [None, 1.0]})
    with pytest.raises(ValueError, match="column 'reward' has type double"):
        buf.add(nulls)
    nulls = good.set_column(8, "reward", pa.array([None, 1.0], pa.float32()))
    with pytest.raises(ValueError, match="column 'reward' holds nulls but is not nullable"):
        buf.add(nulls)
    future = good.replace_schema_metadata({"veriray.trajectory.version": "99"})
    with pytest.raises(ValueError, match="schema version 99, expected 3"):
        buf.add(future)
    with pytest.raises(TypeError, match="RecordBatch, Table or list"):
        buf.add({"episode_id": ["x"]})  # type: ignore[arg-type]
    # Column order and missing metadata are fine: the buffer restores TRAJECTORY_SCHEMA.
    assert buf.add(good.select(good.column_names[::-1]).replace_schema_metadata(None)) == 1
    assert buf.consume(1).equals(good, check_metadata=True)


def test_stats_against_hand_counts() -> None:
    buf = make(max_staleness=1, capacity_episodes=4)
    assert buf.stats()["buffer/reward_mean"] == 0.0  # empty: zeros, not NaN
    buf.add(episode("a", turns=1, version=0, reward=1.0, success=True))  # return 1
    buf.add(episode("b", turns=2, version=1, reward=0.5))  # return 1.0
    buf.add(episode("c", turns=3, version=2, reward=-1.0, success=True))  # return -3
    buf.add(episode("a"))  # duplicate
    buf.set_policy_version(2)  # a: lag 2 > 1, dropped
    buf.add(episode("d", turns=1, version=2, reward=2.0))
    buf.add(episode("e", turns=1, version=2, reward=0.0))
    buf.add(episode("f", turns=1, version=2, reward=0.0))  # capacity 4: evicts b
    buf.consume(1)  # c
    s = buf.stats()
    assert s == {
        "buffer/size_episodes": 3,  # d, e, f
        "buffer/size_turns": 3,
        "buffer/ready_episodes": 3,
        "buffer/in_memory_mb": pytest.approx(s["buffer/in_memory_mb"]),
        "buffer/spilled_episodes": 0,
        "buffer/spill_files": 0,
        "buffer/policy_version": 2,
        "buffer/mean_lag": 0.0,
        "buffer/max_lag": 0,
        "buffer/reward_mean": pytest.approx(2.0 / 3),
        "buffer/success_rate": 0.0,
        "buffer/total_added": 6,
        "buffer/total_consumed": 1,
        "buffer/dropped_stale": 1,
        "buffer/duplicates_ignored": 1,
        "buffer/evicted": 1,
        "buffer/restarts": 0,
    }
    assert 0 < s["buffer/in_memory_mb"] < 0.01
    # Every new episode is held, consumed, dropped or evicted.
    assert s["buffer/total_added"] == sum(
        s[f"buffer/{k}"] for k in ("size_episodes", "total_consumed", "dropped_stale", "evicted")
    )
    held = [episode(e, turns=1, version=2, reward=r) for e, r in (("d", 2.0), ("e", 0), ("f", 0))]
    assert buf.consume(3).equals(table_of(*held))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("capacity_episodes", 0, "capacity_episodes: must be >= 1, got 0"),
        ("max_staleness", -1, "max_staleness: must be >= 0, got -1"),
        ("memory_bound_mb", 0.0, "memory_bound_mb: must be > 0, got 0.0"),
        ("spill_dir", "", "spill_dir: must be a path or null"),
    ],
)
def test_config_errors_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        ReplayBufferConfig(**{field: value})
    assert str(err.value).startswith(message)


def test_consume_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match=r"^num_episodes: must be >= 0"):
        make().consume(-1)
