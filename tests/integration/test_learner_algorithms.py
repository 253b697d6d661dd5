"""Truncated responses, dynamic sampling and the reference model through the real
LearnerGroup (Ray, DeepSpeed gloo, the tiny LM): a masked truncated response moves no weight,
groups of equal rewards are dropped before the update, and the reference on sharded ranks is
the starting policy."""

from __future__ import annotations

import pyarrow as pa
import pytest
import ray

from learner.assets import prepare
from learner.config import LearnerConfig, PPOConfig
from learner.group import LearnerGroup
from rollout.trajectory import TurnRecord, to_record_batch

PROMPT = [1, 5, 6, 7, 8]


def table_of(samples: list[dict], rewards: list[float], groups: list[str], finish: str, tag: str):
    turns = [
        TurnRecord(
            episode_id=f"{tag}-{i}",
            turn_index=0,
            task_family="toy",
            task_state="{}",
            prompt_token_ids=PROMPT,
            response_token_ids=s["response_token_ids"],
            behaviour_logprobs=s["behaviour_logprobs"],
            response_text=s["response_text"],
            reward=r,
            success=r > 0,
            done=True,
            truncated=False,
            verdict="{}",
            policy_version=0,
            group_id=g,
            finish_reason=finish,
        )
        for i, (s, r, g) in enumerate(zip(samples, rewards, groups, strict=True))
    ]
    return pa.Table.from_batches([to_record_batch(turns)])


@pytest.mark.timeout(300)
def test_truncation_mask_and_dynamic_sampling_in_a_real_update(ray_cluster) -> None:
    ppo = PPOConfig(
        policy_loss="grpo",
        advantage="grpo",
        epochs=1,
        temperature=1.0,
        truncated_response="mask",
        dynamic_sampling=True,
    )
    cfg = LearnerConfig(micro_batch_size=4, lr=1e-3, seed=0, ppo=ppo, critic="none")
    group = LearnerGroup(cfg, str(prepare("tiny-lm")))
    try:
        samples = ray.get(group.ranks[0].sample.remote(PROMPT, 8, 4, 1.0, 7))
        rewards = [1.0, 0.0] * 4  # every group of two is informative
        groups = [f"g{i // 2}" for i in range(8)]
        # 1. Every response was cut at the token limit and is masked: no weight moves.
        before = group.param_digests()
        m = group.train_ppo(table_of(samples, rewards, groups, "length", "cut"))
        assert m["learner/truncated_frac"] == 1.0
        assert group.param_digests() == before
        # 2. The same responses, finished: the update moves the weights.
        m = group.train_ppo(table_of(samples, rewards, groups, "stop", "done"))
        assert m["learner/truncated_frac"] == 0.0 and m["learner/groups_kept"] == 4.0
        after = group.param_digests()
        assert after != before
        # 3. Groups whose rewards are all equal are dropped: only g0 is left to train on.
        flat = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0]  # g0 mixed, g1-g3 equal
        m = group.train_ppo(table_of(samples, flat, groups, "stop", "ds"))
        assert (m["learner/groups_kept"], m["learner/groups_dropped"]) == (1.0, 3.0)
        assert group.param_digests() != after
        # 4. No informative group at all: the batch is kept whole (zero GRPO advantages), so
        # the run goes on; the metric says so.
        m = group.train_ppo(table_of(samples, [1.0] * 8, groups, "stop", "flat"))
        assert m["learner/groups_all_uninformative"] == 1.0
        assert m["learner/advantage_abs_mean"] == 0.0
    finally:
        group.shutdown()


@pytest.mark.timeout(300)
def test_reference_on_two_zero3_ranks_is_the_starting_policy(ray_cluster) -> None:
    """Under ZeRO-3 the policy is sharded over the ranks and the reference is a whole copy
    on each: before the first update the two score every token alike (the KL in the reward is
    exactly 0), and after it the KL is > 0 (the reference did not follow the policy)."""
    ppo = PPOConfig(
        policy_loss="grpo",
        advantage="grpo",
        kl_coef=0.05,
        kl_estimator="k3",  # >= 0 on any tokens (these are not sampled from the policy)
        kl_mode="reward",
        entropy_coef=0.01,
        temperature=1.0,
    )
    cfg = LearnerConfig(
        num_ranks=2,
        zero_stage=3,
        micro_batch_size=4,
        lr=3e-4,
        seed=0,
        ppo=ppo,
        critic="none",
        cpus_per_rank=0.5,
    )
    group = LearnerGroup(cfg, str(prepare("tiny-lm")))
    try:
        metrics = []
        for u in range(2):
            # Fixed responses (HF generate does not run on ZeRO-3 shards); reward by parity.
            responses = [[3 + (7 * i + 5 * u + k) % 190 for k in range(4)] for i in range(16)]
            samples = [
                {"response_token_ids": r, "behaviour_logprobs": [-1.0] * 4, "response_text": "x"}
                for r in responses
            ]
            rewards = [float(r[0] % 2) for r in responses]
            groups = [f"g{i // 4}" for i in range(16)]
            metrics.append(group.train_ppo(table_of(samples, rewards, groups, "stop", f"z{u}")))
    finally:
        group.shutdown()
    assert metrics[0]["learner/kl_ref"] == 0.0
    assert metrics[1]["learner/kl_ref"] > 0.0
    assert all(m["learner/entropy"] > 0 for m in metrics)
