"""Dynamic sampling (DAPO): which groups of episodes carry a learning signal.

A group is the episodes played on one task (same ``group_id``). When every episode of a group
got the same return (all solved, or all failed), a group baseline (GRPO, Dr. GRPO, RLOO,
REINFORCE++-baseline) gives each of its turns a zero advantage: the group only dilutes the
batch's loss and its gradient. Dynamic sampling drops such groups and plays more to refill the
batch. These pure functions decide; learner/group.py drops, the RL stage refills
(cluster/refill.py).

A row without a group id is its own group of one, like the advantage estimators see it; a
group of one has no peer to be compared with and is never informative. The returns compared
are an episode's turn rewards summed, after the truncation handling (learner/truncation.py: a
penalty can tell apart episodes the verifier scored alike) and before the KL to the reference
(which would tell every episode apart); the learner and the refill loop both compare them so.
Groups are whole episodes, while the turn-level estimators baseline the turns at each depth
of a group: a group informative by return gives every depth a signal only in single-turn
tasks, which is what dynamic sampling is for.
"""

from __future__ import annotations

import math
from collections import defaultdict

EQUAL_REWARD_TOL = 1e-6  # returns this close count as equal (float32 storage rounds sums)


def informative_groups(
    group_ids: list[str], episode_ids: list[str], rewards: list[float]
) -> tuple[set[str], set[str]]:
    """(informative, uninformative) group keys of turn rows.

    group_ids, episode_ids, rewards: one entry per turn (N,). A group's key is its group id,
    or the episode id when the group id is empty. Informative = at least two episodes whose
    returns (sums of their turns' rewards) differ by more than EQUAL_REWARD_TOL.
    """
    returns: dict[str, float] = defaultdict(float)
    group_of: dict[str, str] = {}
    for g, e, r in zip(group_ids, episode_ids, rewards, strict=True):
        returns[e] += float(r)
        group_of[e] = g or e
    members: dict[str, list[float]] = defaultdict(list)
    for e, ret in returns.items():
        members[group_of[e]].append(ret)
    good = {g for g, rs in members.items() if len(rs) >= 2 and max(rs) - min(rs) > EQUAL_REWARD_TOL}
    return good, set(members) - good


def informative_rows(
    group_ids: list[str], episode_ids: list[str], rewards: list[float]
) -> tuple[list[int], dict[str, float]]:
    """Indices of the rows in informative groups, in order, and unprefixed metrics (groups
    kept and dropped). When no group is informative every row is kept: an update on zero advantages
    moves nothing but keeps the run going, where an empty batch would stop it."""
    good, bad = informative_groups(group_ids, episode_ids, rewards)
    keys = [g or e for g, e in zip(group_ids, episode_ids, strict=True)]
    keep = [i for i, k in enumerate(keys) if k in good] or list(range(len(keys)))
    metrics = {
        "groups_kept": float(len(good)),
        "groups_dropped": float(len(bad)) if good else 0.0,
        "groups_all_uninformative": float(not good),
    }
    return keep, metrics


def refill_group_count(
    informative_episodes: int,
    target_episodes: int,
    groups_played: int,
    groups_informative: int,
    group_size: int,
    max_groups: int,
) -> int:
    """How many more groups to play so the informative episodes likely reach the target.

    The informative share so far estimates how many new groups it takes: missing groups /
    share, rounded up, at least 1, at most ``max_groups`` (a round never plays more than the
    update's own number of groups). 0 when the target is met.
    """
    missing = target_episodes - informative_episodes
    if missing <= 0:
        return 0
    need = math.ceil(missing / group_size)
    share = groups_informative / groups_played if groups_played else 0.0
    if share <= 0.0:
        return max_groups
    return max(1, min(max_groups, math.ceil(need / share)))
