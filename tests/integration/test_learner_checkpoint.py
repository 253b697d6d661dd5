"""Two DeepSpeed ranks through SFT and PPO steps: replicas stay identical, and
k steps + save + resume + m steps == k + m steps in one go (bitwise, fp32)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from learner.assets import prepare
from learner.batching import TrainRow
from learner.config import LearnerConfig
from learner.group import LearnerGroup
from rollout.trajectory import TurnRecord, to_record_batch

CFG = LearnerConfig(
    num_ranks=2,
    zero_stage=2,
    micro_batch_size=2,
    grad_accum_steps=2,
    lr=1e-3,
    lr_schedule="cosine",
    warmup_steps=2,
    total_steps=20,
)


def sft_rows(step: int) -> list[TrainRow]:
    """8 deterministic rows (= one optimizer step over 2 ranks), different per step."""
    return [
        TrainRow([1], [10 + (step * 8 + i + k) % 200 for k in range(6)], [True] * 6, [False] * 6)
        for i in range(8)
    ]


def ppo_table(step: int) -> pa.Table:
    turns = [
        TurnRecord(
            episode_id=f"s{step}e{i // 2}",
            turn_index=i % 2,
            task_family="toy",
            task_state="{}",
            prompt_token_ids=[1, 20 + i, 30 + step],
            response_token_ids=[40 + i, 41, 42],
            behaviour_logprobs=[-2.0, -2.0, -2.0],
            response_text='x {"a": 1}',
            reward=float(i % 3) - 1.0,
            success=False,
            done=i % 2 == 1,
            truncated=False,
            verdict="{}",
            policy_version=0,
            group_id=f"g{i // 4}",
        )
        for i in range(6)  # 6 rows: not a multiple of 8, so padding rows are exercised
    ]
    return pa.Table.from_batches([to_record_batch(turns)])


def run(group: LearnerGroup, steps: range) -> None:
    for s in steps:
        group.sft_step(sft_rows(s))
        group.train_ppo(ppo_table(s))


@pytest.mark.timeout(300)
def test_two_ranks_stay_identical_and_resume_is_exact(ray_cluster, tmp_path) -> None:
    path = str(prepare("tiny-lm"))
    group = LearnerGroup(CFG, path)
    try:
        start = group.param_digests()
        run(group, range(2))
        mid = group.param_digests()
        group.save_checkpoint(str(tmp_path / "ckpt"))
        run(group, range(2, 4))
        straight = group.param_digests()
        state_straight = group.state()
    finally:
        group.shutdown()
    assert start[0] == start[1] and mid[0] == mid[1] and straight[0] == straight[1]
    assert len({start[0], mid[0], straight[0]}) == 3
    assert (tmp_path / "ckpt" / "hf" / "config.json").is_file()
    resumed_group = LearnerGroup(CFG, path)
    try:
        state = resumed_group.load_checkpoint(str(tmp_path / "ckpt"))
        assert resumed_group.param_digests() == mid
        run(resumed_group, range(2, 4))
        resumed = resumed_group.param_digests()
        state_resumed = resumed_group.state()
    finally:
        resumed_group.shutdown()
    assert state["policy_version"] == 2 and state["consumed_samples"] == 2 * (8 + 6)
    assert resumed == straight
    assert state_resumed == state_straight
