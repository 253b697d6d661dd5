"""The gymnasium env: checker, seeding, and the verification-revision episode."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers the env ids)
from envs import GENERAL_POINTS_ID
from envs.generalpoints.env import GeneralPointsEnv
from envs.generalpoints.oracle import oracle_answer
from verifier.generalpoints_rules import make_task

WRONG_VALUE = '{"cards": ["8", "3", "8", "3"], "number": [8, 3, 8, 3], "formula": "8+3+8+3"}'


@pytest.mark.parametrize("mode", ["text", "image"])
def test_env_checker_passes(mode):
    env = gym.make(GENERAL_POINTS_ID, config={"observation_mode": mode, "image_size": 128})
    check_env(env.unwrapped, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert set(obs) == ({"text", "image"} if mode == "image" else {"text"})
    if mode == "image":
        assert obs["image"].shape == (128, 128, 3) and obs["image"].dtype == np.uint8


def test_seeds_reproduce_episodes():
    env = GeneralPointsEnv()
    hands = []
    for seed in (5, 5, 6):
        _, info = env.reset(seed=seed)
        hands.append(info["task_state"])
    assert hands[0] == hands[1]
    assert hands[0] != hands[2]


def test_success_terminates_with_correct_reward():
    env = GeneralPointsEnv()
    task = make_task(["8", "3", "8", "3"])
    obs, info = env.reset(seed=0, options={"task_state": task.to_dict()})
    assert "8, 3, 8, 3" in obs["text"]
    obs, reward, terminated, truncated, info = env.step(WRONG_VALUE)
    assert (reward, terminated, truncated) == (-1.0, False, False)
    assert obs["text"].startswith("You failed this trial because")
    assert "evaluates to 22" in obs["text"]
    assert info["verdict"]["fields"]["error"] == "wrong_value"
    _, reward, terminated, truncated, info = env.step(oracle_answer(task))
    assert (reward, terminated, truncated) == (5.0, True, False)
    assert info["attempt"] == 2
    with pytest.raises(RuntimeError):
        env.step(WRONG_VALUE)


@pytest.mark.parametrize("viter", [1, 3, 5])
def test_budget_truncates_and_adds_penalty(viter):
    env = GeneralPointsEnv({"viter": viter})
    env.reset(seed=0, options={"task_state": make_task(["8", "3", "8", "3"])})
    rewards = []
    for attempt in range(1, viter + 1):
        obs, reward, terminated, truncated, info = env.step(WRONG_VALUE)
        rewards.append(reward)
        assert not terminated
        assert truncated == (attempt == viter)
        assert obs["text"].startswith("You failed this trial because")
    assert rewards == [-1.0] * (viter - 1) + [-2.0]  # last: wrong value -1 + budget -1
    assert info["budget_penalty"] == -1.0
    assert f"used all {viter} attempts" in obs["text"]


def test_image_mode_episode_checks_recognition():
    env = GeneralPointsEnv({"observation_mode": "image", "suit_color": "red"})
    obs, info = env.reset(seed=2)
    task_state = info["task_state"]
    assert "The image shows four playing cards" in obs["text"]
    assert "You have" not in obs["text"]  # the prompt must not list the hand
    assert obs["image"][..., 0].max() > 150  # red suits are drawn
    from verifier.generalpoints_rules import GeneralPointsTask

    task = GeneralPointsTask.from_dict(task_state)
    _, reward, terminated, _, _ = env.step(oracle_answer(task))
    assert terminated and reward == 5.0


def test_render_modes():
    env = GeneralPointsEnv(render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (336, 336, 3)
    env = GeneralPointsEnv(render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert env.render() == obs["text"]
    with pytest.raises(ValueError, match=r"^render_mode"):
        GeneralPointsEnv(render_mode="human")
