"""Actor pools: round-robin with indices, and the hung-actor error the fleet acts on."""

from __future__ import annotations

import pickle

from rollout.pools import ActorHungError, ActorPool, hung_actor


def test_pick_cycles_with_indices() -> None:
    pool = ActorPool(["a", "b", "c"], "env")
    assert [pool.pick_indexed() for _ in range(4)] == [(0, "a"), (1, "b"), (2, "c"), (0, "a")]
    assert pool.pick() == "b"


def test_hung_error_crosses_processes_and_is_found_behind_a_wrapper() -> None:
    err = ActorHungError("verifier", 1, "abc123", "verify", 2.5)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.kind, copy.index, copy.actor_id, copy.method, copy.timeout_s) == (
        "verifier", 1, "abc123", "verify", 2.5,
    )  # fmt: skip
    assert "verifier actor 1" in str(copy) and "rollout.actor_call_timeout_s" in str(copy)

    class Wrapper(Exception):  # the shape of Ray's task error: the original as .cause
        cause = err

    found = hung_actor(Wrapper("traceback text"))
    assert found is not None and str(found) == str(err)
    assert hung_actor(ValueError("x")) is None
