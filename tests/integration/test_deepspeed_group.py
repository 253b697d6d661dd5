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


def test_shared_prefix_gradients_are_exact_under_zero3(ray_cluster) -> None:
    """Shared-prefix packing under ZeRO-3 on 2 gloo ranks: each rank's packed micro-batch gives
    the unpacked loss and every parameter's full (gathered) gradient, fp32, relative 1e-5."""
    import torch

    from learner.batching import TrainRow

    shared = list(range(5, 45))
    rows = [
        TrainRow([*shared, 50, 51], [60, 61, 62], [True] * 3, [False] * 3),
        TrainRow([*shared, 50, 51], [63, 64], [True] * 2, [False] * 2),
        TrainRow([*shared, 52, 60, 61, 62, 70], [71, 72], [True] * 2, [False] * 2),
        TrainRow([90, 91, 92], [93, 94, 95, 96], [True] * 4, [False] * 4),
    ]
    cfg = LearnerConfig(num_ranks=2, zero_stage=3, micro_batch_size=4, share_prefixes=True)
    group = LearnerGroup(cfg, str(prepare("tiny-lm")))
    try:
        per_rank = [(rows, True), (rows[::-1], True)]
        packed = group.call("sft_gradients", per_rank)
        plain = group.call("sft_gradients", [(r, False) for r, _ in per_rank])
    finally:
        group.shutdown()
    for got, want in zip(packed, plain, strict=True):
        assert got["tokens"] < want["tokens"]  # the shared prefix ran once
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["grads"].keys() == want["grads"].keys()
        for name, w in want["grads"].items():
            err = torch.linalg.norm(got["grads"][name] - w)
            assert err <= 1e-5 * torch.linalg.norm(w) + 1e-12, name


def test_the_nccl_sync_gathers_every_tensor_on_every_zero3_rank(ray_cluster) -> None:
    """The NCCL weight sync's gather-and-iterate on 2 ZeRO-3 gloo ranks (the send itself needs
    GPUs): every rank joins each tensor's gather, and rank 0 sees every full tensor, in the
    order the engines expect. With only rank 0 iterating, this call would never return."""
    import math

    import ray
    from transformers import AutoModelForCausalLM

    path = str(prepare("tiny-lm"))
    group = LearnerGroup(LearnerConfig(num_ranks=2, zero_stage=3, micro_batch_size=2), path)
    try:
        digests = group.call_all("broadcast_digest")
        specs = ray.get(group.ranks[0].weight_specs.remote())
    finally:
        group.shutdown()
    assert digests[1] == []  # the other rank only joined the gathers
    assert [(n, shape) for n, shape, _ in digests[0]] == [(n, shape) for n, _, shape in specs]
    reference = AutoModelForCausalLM.from_pretrained(path)
    expected = {n: float(p.double().sum()) for n, p in reference.named_parameters()}
    expected.setdefault("lm_head.weight", expected["model.embed_tokens.weight"])  # tied head
    for name, _, total in digests[0]:
        assert math.isclose(total, expected[name], rel_tol=1e-9, abs_tol=1e-9), name


@pytest.mark.parametrize("share_prefixes", [False, True], ids=["plain", "packed"])
def test_gradient_checkpointing_gives_the_same_gradients(ray_cluster, share_prefixes) -> None:
    """Recomputing activations in the backward changes memory, not the math: the same loss and
    every parameter's gradient (fp32, relative 1e-5), plain and prefix-packed."""
    import torch

    from learner.batching import TrainRow

    shared = list(range(5, 30))
    rows = [
        TrainRow([*shared, 50], [60, 61, 62], [True] * 3, [False] * 3),
        TrainRow([*shared, 52], [63, 64], [True] * 2, [False] * 2),
    ]
    out = {}
    for checkpointing in (False, True):
        cfg = LearnerConfig(micro_batch_size=2, gradient_checkpointing=checkpointing)
        group = LearnerGroup(cfg, str(prepare("tiny-lm")))
        try:
            out[checkpointing] = group.call("sft_gradients", [(rows, share_prefixes)])[0]
        finally:
            group.shutdown()
    want, got = out[False], out[True]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-6)
    for name, w in want["grads"].items():
        err = torch.linalg.norm(got["grads"][name] - w)
        assert err <= 1e-5 * torch.linalg.norm(w) + 1e-12, name
