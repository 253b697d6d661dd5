"""The replay buffer as a real Ray actor: episodes streamed in by concurrent tasks as they
finish, consumed by the driver; nothing lost, nothing duplicated."""

from __future__ import annotations

import time

import pyarrow as pa
import ray

from rollout.buffer_actor import make_buffer_actor
from rollout.buffer_config import ReplayBufferConfig
from rollout.trajectory import TurnRecord, to_record_batch

NUM_PRODUCERS = 4
EPISODES_PER_PRODUCER = 12
CONSUME_DEADLINE_S = 60  # generous: the CI machine may be busy with other tests


def episode(eid: str, turns: int, version: int) -> list[TurnRecord]:
    return [
        TurnRecord(
            episode_id=eid,
            turn_index=t,
            task_family="virl",
            task_state="{}",
            prompt_token_ids=list(range(40 + t)),
            response_token_ids=[1, 2, 3, t],
            behaviour_logprobs=[-0.1, -0.2, -0.3, -0.4],
            response_text=f"{eid}/{t}",
            reward=1.0,
            success=t == turns - 1,
            done=t == turns - 1,
            truncated=False,
            verdict="{}",
            policy_version=version,
            worker_id=eid.split("-")[0],
        )
        for t in range(turns)
    ]


@ray.remote(num_cpus=0.25)
def stream_episodes(buffer, worker: str, count: int) -> int:
    """A stand-in rollout worker: sends each episode as soon as it 'finishes', and re-sends
    one (as a retried task would)."""
    stored = 0
    for i in range(count):
        batch = to_record_batch(episode(f"{worker}-{i}", turns=i % 3 + 1, version=0))
        stored += ray.get(buffer.add.remote(batch))
        time.sleep(0.01)
    stored += ray.get(buffer.add.remote(to_record_batch(episode(f"{worker}-0", 1, 0))))
    return stored


def test_concurrent_producers_driver_consumes_everything_once(ray_cluster, tmp_path) -> None:
    # A tiny memory bound so that spilled episodes are part of what crosses the actor boundary
    # (without a journal: spill files of their own; journaled spills are tested below).
    cfg = ReplayBufferConfig(memory_bound_mb=4e-3, max_staleness=0, journal=False)
    buffer = make_buffer_actor(cfg, run_dir=tmp_path)
    producers = [
        stream_episodes.remote(buffer, f"w{k}", EPISODES_PER_PRODUCER) for k in range(NUM_PRODUCERS)
    ]
    total = NUM_PRODUCERS * EPISODES_PER_PRODUCER
    # Let a backlog build past the memory bound, then drain while the producers still run.
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    while ray.get(buffer.ready_episodes.remote()) < 16 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ray.get(buffer.stats.remote())["buffer/spilled_episodes"] > 0
    got: list[pa.Table] = []
    received = 0
    deadline = time.monotonic() + CONSUME_DEADLINE_S
    while received < total and time.monotonic() < deadline:
        # Waits up to 2 s for 8 episodes, returns fewer on timeout: the learner's loop.
        table = ray.get(buffer.consume.remote(8, timeout_s=2.0))
        received += len(set(table["episode_id"].to_pylist()))
        got.append(table)
    assert ray.get(producers) == [EPISODES_PER_PRODUCER] * NUM_PRODUCERS

    rows = pa.concat_tables(got)
    eids = rows["episode_id"].to_pylist()
    turns = rows["turn_index"].to_pylist()
    order = list(dict.fromkeys(eids))
    expected = {f"w{k}-{i}" for k in range(NUM_PRODUCERS) for i in range(EPISODES_PER_PRODUCER)}
    assert set(order) == expected and len(order) == total  # nothing lost or duplicated
    for eid in order:  # each episode complete, contiguous, in turn order
        n = int(eid.split("-")[1]) % 3 + 1
        first = eids.index(eid)
        assert eids[first : first + n] == [eid] * n
        assert turns[first : first + n] == list(range(n))
    for k in range(NUM_PRODUCERS):  # FIFO: one producer's episodes come out in its order
        mine = [int(e.split("-")[1]) for e in order if e.startswith(f"w{k}-")]
        assert mine == sorted(mine)

    stats = ray.get(buffer.stats.remote())
    assert stats["buffer/total_consumed"] == total
    assert stats["buffer/duplicates_ignored"] == NUM_PRODUCERS
    assert stats["buffer/size_episodes"] == 0
    assert stats["buffer/spill_files"] == 0
    assert len(list(tmp_path.glob("buffer-spill-*"))) == 1  # spilled under the run dir
    ray.get(buffer.close.remote())
    assert list(tmp_path.iterdir()) == []
    ray.kill(buffer)


def test_waiting_consume_gets_an_episode_added_meanwhile(ray_cluster) -> None:
    buffer = make_buffer_actor(ReplayBufferConfig(max_staleness=1))
    ray.get(buffer.set_policy_version.remote(3))
    pending = buffer.consume.remote(1, timeout_s=30.0)
    time.sleep(0.3)  # the consume is waiting inside the actor
    assert ray.get(buffer.add.remote(episode("late-0", 2, version=2))) == 1
    table = ray.get(pending, timeout=30)
    assert table["episode_id"].to_pylist() == ["late-0", "late-0"]
    start = time.monotonic()
    assert ray.get(buffer.consume.remote(1, timeout_s=0.2)).num_rows == 0
    assert time.monotonic() - start >= 0.2
    ray.kill(buffer)


def test_a_killed_buffer_restarts_from_its_journal_and_serves_the_waiting_consume(
    ray_cluster, tmp_path
) -> None:
    buffer = make_buffer_actor(ReplayBufferConfig(memory_bound_mb=1e-3), run_dir=tmp_path)
    for i in range(5):
        assert ray.get(buffer.add.remote(to_record_batch(episode(f"w-{i}", i % 3 + 1, 0)))) == 1
    first = ray.get(buffer.consume.remote(2, 0.0, "update-1"))
    waiting = buffer.consume.remote(5, 60.0, "update-2")  # 3 ready: it waits for two more
    ray.kill(buffer, no_restart=False)  # a real death of the actor's process; Ray restarts it
    for i in range(5, 7):  # sent while it restarts: Ray retries them on the new process
        ray.get(buffer.add.remote(to_record_batch(episode(f"w-{i}", 1, 0))))
    assert ray.get(buffer.add.remote(to_record_batch(episode("w-0", 1, 0)))) == 0  # seen
    second = ray.get(waiting, timeout=120)
    assert list(dict.fromkeys(first["episode_id"].to_pylist())) == ["w-0", "w-1"]
    assert list(dict.fromkeys(second["episode_id"].to_pylist())) == [f"w-{i}" for i in range(2, 7)]
    stats = ray.get(buffer.stats.remote())
    assert stats["buffer/restarts"] == 1
    assert stats["buffer/total_added"] == 7 and stats["buffer/total_consumed"] == 7
    ray.get(buffer.close.remote())
    assert list(tmp_path.iterdir()) == []  # journal folder gone with close
    ray.kill(buffer)
