"""The whole pipeline (`veriray demo --quick` at test size) with the RL algorithm knobs on:
GRPO with a KL to the frozen reference and an entropy bonus, truncated responses penalised
(the tiny random model rarely ends a response before the token limit, so masking would leave
nothing to train on; tests/integration/test_learner_algorithms.py masks), and
dynamic sampling with its refill rounds played by the RL stage's fleet."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT, quick_demo_args


def test_pipeline_runs_grpo_with_kl_entropy_truncation_and_dynamic_sampling(
    tmp_path: Path,
) -> None:
    args = quick_demo_args(
        tmp_path,
        "rl.updates=1",
        "sft.examples=16",
        "rl.samples_per_task=4",
        "learner.critic=none",
        "learner.ppo.policy_loss=grpo",
        "learner.ppo.advantage=grpo",
        "learner.ppo.kl_coef=0.01",
        "learner.ppo.entropy_coef=0.001",
        "learner.ppo.truncated_response=penalty",
        "learner.ppo.dynamic_sampling=true",
        "learner.ppo.dynamic_sampling_max_refills=1",
    )
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-4000:]
    rows = [json.loads(x) for x in (tmp_path / "quick" / "metrics.jsonl").read_text().splitlines()]
    rl = [r for r in rows if "learner/policy_loss" in r]
    assert len(rl) == 1
    m = rl[0]
    assert m["learner/entropy"] > 0 and m["learner/kl_ref"] > 0
    assert 0 <= m["learner/truncated_frac"] <= 1
    # 8 episodes = 2 groups of 4; a refill round plays more groups when some were dropped.
    groups = m["learner/groups_kept"] + m["learner/groups_dropped"]
    assert groups >= 2 or m["learner/groups_all_uninformative"] == 1.0
    assert m["rollout/refill_episodes"] >= 0
    assert m["rollout/episodes_delta"] == 8 + m["rollout/refill_episodes"]
    # The reference pass is forward-only compute on the meter.
    assert m["learner/forward_tokens"] > 0
