"""The gymnasium adapter: a third-party text env plays through veriray's episode protocol
(verify in one place, apply_verdict in another) with its own rewards and success."""

from __future__ import annotations

import pytest

from cluster.config import load_experiment
from common.typed_config import ConfigError
from envs.families import family
from tests.text_game import ENV_ID
from verifier.base import verify_total

OVERRIDES = [
    "task.family=gymnasium",
    f"task.gymnasium.env_id=tests.text_game:{ENV_ID}",
    "task.gymnasium.eval_suites={in_distribution: {}, ood_tries: {tries: 1}}",
    "task.gymnasium.eval_episodes=3",
    "study.primary_suite=ood_tries",
]


def test_an_episode_runs_through_the_split_protocol() -> None:
    cfg = load_experiment(None, OVERRIDES)
    fam = family("gymnasium")
    env = fam.make_env(cfg.task.train_dict())
    verifier = fam.make_verifier(cfg.task.train_dict())
    obs, info = env.reset(seed=0)
    word = obs["text"].split()[-1].rstrip(".")
    verdict = verify_total(verifier, info["task_state"], "no idea").to_dict()
    obs, reward, terminated, truncated, info = env.apply_verdict(verdict)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["text"] == f"No. The word is {word}."
    verdict = verify_total(verifier, info["task_state"], f"It is {word}!").to_dict()
    _, reward, terminated, _, info = env.apply_verdict(verdict)
    assert (reward, terminated) == (1.0, True) and fam.episode_success(info)
    assert info["verdict"]["success"]  # what the rollout records as this turn's success


def test_suites_apply_their_kwargs_and_replay_the_same_seeds() -> None:
    cfg = load_experiment(None, OVERRIDES)
    fam = family("gymnasium")
    suites = fam.suites(cfg.task.active_dict())
    assert list(suites) == ["in_distribution", "ood_tries"]
    options = fam.eval_reset_options(suites["ood_tries"], None, 0)
    assert len(options) == 3 and options == fam.eval_reset_options(suites["ood_tries"], 9, 5)
    env = fam.make_env(suites["ood_tries"])
    first = [env.reset(options=o)[0]["text"] for o in options]
    assert first == [env.reset(options=o)[0]["text"] for o in options]
    env.reset(options=options[0])
    _, _, terminated, truncated, info = env.step("wrong")
    assert truncated and not terminated and not fam.episode_success(info)  # tries: 1


def test_max_turns_truncates_and_bad_envs_name_the_field() -> None:
    cfg = load_experiment(None, [*OVERRIDES, "task.gymnasium.max_turns=1"])
    env = family("gymnasium").make_env(cfg.task.train_dict())
    env.reset(seed=1)
    assert env.step("wrong")[3]  # truncated by the adapter after one turn
    with pytest.raises(ValueError, match=r"^env_id: .*observation_space is Discrete"):
        family("gymnasium").make_env(cfg.task.train_dict() | {"env_id": "FrozenLake-v1"})
    with pytest.raises(ValueError, match=r"^env_id: gymnasium.make\('nope/None-v0'\) failed"):
        family("gymnasium").make_env(cfg.task.train_dict() | {"env_id": "nope/None-v0"})
    with pytest.raises(ConfigError, match=r"^task\.gymnasium\.env_id: required"):
        load_experiment(None, ["task.family=gymnasium"])
