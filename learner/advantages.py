"""Advantage estimators as small pure functions, chosen by config name through a registry.

Rows are *turns*: one row per generated response (the study's action is the whole response).
A batch holds the turns of several episodes laid end to end, in play order, with
``dones[i] = True`` on the last turn of each episode. Nothing is bootstrapped across an
episode boundary. An episode cut by the verification budget (gymnasium's ``truncated``) is
terminal too: the budget is part of the task, so there is no future value to bootstrap from.

Estimators (``ADVANTAGE_ESTIMATORS[name](batch, params) -> (advantages, returns)``):

* ``gae``  - GAE over turns with a critic (the study: gamma 0.9, lambda 0.95), then whitened
  over the batch as the reference PPO code does;
* ``grpo`` - per-turn discounted reward-to-go, minus the mean of its group, over the group std;
* ``dr_grpo`` - reward-to-go minus the mean of its group, no std division (Dr. GRPO: the
  std divide up-weights nearly solved and nearly unsolved groups; pair it with the
  ``dr_grpo`` policy loss, which also drops the length normalisation);
* ``rloo`` - reward-to-go minus the mean of the *other* members of its group;
* ``reinforce_pp`` - REINFORCE++: reward-to-go, no critic and no group baseline, whitened over
  the whole batch (global normalisation: the batch mean is the baseline);
* ``reinforce_pp_baseline`` - REINFORCE++ with a group baseline: reward-to-go minus its
  group's mean, then whitened over the whole batch (not divided by each group's std).

The turns of the whole batch reach an estimator at once (learner/group.py runs it over every
rank's rows), so "batch" statistics are global, not per rank or micro-batch.

Advantages carry no gradient: every function here runs under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

WHITEN_EPS = 1e-8  # variance floor in `whiten`: a batch of equal advantages stays finite
GROUP_STD_EPS = 1e-6  # std floor in group normalisation: a group of equal rewards gets 0


@dataclass(frozen=True)
class AdvantageInput:
    """The per-turn tensors an estimator reads; N = number of turns in the batch."""

    rewards: Tensor  # (N,) float, verifier reward of each turn
    dones: Tensor  # (N,) bool, True = last turn of its episode (terminated or truncated)
    values: Tensor | None = None  # (N,) float, critic V(s) at each turn's prompt (gae only)
    group_ids: Tensor | None = None  # (N,) int, turns compared together share an id (grpo/rloo)
    last_value: float = 0.0  # V of the state after the last row, used only if it is not done


@dataclass(frozen=True)
class AdvantageParams:
    """Estimator settings; each estimator reads the fields it needs."""

    gamma: float = 0.9  # discount over turns
    lam: float = 0.95  # GAE lambda
    whiten: bool = True  # gae: normalise advantages over the batch (reference PPO does)
    normalize_std: bool = True  # grpo: divide by the group std
    eps: float = GROUP_STD_EPS  # grpo/rloo: std floor


AdvantageFn = Callable[[AdvantageInput, AdvantageParams], tuple[Tensor, Tensor]]
ADVANTAGE_ESTIMATORS: dict[str, AdvantageFn] = {}


def register_advantage(name: str) -> Callable[[AdvantageFn], AdvantageFn]:
    """Decorator: make an estimator selectable as ``ADVANTAGE_ESTIMATORS[name]``."""

    def wrap(fn: AdvantageFn) -> AdvantageFn:
        if name in ADVANTAGE_ESTIMATORS:
            raise ValueError(f"advantage estimator {name!r} is registered twice")
        ADVANTAGE_ESTIMATORS[name] = fn
        return fn

    return wrap


def _check_1d(name: str, x: Tensor, n: int) -> None:
    if x.dim() != 1 or x.shape[0] != n:
        raise ValueError(f"{name}: expected shape ({n},), got {tuple(x.shape)}")


@torch.no_grad()
def gae(
    rewards: Tensor,
    values: Tensor,
    dones: Tensor,
    gamma: float,
    lam: float,
    last_value: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation over turns of concatenated episodes.

    rewards (N,) float, values (N,) float, dones (N,) bool -> (advantages (N,), returns (N,)).

        delta_t = r_t + gamma * V_{t+1} * (1 - done_t) - V_t
        A_t     = delta_t + gamma * lam * (1 - done_t) * A_{t+1}
        R_t     = A_t + V_t          (the critic's regression target)

    ``last_value`` is V after the final row; it matters only when that row is not done (a
    batch cut in the middle of an episode). A reverse loop over Python floats: N is a few
    thousand turns, where this is faster than any tensor formulation with per-step kernels.
    """
    n = rewards.shape[0]
    _check_1d("rewards", rewards, n)
    _check_1d("values", values, n)
    _check_1d("dones", dones, n)
    r = rewards.double().tolist()
    v = values.double().tolist()
    d = dones.bool().tolist()
    adv = [0.0] * n
    next_value, next_adv = float(last_value), 0.0
    for t in range(n - 1, -1, -1):
        keep = 0.0 if d[t] else 1.0  # zero = episode ends here: no bootstrap, no carry-over
        delta = r[t] + gamma * next_value * keep - v[t]
        next_adv = delta + gamma * lam * keep * next_adv
        adv[t] = next_adv
        next_value = v[t]
    advantages = torch.tensor(adv, dtype=torch.float64, device=rewards.device)
    returns = advantages + values.double()
    dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    return advantages.to(dtype), returns.to(dtype)


