"""How per-token loss terms become one scalar: the loss-aggregation modes, chosen by config
name through a registry (``learner.ppo.loss_agg``).

Shapes: x (B, T) float per-token terms (already weighted), mask (B, T) bool, True = a token
under the loss. Each mode weighs tokens and sequences differently, which changes what a long
response costs:

* ``token-mean``          - one mean over every token of the micro-batch: each token counts
  once, so long responses weigh more (PPO's usual token-level loss; DAPO's choice);
* ``seq-mean-token-mean`` - mean within each sequence, then over sequences: each sequence
  counts once whatever its length (DeepSeekMath's GRPO);
* ``seq-mean-token-sum``  - sum within each sequence, then mean over sequences: no length
  normalisation at all (Dr. GRPO's unbiased form: dividing by |o_i| favours long wrong answers
  and short right ones). Its scale grows with the response length, so it usually wants a
  smaller learning rate than the two means.

Sequences with no masked-in token (padding rows) count in the sequence means as a zero: every
rank's micro-batch has the same number of rows, so the scale stays fixed across micro-batches.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

AggregationFn = Callable[[Tensor, Tensor], Tensor]
LOSS_AGGREGATIONS: dict[str, AggregationFn] = {}


def register_aggregation(name: str) -> Callable[[AggregationFn], AggregationFn]:
    """Decorator: make an aggregation selectable as ``LOSS_AGGREGATIONS[name]``."""

    def wrap(fn: AggregationFn) -> AggregationFn:
        if name in LOSS_AGGREGATIONS:
            raise ValueError(f"loss aggregation {name!r} is registered twice")
        LOSS_AGGREGATIONS[name] = fn
        return fn

    return wrap


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Mean of x where mask is True. x (B, T) float, mask (B, T) bool -> () or reduced dim."""
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp(min=1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp(min=1.0)


def _check(x: Tensor, mask: Tensor, name: str) -> None:
    if x.dim() != 2 or mask.shape != x.shape:
        raise ValueError(
            f"{name} needs (B, T) values and a (B, T) mask, got {tuple(x.shape)} and "
            f"{tuple(mask.shape)}"
        )


@register_aggregation("token-mean")
def token_mean(x: Tensor, mask: Tensor) -> Tensor:
    """sum_{b,t} m x / sum_{b,t} m: every token of the micro-batch weighs the same."""
    _check(x, mask, "token-mean")
    return masked_mean(x, mask)


@register_aggregation("seq-mean-token-mean")
def seq_mean_token_mean(x: Tensor, mask: Tensor) -> Tensor:
    """mean_b (sum_t m x / sum_t m): every sequence weighs the same."""
    _check(x, mask, "seq-mean-token-mean")
    return masked_mean(x, mask, dim=1).mean()


@register_aggregation("seq-mean-token-sum")
def seq_mean_token_sum(x: Tensor, mask: Tensor) -> Tensor:
    """mean_b (sum_t m x): no division by a sequence's length."""
    _check(x, mask, "seq-mean-token-sum")
    return (x * mask.to(x.dtype)).sum(dim=1).mean()
