"""A few PPO updates through the real LearnerGroup raise the reward of a toy verifier.

The tiny LM is random, so it cannot play GeneralPoints; the toy verifier pays +1 when the
response starts with one particular token (a token the untrained model samples first only
sometimes) and 0 otherwise. Rollouts are sampled by the rank's own model (HF generate), so
every update is on-policy, as in the study (ppo_turn + gae, value head on the backbone).
The same holds with a KL penalty to the frozen reference (in the loss or in the reward) and
an entropy bonus.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pytest
import ray

from learner.assets import prepare
from learner.config import LearnerConfig, PPOConfig
from learner.group import LearnerGroup
from rollout.trajectory import TurnRecord, to_record_batch

SAMPLES = 32  # episodes per update
UPDATES = 4
MAX_NEW_TOKENS = 4


def rollout(group: LearnerGroup, prompt: list[int], seed: int, target: int) -> pa.Table:
    samples = ray.get(group.ranks[0].sample.remote(prompt, SAMPLES, MAX_NEW_TOKENS, 1.0, seed))
    version = group.policy_version()
    turns = [
        TurnRecord(
            episode_id=f"u{seed}-{i}",
            turn_index=0,
            task_family="toy",
            task_state="{}",
            prompt_token_ids=prompt,
            response_token_ids=s["response_token_ids"],
            behaviour_logprobs=s["behaviour_logprobs"],
            response_text=s["response_text"],
            reward=1.0 if s["response_token_ids"][0] == target else 0.0,
            success=s["response_token_ids"][0] == target,
            done=True,
            truncated=False,
            verdict="{}",
            policy_version=version,
            group_id="toy",
        )
        for i, s in enumerate(samples)
    ]
    return pa.Table.from_batches([to_record_batch(turns)])


@pytest.mark.parametrize(
    "ppo",
    [
        PPOConfig(),
        PPOConfig(policy_loss="grpo", advantage="grpo"),
        # One epoch, one optimizer step per update: the update's own forward is pi_old.
        PPOConfig(policy_loss="grpo", advantage="grpo", epochs=1),
        # KL to the frozen reference in the loss (k3), an entropy bonus and clip-higher. The
        # rollouts sample at temperature 1, so the learner scores at 1 too: the KL and the
        # entropy are then those of the distribution sampled from.
        PPOConfig(
            policy_loss="grpo",
            advantage="grpo",
            kl_coef=0.01,
            entropy_coef=0.01,
            clip_eps=0.2,
            clip_eps_high=0.28,
            temperature=1.0,
        ),
        # KL in the reward (k1), REINFORCE++ advantages, Dr. GRPO's loss.
        PPOConfig(
            policy_loss="dr_grpo",
            advantage="reinforce_pp",
            kl_coef=0.05,
            kl_estimator="k1",
            kl_mode="reward",
            temperature=1.0,
        ),
    ],
    ids=["ppo_turn-gae", "grpo", "grpo-one-step", "grpo-kl-entropy", "reinforce_pp-kl-reward"],
)
@pytest.mark.timeout(300)
def test_ppo_raises_reward_on_a_toy_verifier(ray_cluster, ppo: PPOConfig) -> None:
    cfg = LearnerConfig(
        micro_batch_size=8,
        grad_accum_steps=4 if ppo.epochs == 1 else 1,
        lr=1e-3 if ppo.epochs == 1 else 3e-4,
        seed=0,
        ppo=ppo,
        critic="shared" if ppo.advantage == "gae" else "none",
    )
    group = LearnerGroup(cfg, str(prepare("tiny-lm")))
    try:
        prompt = [1, 5, 6, 7, 8]
        first = ray.get(group.ranks[0].sample.remote(prompt, 64, 1, 1.0, 123))
        counts = Counter(s["response_token_ids"][0] for s in first).most_common()
        target = next(t for t, c in counts if c <= 16)  # a token sampled first <= 25% of the time
        rewards, metrics = [], []
        for u in range(UPDATES):
            table = rollout(group, prompt, seed=u, target=target)
            rewards.append(sum(table.column("reward").to_pylist()) / SAMPLES)
            metrics.append(group.train_ppo(table))
        final = rollout(group, prompt, seed=99, target=target)
        rewards.append(sum(final.column("reward").to_pylist()) / SAMPLES)
    finally:
        group.shutdown()
    assert rewards[-1] >= rewards[0] + 0.4, rewards
    assert metrics[0]["learner/tokens"] > 0 and metrics[0]["learner/grad_norm"] > 0
    for key in (
        "learner/loss",
        "learner/policy_loss",
        "learner/clip_frac",
        "learner/approx_kl",
        "learner/lr",
        "timing/learner_step",
        "perf/learner_tokens_per_s",
    ):
        assert key in metrics[0]
    assert ("learner/value_loss" in metrics[0]) == (ppo.advantage == "gae")
    # The entropy is logged on every update, whether an entropy bonus trains it or not.
    assert all(m["learner/entropy"] > 0 for m in metrics)
    if ppo.kl_coef > 0:
        # The reference is the starting policy, frozen: the policy's KL to it is > 0 once the
        # policy has moved. In the reward, the KL is taken under pi_old before each update,
        # so the first update sees the reference itself: exactly 0.
        kl = [m["learner/kl_ref"] for m in metrics]
        assert all(k > 0 for k in kl[1:]), kl
        if ppo.kl_mode == "reward":
            assert abs(kl[0]) < 1e-6 and metrics[-1]["learner/kl_reward_penalty"] != 0, kl