@torch.no_grad()
def discounted_returns(rewards: Tensor, dones: Tensor, gamma: float) -> Tensor:
    """Reward-to-go within each episode: G_t = r_t + gamma * (1 - done_t) * G_{t+1}.

    rewards (N,) float, dones (N,) bool -> (N,). This is GAE with V = 0 and lambda = 1.
    """
    zeros = torch.zeros_like(rewards, dtype=torch.float64)
    _, returns = gae(rewards, zeros, dones, gamma=gamma, lam=1.0)
    return returns


@torch.no_grad()
def group_baseline_advantages(
    rewards: Tensor,
    group_ids: Tensor,
    normalize_std: bool = True,
    leave_one_out: bool = False,
    eps: float = GROUP_STD_EPS,
) -> Tensor:
    """Group-relative advantages (GRPO; RLOO with ``leave_one_out``).

    rewards (N,) float, group_ids (N,) int (any values; equal id = same group) -> (N,) float.

    * GRPO: A_i = (r_i - mean_g) / (std_g + eps), std with Bessel's correction (as
      DeepSeekMath's implementations use); ``normalize_std=False`` keeps r_i - mean_g
      (Dr. GRPO's choice: the std divide up-weights groups that are nearly solved/unsolved).
    * RLOO: A_i = r_i - mean of the other members = n/(n-1) * (r_i - mean_g), an unbiased
      baseline because it does not depend on r_i.

    A group of one has no baseline to compare with: its advantage is 0.
    """
    n = rewards.shape[0]
    _check_1d("rewards", rewards, n)
    _check_1d("group_ids", group_ids, n)
    r = rewards.double()
    _, inv = torch.unique(group_ids, return_inverse=True)  # (N,) dense group index
    n_groups = int(inv.max().item()) + 1 if n else 0
    count = torch.zeros(n_groups, dtype=torch.float64, device=r.device).index_add_(
        0, inv, torch.ones_like(r)
    )  # (G,)
    total = torch.zeros_like(count).index_add_(0, inv, r)  # (G,)
    size = count[inv]  # (N,) size of each row's group
    centred = r - total[inv] / size  # (N,)
    single = size < 2
    denom = (size - 1).clamp(min=1)  # (N,) n - 1; singletons are zeroed below anyway
    adv = centred * size / denom if leave_one_out else centred
    if normalize_std:
        sq = torch.zeros_like(count).index_add_(0, inv, centred.square())  # (G,)
        std = (sq[inv] / denom).sqrt()  # (N,) unbiased group std
        adv = adv / (std + eps)
    adv = torch.where(single, torch.zeros_like(adv), adv)
    dtype = rewards.dtype if rewards.is_floating_point() else torch.float32
    return adv.to(dtype)


