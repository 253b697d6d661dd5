"""Entropy of the policy over the response tokens, from logits, without (B, T, V) copies.

``H = logsumexp(x) - sum_v softmax(x)_v x_v`` with ``x = logits / tau``: the entropy of the
distribution the rollouts sampled from (same temperature as the log-probs). Written as tensor
ops this builds several (B, T, V) float32 tensors (upcast, softmax, product) and autograd keeps
some of them; like learner/token_logprobs.py, ``gather_token_entropy`` goes a chunk of
positions at a time through one reused float32 buffer, and its backward recomputes each
chunk's softmax from the saved logits and two saved numbers per position:

    dH / dx_v = -p_v (x_v - E_p[x])        (then / tau for the logits)

``token_entropy`` / ``entropy_from_logits`` are the plain tensor-op forms, kept as the
reference the chunked one is tested against.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from learner.aggregation import masked_mean
from learner.token_logprobs import CHUNK_ROWS, _chunks, _scaled


class _TokenEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, logits: Tensor, positions: int, temperature: float) -> Tensor:
        batch = logits.shape[0]
        out = torch.empty((batch, positions), dtype=torch.float32, device=logits.device)
        lse = torch.empty_like(out)
        mean_x = torch.empty_like(out)  # E_p[x] per position, for the backward
        shape = (min(positions, CHUNK_ROWS), logits.shape[-1])
        work = logits.new_empty(shape, dtype=torch.float32)
        expd = logits.new_empty(shape, dtype=torch.float32)  # exp(x - max), reused
        for b, t in _chunks(batch, positions):
            x = _scaled(logits[b, t], temperature, work)
            top = x.amax(dim=-1, keepdim=True)
            x.sub_(top)  # shifted by the max: exp cannot overflow, H does not change
            e = torch.exp(x, out=expd[: x.shape[0]])
            z = e.sum(dim=-1)
            ex = e.mul_(x).sum(dim=-1).div_(z)  # E_p[x - max]
            log_z = z.log_()  # logsumexp(x - max)
            out[b, t] = log_z - ex
            # The backward recomputes the unshifted x: keep lse and E_p[x] unshifted too.
            lse[b, t], mean_x[b, t] = log_z + top[:, 0], ex + top[:, 0]
        ctx.save_for_backward(logits, lse, mean_x)
        ctx.temperature, ctx.positions = temperature, positions
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:
        logits, lse, mean_x = ctx.saved_tensors
        temperature, positions = ctx.temperature, ctx.positions
        g = grad_out.float()
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        grad[:, positions:] = 0  # the ignored positions
        shape = (min(positions, CHUNK_ROWS), logits.shape[-1])
        work = logits.new_empty(shape, dtype=torch.float32)
        probs = logits.new_empty(shape, dtype=torch.float32)
        for b, t in _chunks(logits.shape[0], positions):
            x = _scaled(logits[b, t], temperature, work)
            p = torch.sub(x, lse[b, t, None], out=probs[: x.shape[0]]).exp_()
            # -g p (x - E[x]), and / tau for the logits (folded into the per-row factor)
            scale = g[b, t, None] / -temperature
            x.sub_(mean_x[b, t, None]).mul_(p).mul_(scale)
            grad[b, t] = x
        return grad, None, None


def gather_token_entropy(logits: Tensor, positions: int, temperature: float = 1.0) -> Tensor:
    """Entropy of softmax(logits / temperature) at each of the first ``positions`` positions.

    logits (B, T', V) any float dtype with T' >= positions -> (B, positions) float32; the
    positions from ``positions`` on are ignored (zero gradient), as in gather_token_logprobs.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if logits.dim() != 3 or logits.shape[1] < positions:
        raise ValueError(f"logits must be (B, T' >= {positions}, V), got {tuple(logits.shape)}")
    return _TokenEntropy.apply(logits, int(positions), float(temperature))


def token_entropy(logits: Tensor) -> Tensor:
    """Entropy of softmax(logits) per position, plain tensor ops: (..., V) -> (...).

    H = logsumexp(l) - sum softmax(l) * l, which avoids log(0) for tiny probabilities.
    """
    lf = logits.float()
    return torch.logsumexp(lf, dim=-1) - (lf.softmax(-1) * lf).sum(-1)


def entropy_from_logits(logits: Tensor, mask: Tensor) -> Tensor:
    """Mean token entropy over the response, plain tensor ops: (B, T, V), (B, T) -> ()."""
    return masked_mean(token_entropy(logits), mask)
