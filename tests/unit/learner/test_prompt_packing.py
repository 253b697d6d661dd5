"""Shared-prompt packing: the mask against a slow reference, the logit index, and a packed
micro-batch giving the unpacked log-probs, losses and gradients on the tiny LM."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from learner import packed_attention
from learner.assets import prepare
from learner.batching import TrainRow, collate
from learner.config import PPOConfig
from learner.models import PolicyWithValue
from learner.ppo import PPOTargets, forward_logprobs, ppo_loss
from learner.prompt_packing import (
    collate_packed,
    group_by_prompt,
    grouped_order,
    pack_attention_mask,
    pack_rows,
    shares_prompts,
)


def _reference_mask(segments: list[int]) -> torch.Tensor:
    """Query q may see key k iff k <= q and k is prompt (0) or q's own response; a padding
    query (-1) sees only itself."""
    n = len(segments)
    out = torch.zeros((n, n), dtype=torch.bool)
    for q in range(n):
        for k in range(n):
            if segments[q] < 0:
                out[q, k] = q == k
            else:
                out[q, k] = k <= q and segments[k] in (0, segments[q])
    return out


@pytest.mark.parametrize(
    "segments", [[0, 0, 1, 1, 2, 2, 2], [0, 1, 2, 3, -1, -1], [0, 0, 0], [0, 1, 1, -1]]
)
def test_mask_matches_reference(segments: list[int]) -> None:
    assert torch.equal(pack_attention_mask(torch.tensor(segments)), _reference_mask(segments))


def test_pack_layout_and_logit_index() -> None:
    prompts = [[1, 2, 3], [7, 8], [1, 2, 3]]
    responses = [[4, 5], [9], [6, 6, 6]]
    packed = pack_rows(prompts, responses, pad_id=0)
    # Two packs: [1 2 3 | 4 5 | 6 6 6] and [7 8 | 9], right-padded to 8.
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 6, 6], [7, 8, 9, 0, 0, 0, 0, 0]]
    assert packed.position_ids[0].tolist() == [0, 1, 2, 3, 4, 3, 4, 5]
    assert packed.num_tokens == 8 + 3
    # W = 4; each row's window ends with [last prompt token, its response tokens].
    assert packed.logit_index.tolist() == [[2, 2, 3, 4], [9, 9, 9, 10], [2, 5, 6, 7]]
    assert packed.attention_mask.shape == (2, 1, 8, 8)
    assert not packed.attention_mask[0, 0, 5, 3]  # the second response never sees the first


def test_pack_rejects_bad_rows() -> None:
    with pytest.raises(ValueError, match="prompt of at least one token"):
        pack_rows([[]], [[1]], 0)
    with pytest.raises(ValueError, match="2 prompts for 1 responses"):
        pack_rows([[1], [2]], [[3]], 0)


def test_grouped_order_is_a_permutation_keeping_groups_together() -> None:
    prompts = [[1], [2], [1], [3], [2], [1]]
    assert shares_prompts([TrainRow(p, [9], [True], [False]) for p in prompts])
    assert not shares_prompts([TrainRow(p, [9], [True], [False]) for p in ([1], [2], [3])])
    assert group_by_prompt(prompts) == [[0, 2, 5], [1, 4], [3]]
    assert grouped_order(prompts, None) == [0, 2, 5, 1, 4, 3]
    order = grouped_order(prompts, torch.Generator().manual_seed(3))
    assert sorted(order) == list(range(6))
    runs = [tuple(prompts[i]) for i in order]
    assert len({r for k, r in enumerate(runs) if k == 0 or runs[k - 1] != r}) == 3


@pytest.fixture(scope="module")
def lm_path() -> Path:
    return prepare("tiny-lm")


def _group_rows(seed: int) -> list[TrainRow]:
    """Two tasks x 3 samples plus a lone row, responses of different lengths."""
    g = torch.Generator().manual_seed(seed)

    def ids(n: int) -> list[int]:
        return torch.randint(5, 90, (n,), generator=g).tolist()

    prompts = [ids(11)] * 3 + [ids(7)] * 3 + [ids(9)]
    rows = []
    for k, p in enumerate(prompts):
        t = 3 + (5 * k) % 7
        mask = [True] * t
        rows.append(TrainRow(p, ids(t), mask, [False] * t, weight=0.0 if k == 4 else 1.0))
    return rows


def test_packed_forward_gives_unpacked_logprobs_and_gradients(
    lm_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(lm_path, critic="none")
    assert model.packable
    attention = model.policy.config._attn_implementation
    calls = []  # a spy: the packed path must run through learner/packed_attention.py
    real = packed_attention.packed_attention

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(packed_attention, "packed_attention", spy)
    rows = _group_rows(1)
    plain, packed = collate(rows, pad_id=0), collate_packed(rows, pad_id=0)
    assert packed.input_ids.shape[0] == 3  # three prompts, computed once each
    assert packed.processed_tokens < plain.attention_mask.sum()
    masked = dataclasses.replace(packed, pack_layout=None)  # the 4D mask through SDPA
    grads = []
    for batch in (plain, masked, packed):
        model.zero_grad()
        logp, values = forward_logprobs(model, batch)
        assert values is None
        mask = batch.answer_mask
        (logp * mask).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        if batch is plain:
            want = logp.detach()
        else:
            assert torch.allclose(logp.detach()[mask], want[mask], atol=1e-5)
        assert model.policy.config._attn_implementation == attention  # switched back
    assert len(calls) == model.policy.config.num_hidden_layers  # once per layer, last batch
    for packed_grads in grads[1:]:
        for name, g in grads[0].items():  # float rounding only: sums run in another order
            assert torch.linalg.norm(packed_grads[name] - g) <= 1e-4 * torch.linalg.norm(g), name


def test_packed_ppo_loss_equals_unpacked_and_own_forward_is_old_logp(lm_path: Path) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(lm_path, critic="none")
    rows = _group_rows(2)
    cfg = PPOConfig(policy_loss="grpo", advantage="grpo", temperature=1.0)
    adv = torch.linspace(-1.0, 1.0, len(rows))
    plain = collate(rows, pad_id=0)
    with torch.no_grad():
        old, _ = forward_logprobs(model, plain)
    zeros = torch.zeros(len(rows))
    given = PPOTargets(old_logp=old, old_values=zeros, advantages=adv, returns=zeros)
    own = PPOTargets(old_logp=None, old_values=zeros, advantages=adv, returns=zeros)
    ref, _ = ppo_loss(model, plain, given, cfg)
    for batch, targets in ((plain, own), (collate_packed(rows, 0), own)):
        loss, metrics = ppo_loss(model, batch, targets, cfg)
        assert torch.allclose(loss, ref, atol=1e-6)
        assert float(metrics["ratio_mean"]) == pytest.approx(1.0)  # pi / pi_old, unmoved


def test_models_with_a_value_head_or_images_are_not_packable(lm_path: Path) -> None:
    assert not PolicyWithValue.from_pretrained(lm_path, critic="shared").packable
    assert not PolicyWithValue.from_pretrained(prepare("tiny-vlm"), critic="none").packable
    model = PolicyWithValue.from_pretrained(lm_path, critic="shared")
    batch = collate_packed(_group_rows(3), 0)
    with pytest.raises(ValueError, match="text-only model"):
        forward_logprobs(model, batch, with_values=False)
