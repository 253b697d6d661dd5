"""The chunked log-prob function against the plain log-softmax: values and gradients, any
dtype, temperature, chunk boundaries and non-contiguous logits."""

from __future__ import annotations

import pytest
import torch

from learner import token_logprobs
from learner.token_logprobs import gather_token_logprobs


def _reference(logits: torch.Tensor, ids: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.log_softmax(logits.float() / temperature, -1).gather(-1, ids[..., None])[..., 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("temperature", [1.0, 0.2])
@pytest.mark.parametrize("rows", [(2, 3), (5, 15)])  # 6 rows: one chunk; 75: three, ragged
def test_values_and_gradients_match_log_softmax(
    dtype: torch.dtype, temperature: float, rows: tuple[int, int]
) -> None:
    gen = torch.Generator().manual_seed(0)
    full = (3 * torch.randn(*rows[:1], rows[1] + 1, 37, generator=gen)).to(dtype)
    ids = torch.randint(0, 37, rows, generator=gen)
    weights = torch.randn(rows, generator=gen)
    grads = []
    for fn in (gather_token_logprobs, _reference):
        x = full.clone().requires_grad_()
        out = fn(x[:, :-1], ids, temperature)  # a non-contiguous view, as the model gives
        assert out.dtype == torch.float32 and out.shape == rows
        (out * weights).sum().backward()
        grads.append((out.detach(), x.grad))
    (got, got_grad), (want, want_grad) = grads
    torch.testing.assert_close(got, want)
    assert got_grad.dtype == dtype
    tol = {"atol": 1e-6, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 2e-2, "rtol": 2e-2}
    torch.testing.assert_close(got_grad.float(), want_grad.float(), **tol)
    assert not got_grad[:, -1].any()  # the last position is not part of the view


def test_chunks_smaller_than_the_rows_and_extra_positions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(token_logprobs, "CHUNK_ROWS", 4)
    logits = torch.randn(3, 9, 11, requires_grad=True)
    ids = torch.randint(0, 11, (3, 7))
    got = gather_token_logprobs(logits, ids, 0.7)  # positions 7 and 8 are ignored
    torch.testing.assert_close(got, _reference(logits[:, :7], ids, 0.7))
    (g,) = torch.autograd.grad(got.sum(), logits)
    (want,) = torch.autograd.grad(_reference(logits[:, :7], ids, 0.7).sum(), logits)
    torch.testing.assert_close(g, want)
    assert not g[:, 7:].any()


def test_bad_input_names_the_problem() -> None:
    with pytest.raises(ValueError, match="temperature"):
        gather_token_logprobs(torch.zeros(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), 0.0)
    with pytest.raises(ValueError, match="disagree"):
        gather_token_logprobs(torch.zeros(1, 2, 3), torch.zeros(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T', V\)"):
        gather_token_logprobs(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
