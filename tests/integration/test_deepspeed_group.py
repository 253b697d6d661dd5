"""Two DeepSpeed ranks as Ray actors on gloo: a training step keeps them identical."""

from __future__ import annotations

import pytest

from learner.assets import prepare
from learner.config import LearnerConfig
from learner.group import LearnerGroup

# Different data per rank: only the all-reduce can make their updates equal.
RANK_BATCHES = [
    ([[5, 6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16, 17, 18, 19, 20]],),
    ([[40, 41, 42, 43, 44, 45, 46, 47], [60, 61, 62, 63, 64, 65, 66, 67]],),
]


@pytest.mark.parametrize(
    "cfg",
    [
        LearnerConfig(num_ranks=2, zero_stage=0, micro_batch_size=2),
        LearnerConfig(num_ranks=2, zero_stage=2, micro_batch_size=2),
        LearnerConfig(num_ranks=2, zero_stage=3, offload_optimizer=True, micro_batch_size=2),
    ],
    ids=["zero0", "zero2", "zero3-offload"],
)
def test_two_ranks_stay_identical_after_a_step(ray_cluster, cfg: LearnerConfig) -> None:
    group = LearnerGroup(cfg, str(prepare("tiny-lm")))
    try:
        before = group.call("param_digest")
        losses = group.call("train_lm_step", RANK_BATCHES)
        after = group.call("param_digest")
    finally:
        group.shutdown()
    assert before[0] == before[1]
    assert after[0] == after[1]
    assert after[0] != before[0]
    assert losses[0]["loss"] != losses[1]["loss"]
