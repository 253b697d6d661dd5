"""Dynamic sampling's refill: play more groups until the update has enough informative ones.

With ``learner.ppo.dynamic_sampling`` the learner drops the groups whose episodes all got the
same return (learner/dynamic_sampling.py). So that an update still trains on about
``rl.episodes_per_update`` informative episodes, the RL stage plays extra rounds of fresh
groups after the update's own: each round deals new tasks (new ``seed`` reset options, new
ids), as many groups as the informative share so far says it takes, at most as many as the
update itself has, and at most ``dynamic_sampling_max_refills`` rounds. Every episode played
goes to the replay buffer as usual; the learner consumes them all and keeps the informative.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable
from typing import Any

from learner.dynamic_sampling import informative_groups, refill_group_count
from learner.truncation import shape_rewards
from rollout.runner import EpisodeSpec

SEED_SPAN = 2**31 - 1  # reset seeds stay in the range rl_specs deals them from


def group_specs(specs: list[EpisodeSpec]) -> list[list[EpisodeSpec]]:
    """Specs by group, in first-seen order (a spec without a group id is its own group)."""
    groups: dict[str, list[EpisodeSpec]] = {}
    for s in specs:
        groups.setdefault(s.group_id or s.episode_id, []).append(s)
    return list(groups.values())


def refill_specs(base: list[EpisodeSpec], round_: int, num_groups: int) -> list[EpisodeSpec]:
    """``num_groups`` fresh groups shaped like the first groups of ``base``: the same family,
    config and group size, a new task seed per group (derived from the group id and the round,
    so a replayed run deals the same tasks), ids suffixed with ``-r<round>``."""
    out = []
    for members in group_specs(base)[:num_groups]:
        key = members[0].group_id or members[0].episode_id
        seed = zlib.crc32(f"{key}-r{round_}".encode()) % SEED_SPAN
        for s in members:
            out.append(
                dataclasses.replace(
                    s,
                    episode_id=f"{s.episode_id}-r{round_}",
                    group_id=f"{key}-r{round_}",
                    reset_options={**s.reset_options, "seed": seed},
                )
            )
    return out


def episode_groups(
    episodes: list[Any], truncated_response: str = "keep", truncated_penalty: float = 0.0
) -> tuple[int, int, int]:
    """(informative episodes, informative groups, groups) of played EpisodeResults, their
    rewards after the truncation handling, as the learner compares them."""
    turns = [t for e in episodes for t in e.turns]
    rewards, _ = shape_rewards(
        [t.reward for t in turns],
        [t.finish_reason for t in turns],
        truncated_response,
        truncated_penalty,
    )
    good, bad = informative_groups(
        [t.group_id for t in turns], [t.episode_id for t in turns], rewards
    )
    informative = sum(
        1 for e in episodes if e.turns and (e.turns[0].group_id or e.episode_id) in good
    )
    return informative, len(good), len(good) + len(bad)


def play_with_refills(
    play: Callable[[list[EpisodeSpec]], list[Any]],
    specs: list[EpisodeSpec],
    max_refills: int,
    truncated_response: str = "keep",
    truncated_penalty: float = 0.0,
) -> list[Any]:
    """Play ``specs``, then up to ``max_refills`` rounds of fresh groups while fewer than
    len(specs) of the episodes played are in informative groups (rewards after the
    truncation handling, as the learner sees them). Returns every episode."""
    groups = group_specs(specs)
    if max(len(g) for g in groups) < 2:
        raise ValueError(
            "learner.ppo.dynamic_sampling: needs groups of >= 2 episodes "
            "(rl.samples_per_task > 1); a group of one is never informative"
        )
    episodes = play(specs)
    for round_ in range(1, max_refills + 1):
        informative, good, played = episode_groups(episodes, truncated_response, truncated_penalty)
        n = refill_group_count(informative, len(specs), played, good, len(groups[0]), len(groups))
        if n == 0:
            break
        episodes += play(refill_specs(specs, round_, n))
    return episodes
