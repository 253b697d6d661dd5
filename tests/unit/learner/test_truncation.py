"""Truncated responses: the finish reason in the trajectory, the handlings by hand."""

import pytest
import torch
from torch.testing import assert_close

from learner.truncation import (
    TRUNCATION_HANDLERS,
    register_truncation,
    shape_rewards,
    truncated_flags,
)
from rollout.trajectory import (
    SCHEMA_VERSION,
    TRAJECTORY_SCHEMA,
    TurnRecord,
    from_table,
    to_record_batch,
)


def turn(finish_reason: str) -> TurnRecord:
    return TurnRecord(
        episode_id="e",
        turn_index=0,
        task_family="toy",
        task_state="{}",
        prompt_token_ids=[1, 2],
        response_token_ids=[3],
        behaviour_logprobs=[-0.1],
        response_text="x",
        reward=0.0,
        success=False,
        done=True,
        truncated=False,
        verdict="{}",
        policy_version=0,
        finish_reason=finish_reason,
    )


def test_finish_reason_is_a_trajectory_column_and_survives_the_table():
    assert TRAJECTORY_SCHEMA.field("finish_reason").type == "string"
    assert TRAJECTORY_SCHEMA.metadata[b"veriray.trajectory.version"] == str(SCHEMA_VERSION).encode()
    batch = to_record_batch([turn("length"), turn("stop"), turn("")])
    assert [t.finish_reason for t in from_table(batch)] == ["length", "stop", ""]
    flags = truncated_flags(batch.column("finish_reason").to_pylist())
    assert flags.tolist() == [True, False, False]
    assert truncated_flags([None, "length"]).tolist() == [False, True]  # older rows: unknown


def test_handlings_by_hand():
    rewards = torch.tensor([1.0, 0.0, 0.5], dtype=torch.float64)
    cut = torch.tensor([False, True, True])
    r, w = TRUNCATION_HANDLERS["keep"](rewards, cut, -1.0)
    assert_close(r, rewards)
    assert_close(w, torch.ones(3, dtype=torch.float64))
    r, w = TRUNCATION_HANDLERS["mask"](rewards, cut, -1.0)
    assert_close(r, rewards)  # the reward still counts in its group's baseline
    assert_close(w, torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    r, w = TRUNCATION_HANDLERS["penalty"](rewards, cut, -0.5)
    assert_close(r, torch.tensor([1.0, -0.5, 0.0], dtype=torch.float64))
    assert_close(w, torch.ones(3, dtype=torch.float64))


def test_registry_guard():
    assert set(TRUNCATION_HANDLERS) == {"keep", "mask", "penalty"}
    with pytest.raises(ValueError, match="twice"):
        register_truncation("mask")(TRUNCATION_HANDLERS["mask"])


def test_shape_rewards_on_plain_lists():
    rewards, weights = shape_rewards([1.0, 0.0], ["stop", "length"], "penalty", -2.0)
    assert (rewards, weights) == ([1.0, -2.0], [1.0, 1.0])
    rewards, weights = shape_rewards([1.0, 0.0], ["stop", "length"], "mask", -2.0)
    assert (rewards, weights) == ([1.0, 0.0], [1.0, 0.0])