@torch.no_grad()
def whiten(x: Tensor, mask: Tensor | None = None, shift_mean: bool = True) -> Tensor:
    """(x - mean) / std over the entries where ``mask`` is True (all when None).

    x any shape float, mask same shape bool -> same shape; masked-out entries become 0.
    Population variance (no Bessel correction), floored by WHITEN_EPS. ``shift_mean=False``
    only rescales (keeps the sign of each entry, e.g. for advantages of all-positive batches).
    """
    m = torch.ones_like(x, dtype=torch.bool) if mask is None else mask.bool()
    if m.shape != x.shape:
        raise ValueError(f"mask: shape {tuple(m.shape)} != x shape {tuple(x.shape)}")
    xd, md = x.double(), m.double()
    count = md.sum().clamp(min=1.0)
    mean = (xd * md).sum() / count
    var = ((xd - mean).square() * md).sum() / count
    out = (xd - mean) if shift_mean else xd
    out = out * torch.rsqrt(var + WHITEN_EPS)
    return torch.where(m, out, torch.zeros_like(out)).to(x.dtype)


def _require(batch: AdvantageInput, field: str, estimator: str) -> Tensor:
    value = getattr(batch, field)
    if value is None:
        raise ValueError(f"AdvantageInput.{field}: required by the {estimator!r} estimator")
    return value


@register_advantage("gae")
def gae_estimator(batch: AdvantageInput, params: AdvantageParams) -> tuple[Tensor, Tensor]:
    """GAE with the critic's values; returns are the unwhitened A + V (value-loss targets)."""
    values = _require(batch, "values", "gae")
    adv, returns = gae(
        batch.rewards, values, batch.dones, params.gamma, params.lam, batch.last_value
    )
    return (whiten(adv) if params.whiten else adv), returns


@register_advantage("grpo")
def grpo_estimator(batch: AdvantageInput, params: AdvantageParams) -> tuple[Tensor, Tensor]:
    """Each turn's reward-to-go G_t, baselined within its group. Returns are G_t.

    The caller's ``group_ids`` choose what competes: e.g. all turns of the episodes sampled
    from one task, or (task, turn index). Single-turn episodes give textbook GRPO.
    """
    group_ids = _require(batch, "group_ids", "grpo")
    returns = discounted_returns(batch.rewards, batch.dones, params.gamma).to(batch.rewards)
    adv = group_baseline_advantages(returns, group_ids, params.normalize_std, eps=params.eps)
    return adv, returns


@register_advantage("rloo")
def rloo_estimator(batch: AdvantageInput, params: AdvantageParams) -> tuple[Tensor, Tensor]:
    """Reward-to-go minus the leave-one-out group mean (no std division). Returns are G_t."""
    group_ids = _require(batch, "group_ids", "rloo")
    returns = discounted_returns(batch.rewards, batch.dones, params.gamma).to(batch.rewards)
    adv = group_baseline_advantages(returns, group_ids, normalize_std=False, leave_one_out=True)
    return adv, returns


@register_advantage("dr_grpo")
def dr_grpo_estimator(batch: AdvantageInput, params: AdvantageParams) -> tuple[Tensor, Tensor]:
    """Reward-to-go minus its group's mean, never divided by the group std. Returns are G_t."""
    group_ids = _require(batch, "group_ids", "dr_grpo")
    returns = discounted_returns(batch.rewards, batch.dones, params.gamma).to(batch.rewards)
    return group_baseline_advantages(returns, group_ids, normalize_std=False), returns


@register_advantage("reinforce_pp")
def reinforce_pp_estimator(batch: AdvantageInput, params: AdvantageParams) -> tuple[Tensor, Tensor]:
    """REINFORCE++: reward-to-go whitened over the whole batch. Returns are G_t."""
    returns = discounted_returns(batch.rewards, batch.dones, params.gamma).to(batch.rewards)
    return whiten(returns), returns


@register_advantage("reinforce_pp_baseline")
def reinforce_pp_baseline_estimator(
    batch: AdvantageInput, params: AdvantageParams
) -> tuple[Tensor, Tensor]:
    """REINFORCE++-baseline: reward-to-go minus its group's mean, then whitened over the
    whole batch. Returns are G_t."""
    group_ids = _require(batch, "group_ids", "reinforce_pp_baseline")
    returns = discounted_returns(batch.rewards, batch.dones, params.gamma).to(batch.rewards)
    centred = group_baseline_advantages(returns, group_ids, normalize_std=False)
    return whiten(centred), returns
