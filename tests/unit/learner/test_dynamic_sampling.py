"""Dynamic sampling: which groups are informative (by hand), the learner's row filter, and the
RL stage's refill rounds (cluster/refill.py) over a scripted player."""

import pytest

from cluster.refill import episode_groups, group_specs, play_with_refills, refill_specs
from learner.dynamic_sampling import informative_groups, informative_rows, refill_group_count
from rollout.runner import EpisodeResult, EpisodeSpec
from rollout.trajectory import TurnRecord


def test_informative_groups_by_hand():
    # g1: episode returns 1 and 0 -> informative. g2: 1 and 1 -> not. g3: one episode (two
    # turns) -> a group of one, never informative. "" -> the episode is its own group.
    groups = ["g1", "g1", "g2", "g2", "g3", "g3", ""]
    episodes = ["a", "b", "c", "d", "e", "e", "f"]
    rewards = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]
    good, bad = informative_groups(groups, episodes, rewards)
    assert good == {"g1"} and bad == {"g2", "g3", "f"}
    keep, metrics = informative_rows(groups, episodes, rewards)
    assert keep == [0, 1]
    assert metrics == {"groups_kept": 1.0, "groups_dropped": 3.0, "groups_all_uninformative": 0.0}


def test_returns_are_summed_over_an_episode_turns():
    # Episode a: 0 + 1 = 1, episode b: 1 + 0 = 1 -> equal returns: not informative.
    good, _ = informative_groups(["g"] * 4, ["a", "a", "b", "b"], [0.0, 1.0, 1.0, 0.0])
    assert good == set()


def test_all_uninformative_keeps_every_row():
    keep, metrics = informative_rows(["g", "g"], ["a", "b"], [1.0, 1.0])
    assert keep == [0, 1] and metrics["groups_all_uninformative"] == 1.0


def test_refill_group_count_by_hand():
    assert refill_group_count(8, 8, 4, 2, 4, 4) == 0  # target met
    # 2 episodes missing = 1 group of 2; 3 of 4 groups were informative -> ceil(4 / 3) = 2.
    assert refill_group_count(6, 8, 4, 3, 2, 8) == 2
    # 4 missing = 2 groups; a quarter informative -> 8 groups, capped at the update's 4.
    assert refill_group_count(4, 8, 4, 1, 2, 4) == 4
    assert refill_group_count(0, 8, 4, 0, 4, 4) == 4  # none informative: a whole round
    assert refill_group_count(0, 64, 16, 1, 4, 16) == 16  # capped at the update's groups


def spec(t: int, j: int) -> EpisodeSpec:
    return EpisodeSpec(f"rl-u0-t{t}-s{j}", "toy", {}, {"seed": t}, group_id=f"rl-u0-t{t}")


def result(s: EpisodeSpec, reward: float) -> EpisodeResult:
    turn = TurnRecord(
        episode_id=s.episode_id,
        turn_index=0,
        task_family="toy",
        task_state="{}",
        prompt_token_ids=[1],
        response_token_ids=[2],
        behaviour_logprobs=[0.0],
        response_text="",
        reward=reward,
        success=reward > 0,
        done=True,
        truncated=False,
        verdict="{}",
        policy_version=0,
        group_id=s.group_id,
    )
    return EpisodeResult(s.episode_id, reward > 0, [turn], {})


def test_refill_specs_deal_fresh_tasks_with_fresh_ids():
    base = [spec(t, j) for t in range(3) for j in range(2)]
    new = refill_specs(base, 1, 2)
    assert [s.episode_id for s in new] == [
        "rl-u0-t0-s0-r1",
        "rl-u0-t0-s1-r1",
        "rl-u0-t1-s0-r1",
        "rl-u0-t1-s1-r1",
    ]
    assert [len(g) for g in group_specs(new)] == [2, 2]
    seeds = [g[0].reset_options["seed"] for g in group_specs(new)]
    assert len(set(seeds)) == 2 and all(s.reset_options["seed"] == seeds[0] for s in new[:2])
    assert refill_specs(base, 1, 2) == new  # deterministic: a replayed update deals the same
    assert refill_specs(base, 2, 2)[0].reset_options != new[0].reset_options


def test_play_with_refills_plays_rounds_until_the_target():
    # A scripted player: a group is informative exactly when its seed is odd.
    rounds = []

    def play(specs):
        rounds.append(len(specs))
        odd = [s.reset_options["seed"] % 2 == 1 for s in specs]
        return [result(s, float(o and "-s0" in s.episode_id)) for s, o in zip(specs, odd)]

    base = [spec(t, j) for t in range(4) for j in range(2)]  # seeds 0..3: groups 1, 3 informative
    episodes = play_with_refills(play, base, max_refills=3)
    informative, _, played = episode_groups(episodes)
    assert rounds[0] == 8 and len(rounds) >= 2  # the update's own round, then refills
    assert informative >= 8 or len(rounds) == 4  # target reached, or the rounds ran out
    assert len(episodes) == sum(rounds) and played == sum(rounds) // 2


def test_play_with_refills_stops_when_enough_and_needs_groups():
    base = [spec(t, j) for t in range(2) for j in range(2)]
    calls = []

    def all_informative(specs):
        calls.append(specs)
        return [result(s, float(s.episode_id.endswith("0"))) for s in specs]

    assert len(play_with_refills(all_informative, base, 3)) == 4 and len(calls) == 1
    with pytest.raises(ValueError, match="samples_per_task"):
        play_with_refills(all_informative, [spec(t, 0) for t in range(3)], 3)


def test_refill_counts_rewards_after_the_truncation_penalty():
    # Both episodes of the group scored 0 by the verifier, but one was cut at the token
    # limit: with the penalty their returns differ, so the group is informative.
    a, b = result(spec(0, 0), 0.0), result(spec(0, 1), 0.0)
    a.turns[0].finish_reason = "length"
    assert episode_groups([a, b]) == (0, 0, 1)
    assert episode_groups([a, b], "penalty", -1.0) == (2, 1, 1)
    assert episode_groups([a, b], "mask", -1.0) == (0, 0, 1)
