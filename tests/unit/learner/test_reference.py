"""The frozen reference model: a copy of the starting policy that scores the same tokens the
same way, has no value head, takes no gradient and stays put while the policy trains."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from learner.assets import prepare
from learner.batching import TrainRow, collate
from learner.models import PolicyWithValue
from learner.ppo import forward_logprobs
from learner.reference import load_reference


def rows() -> list[TrainRow]:
    return [
        TrainRow([1, 5, 6], [7, 8, 9], [True] * 3, [False] * 3),
        TrainRow([1, 5], [10, 11], [True, True], [False, False]),
    ]


def test_reference_is_a_frozen_copy_of_the_starting_policy() -> None:
    path = prepare("tiny-lm")
    ref = load_reference(path, torch.float32, False, "cpu")
    assert not ref.training and ref.value_head is None
    assert not any(p.requires_grad for p in ref.parameters())
    policy = PolicyWithValue.from_pretrained(path, critic="none")
    batch = collate(rows(), pad_id=0)
    ref_logp, _ = forward_logprobs(ref, batch, 1.0, with_values=False)
    start, _ = forward_logprobs(policy, batch, 1.0, with_values=False)
    assert_close(ref_logp, start)
    assert not ref_logp.requires_grad
    # A policy step (plain SGD on the response log-likelihood) moves the policy, not the copy.
    opt = torch.optim.SGD(policy.parameters(), lr=1.0)
    (-start[batch.answer_mask].sum()).backward()
    opt.step()
    moved, _ = forward_logprobs(policy, batch, 1.0, with_values=False)
    again, _ = forward_logprobs(ref, batch, 1.0, with_values=False)
    assert not torch.allclose(moved, start)
    assert_close(again, ref_logp)
