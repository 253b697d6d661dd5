"""Trajectory rows -> padded batches, rank shards and per-turn advantages."""

from __future__ import annotations

import pyarrow as pa
import pytest
import torch

from learner.advantages import gae, whiten
from learner.batching import TrainRow, collate, shard_indices, turn_advantages
from learner.config import LearnerConfig, PPOConfig
from rollout.trajectory import TurnRecord, to_record_batch


def test_collate_left_pads_and_right_aligns_responses() -> None:
    rows = [
        TrainRow([1, 2, 3], [4, 5], [False, True], [True, False], behaviour_logprobs=[-1.0, -2.0]),
        TrainRow(
            [7], [8, 9, 10], [True] * 3, [False] * 3, stale=True, behaviour_logprobs=[-3.0] * 3
        ),
        TrainRow([7], [8], [True], [False], weight=0.0),
    ]
    b = collate(rows, pad_id=0)
    assert b.input_ids.tolist() == [[1, 2, 3, 4, 5], [0, 7, 8, 9, 10], [0, 0, 0, 7, 8]]
    assert b.attention_mask.tolist() == [[1] * 5, [0, 1, 1, 1, 1], [0, 0, 0, 1, 1]]
    assert b.position_ids.tolist() == [[0, 1, 2, 3, 4], [0, 0, 1, 2, 3], [0, 0, 0, 0, 1]]
    assert b.response_ids.tolist() == [[0, 4, 5], [8, 9, 10], [0, 0, 8]]
    assert b.value_index.tolist() == [2, 1, 3]  # the last prompt token of each row
    assert b.answer_mask.tolist() == [[False, False, True], [True] * 3, [False] * 3]
    assert b.reasoning_mask.tolist() == [[False, True, False], [False] * 3, [False] * 3]
    assert b.num_logits == 4
    # Compute counts every real token of the rows that train (5 + 4), the loss only responses.
    assert b.processed_tokens == 9 and b.num_tokens == 2 + 3
    assert b.use_behaviour.tolist() == [False, True, False]
    assert b.behaviour_logp[0].tolist() == [0.0, -1.0, -2.0]
    # the kept logits' positions L-T-1 .. L-2 predict exactly the response tokens
    for i, r in enumerate(rows):
        t = len(r.response_ids)
        assert b.input_ids[i, 5 - t :].tolist() == b.response_ids[i, 3 - t :].tolist()


@pytest.mark.parametrize(("n", "ranks", "mb", "acc"), [(10, 2, 2, 1), (8, 2, 2, 2), (3, 2, 4, 1)])
def test_shards_have_equal_step_counts_and_cover_every_row_once(n, ranks, mb, acc) -> None:
    cfg = LearnerConfig(num_ranks=ranks, micro_batch_size=mb, grad_accum_steps=acc)
    shards = shard_indices(n, cfg)
    sizes = {len(s) for s in shards}
    assert len(sizes) == 1 and sizes.pop() % (mb * acc) == 0
    real = sorted(i for s in shards for i, w in s if w > 0)
    assert real == list(range(n))
    assert all(w in (0.0, 1.0) for s in shards for _, w in s)


def _table(rows: list[tuple[str, int, float, bool, str]]) -> pa.Table:
    turns = [
        TurnRecord(
            episode_id=e,
            turn_index=t,
            task_family="x",
            task_state="{}",
            prompt_token_ids=[1],
            response_token_ids=[2],
            behaviour_logprobs=[-1.0],
            response_text="a",
            reward=r,
            success=False,
            done=d,
            truncated=False,
            verdict="{}",
            policy_version=0,
            group_id=g,
        )
        for e, t, r, d, g in rows
    ]
    return pa.Table.from_batches([to_record_batch(turns)])


def test_gae_runs_over_each_episode_in_turn_order() -> None:
    # Rows shuffled; episode b lacks its final turn in the batch: still no bootstrap into a.
    table = _table(
        [
            ("b", 1, 0.5, False, "g"),
            ("a", 1, 5.0, True, "g"),
            ("a", 0, -1.0, False, "g"),
            ("b", 0, -2.0, False, "g"),
        ]
    )
    values = [0.3, 0.2, 0.1, 0.4]
    cfg = LearnerConfig(ppo=PPOConfig(whiten_advantages=False))
    adv, ret = turn_advantages(table, values, cfg)
    # expected: order a0, a1, b0, b1 with dones F, T, F, T(forced)
    exp_adv, exp_ret = gae(
        torch.tensor([-1.0, 5.0, -2.0, 0.5]),
        torch.tensor([0.1, 0.2, 0.4, 0.3]),
        torch.tensor([False, True, False, True]),
        gamma=0.9,
        lam=0.95,
    )
    order = [2, 1, 3, 0]
    assert [adv[i] for i in order] == pytest.approx(exp_adv.tolist(), abs=1e-6)
    assert [ret[i] for i in order] == pytest.approx(exp_ret.tolist(), abs=1e-6)
    adv_w, _ = turn_advantages(table, values, LearnerConfig())
    assert [adv_w[i] for i in order] == pytest.approx(whiten(exp_adv).tolist(), abs=1e-5)


def test_grpo_groups_by_task_and_turn_depth() -> None:
    table = _table(
        [
            ("a", 0, 1.0, True, "g1"),
            ("b", 0, 0.0, True, "g1"),
            ("c", 0, 3.0, True, "g2"),
            ("d", 0, 3.0, True, "g2"),
        ]
    )
    cfg = LearnerConfig(critic="none", ppo=PPOConfig(policy_loss="grpo", advantage="grpo"))
    adv, ret = turn_advantages(table, None, cfg)
    assert adv[0] > 0 > adv[1]
    assert adv[2] == adv[3] == 0.0
    assert ret == [1.0, 0.0, 3.0, 3.0]
