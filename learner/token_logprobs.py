"""Log-probabilities of the sampled tokens from logits, without (B, T, V) float32 copies.

``log p(token) = logits[token] / tau - logsumexp(logits / tau)``. Written as tensor ops, the
forward makes a float32 copy of the logits, a scaled copy, and logsumexp's shifted and
exponentiated copies; autograd keeps some of them and the backward makes more. For a 49k-token
vocabulary that is ~150 MB per copy at 8 rows x 97 positions, and on a CPU these passes over
memory cost more than the output head's matrix multiply itself.

``gather_token_logprobs`` computes the same values and gradients a chunk of positions at a
time, in one reused float32 buffer; the backward recomputes the chunk's softmax from the saved
logits (in their own dtype, bfloat16 under autocast) and the saved logsumexp:

    d log p(y) / d logits = (onehot(y) - softmax(logits / tau)) / tau

The model's logits cover one position more than the response (the last predicts past it);
the function takes them as they are and ignores that position, so neither the forward nor the
backward copies the (B, T + 1, V) tensor to cut it off.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

CHUNK_ROWS = 32  # positions of (V,) logits upcast at a time: 6 MB of float32 for a 49k vocabulary


def _chunks(batch: int, positions: int) -> Iterator[tuple[int, slice]]:
    """(row, position slice) pieces of at most CHUNK_ROWS positions, row by row: each piece of
    a (B, T', V) tensor is contiguous when the last two dimensions are."""
    for b in range(batch):
        for s in range(0, positions, CHUNK_ROWS):
            yield b, slice(s, min(s + CHUNK_ROWS, positions))


def _scaled(logits: Tensor, temperature: float, work: Tensor) -> Tensor:
    """``logits / temperature`` as float32 in (a view of) the reused buffer ``work``."""
    out = work[: logits.shape[0]].copy_(logits)  # upcast first: bf16 / T would round in bf16
    return out.div_(temperature) if temperature != 1.0 else out


class _TokenLogprobs(torch.autograd.Function):
    # Every full-vocabulary step runs in place in one float32 buffer: a fresh tensor per chunk
    # would be a fresh mmap of megabytes, whose page faults cost more than the arithmetic.
    @staticmethod
    def forward(ctx: Any, logits: Tensor, token_ids: Tensor, temperature: float) -> Tensor:
        batch, positions = token_ids.shape
        out = torch.empty((batch, positions), dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(out)
        work = logits.new_empty((min(positions, CHUNK_ROWS), logits.shape[-1]), dtype=torch.float32)
        for b, t in _chunks(batch, positions):
            x = _scaled(logits[b, t], temperature, work)
            out[b, t] = x.gather(-1, token_ids[b, t, None])[:, 0]
            top = x.amax(dim=-1, keepdim=True)
            lse[b, t] = x.sub_(top).exp_().sum(dim=-1).log_().add_(top[:, 0])
        out.sub_(lse)
        ctx.save_for_backward(logits, token_ids, lse)
        ctx.temperature = temperature
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:
        logits, token_ids, lse = ctx.saved_tensors
        temperature = ctx.temperature
        batch, positions = token_ids.shape
        g = grad_out.float()
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        grad[:, positions:] = 0  # the ignored positions
        work = logits.new_empty((min(positions, CHUNK_ROWS), logits.shape[-1]), dtype=torch.float32)
        for b, t in _chunks(batch, positions):
            x = _scaled(logits[b, t], temperature, work)
            gs = g[b, t, None]
            x.sub_(lse[b, t, None]).exp_().mul_(-gs)  # -g * softmax
            x.scatter_add_(-1, token_ids[b, t, None], gs)  # + g at the sampled token
            if temperature != 1.0:
                x.div_(temperature)
            grad[b, t] = x
        return grad, None, None


def gather_token_logprobs(logits: Tensor, token_ids: Tensor, temperature: float = 1.0) -> Tensor:
    """log p(token) under softmax(logits / temperature).

    logits (B, T', V) any float dtype with T' >= T, token_ids (B, T) long -> (B, T) float32:
    position j scores ``token_ids[:, j]``; positions from T on are ignored (zero gradient).
    The temperature must match what the behaviour log-probs were computed with, or importance
    weights compare different distributions.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if logits.dim() != 3 or token_ids.dim() != 2:
        raise ValueError(
            f"logits must be (B, T', V) and token_ids (B, T), got {tuple(logits.shape)} "
            f"and {tuple(token_ids.shape)}"
        )
    if logits.shape[0] != token_ids.shape[0] or logits.shape[1] < token_ids.shape[1]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and token_ids {tuple(token_ids.shape)} disagree: "
            "need the same rows and at least as many positions"
        )
    return _TokenLogprobs.apply(logits, token_ids, float(temperature))
