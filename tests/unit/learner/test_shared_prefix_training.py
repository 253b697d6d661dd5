"""Shared-prefix training is exact: a micro-batch packed as a prefix tree gives the unpacked
losses and every parameter's gradient (fp32, relative 1e-5; 1e-4 through PPO's ratios), for
PPO with the shared value head, GRPO without a critic, and SFT, on the tiny LM and on
SmolLM2-135M's weights. The rows mix lengths, share a prompt prefix or nothing, and include a
later turn whose prompt holds an earlier turn (multi-turn rows) and a weight-0 padding row."""

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
from learner.ppo import PPOTargets, forward_logprobs, ppo_loss, sft_loss
from learner.prefix_tree import collate_shared

RELATIVE = 1e-5
# PPO's ratio exponentiates (a sum over a turn of) log-prob differences, so fp32 rounding of
# ~1e-5 in each log p shows as up to ~4e-5 relative on SmolLM2 (measured); a packing mistake
# moves the loss by orders of magnitude more.
PPO_RELATIVE = 1e-4


def _rows(vocab: int, seed: int) -> list[TrainRow]:
    """GeneralPoints-like rows: a shared 40-token instruction prefix, a per-hand tail and a
    response; a GRPO-style pair on one hand; turn 2 of an episode (its prompt = turn 1's
    prompt + response + feedback); a row that shares nothing; a weight-0 repeat."""
    g = torch.Generator().manual_seed(seed)

    def ids(n: int) -> list[int]:
        return torch.randint(5, vocab - 1, (n,), generator=g).tolist()

    shared = ids(40)
    hand_a, hand_b = shared + ids(6), shared + ids(5)
    resp_a1, resp_a2, resp_b = ids(9), ids(4), ids(12)
    turn2 = hand_b + resp_b + ids(7)  # feedback after the first answer
    specs = [
        (hand_a, resp_a1, 1.0),
        (hand_a, resp_a2, 1.0),  # same prompt, another sample
        (hand_b, resp_b, 1.0),
        (turn2, ids(8), 1.0),  # holds row 2 whole
        (ids(13), ids(3), 1.0),  # shares nothing
        (hand_a, resp_a1, 0.0),  # padding repeat (weight 0)
    ]
    rows = []
    for prompt, response, weight in specs:
        t = len(response)
        answer = [k >= t // 2 for k in range(t)]
        reasoning = [not a for a in answer]
        rows.append(TrainRow(prompt, response, answer, reasoning, weight=weight))
    return rows


@pytest.fixture(scope="module", params=["tiny-lm", "smollm2-135m"])
def model_path(request: pytest.FixtureRequest) -> Path:
    return prepare(request.param)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _assert_same(
    got: dict[str, torch.Tensor], want: dict[str, torch.Tensor], relative: float = RELATIVE
) -> None:
    assert got.keys() == want.keys()
    for name, w in want.items():
        err = torch.linalg.norm(got[name] - w)
        assert err <= relative * torch.linalg.norm(w) + 1e-12, name


def _run(model: PolicyWithValue, batch, loss_fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = loss_fn(batch)
    loss.backward()
    return loss.detach(), _grads(model)


@pytest.mark.parametrize("critic", ["shared", "none"])
def test_packed_ppo_loss_and_gradients_equal_unpacked(model_path: Path, critic: str) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(model_path, critic=critic)
    assert model.packable
    rows = _rows(model.policy.config.vocab_size, 1)
    plain, packed = collate(rows, pad_id=0), collate_shared(rows, pad_id=0)
    assert packed.processed_tokens < plain.processed_tokens  # shared prefixes computed once
    name = "ppo_turn" if critic == "shared" else "grpo"
    advantage = "gae" if critic == "shared" else "grpo"
    cfg = PPOConfig(policy_loss=name, advantage=advantage, temperature=1.0)
    with torch.no_grad():  # at the loss's own temperature, so the ratios are the moves below
        old, old_values = forward_logprobs(model, plain, cfg.temperature)
    b, t = old.shape
    # A moved policy: token ratios from exp(-0.25) to exp(0.25), so clip_eps 0.1 clips some
    # items and leaves the others with a gradient.
    moved = torch.linspace(-0.25, 0.25, t).expand(b, t)
    targets = PPOTargets(
        old_logp=old - moved,
        old_values=old_values if old_values is not None else torch.zeros(b),
        advantages=torch.linspace(-1.0, 1.0, b),
        returns=torch.linspace(0.5, -0.5, b),
    )
    results = []
    for batch in (plain, packed, dataclasses.replace(packed, pack_layout=None)):
        results.append(_run(model, batch, lambda x: ppo_loss(model, x, targets, cfg)[0]))
    (want_loss, want), *others = results
    # The comparison means something only if the policy loss has a gradient: some items
    # clipped, not all, and (without a critic, all of it policy loss) a gradient far from 0.
    with torch.no_grad():
        clip_frac = float(ppo_loss(model, plain, targets, cfg)[1]["clip_frac"])
    assert 0.0 < clip_frac < 1.0
    grad_norm = torch.sqrt(sum(g.square().sum() for g in want.values()))
    assert grad_norm > 1e-2, f"degenerate case: gradient norm {float(grad_norm)}"
    for loss, grads in others:  # chunked attention, then the 4D ancestor mask through SDPA
        assert torch.allclose(loss, want_loss, rtol=PPO_RELATIVE, atol=1e-7)
        _assert_same(grads, want, PPO_RELATIVE)
    if critic == "shared":
        assert any(n.startswith("value_head") for n in want)


def test_packed_sft_loss_and_gradients_equal_unpacked(model_path: Path) -> None:
    torch.manual_seed(0)
    model = PolicyWithValue.from_pretrained(model_path, critic="none")
    rows = _rows(model.policy.config.vocab_size, 2)
    want_loss, want = _run(model, collate(rows, 0), lambda x: sft_loss(model, x)[0])
    loss, grads = _run(model, collate_shared(rows, 0), lambda x: sft_loss(model, x)[0])
    assert torch.allclose(loss, want_loss, rtol=RELATIVE, atol=1e-7)
    _assert_same(grads, want)


def test_packed_forward_runs_the_chunked_attention(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = PolicyWithValue.from_pretrained(prepare("tiny-lm"), critic="shared")
    attention = model.policy.config._attn_implementation
    calls = []
    real = packed_attention.packed_attention

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(packed_attention, "packed_attention", spy)
    batch = collate_shared(_rows(model.policy.config.vocab_size, 3), 0)
    _, values = forward_logprobs(model, batch)
    assert values is not None and values.shape == (6,)
    assert len(calls) == model.policy.config.num_hidden_layers
    assert model.policy.config._attn_implementation == attention  # switched back


def test_vlms_are_not_packable() -> None:
    assert not PolicyWithValue.from_pretrained(prepare("tiny-vlm"), critic="none").packable
