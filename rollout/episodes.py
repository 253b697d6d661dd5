"""Multi-turn episodes: observation -> generate -> verify -> feedback turn -> ... -> done.

All active episodes of a worker are advanced together: one batched generate call per round,
so the engine batches every conversation's next turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from PIL import Image

from envs.families import TaskFamily
from rollout.engine import Engine, GenerationRequest, Sampling


@dataclass
class Turn:
    prompt_token_ids: list[int]
    response_token_ids: list[int]
    logprobs: list[float]
    response: str
    reward: float
    verdict: dict[str, Any]
    done: bool


@dataclass
class Episode:
    reset_options: dict[str, Any]
    task_state: dict[str, Any] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    success: bool = False

    @property
    def total_reward(self) -> float:
        return sum(t.reward for t in self.turns)


def _user_message(text: str, with_image: bool) -> dict[str, Any]:
    if with_image:
        return {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
    return {"role": "user", "content": text}


def run_episodes(
    engine: Engine,
    chat: Any,
    family: TaskFamily,
    task_config: dict[str, Any],
    reset_options: list[dict[str, Any]],
    sampling: Sampling,
    multimodal: bool,
) -> list[Episode]:
    """Play one episode per reset option to the end; return them in input order.

    ``chat`` renders messages (a tokenizer or processor with a chat template); with
    ``multimodal`` the first observation's image goes to the model.
    """
    envs: list[gym.Env] = []
    messages: list[list[dict[str, Any]]] = []
    images: list[Any] = []
    episodes = [Episode(reset_options=o) for o in reset_options]
    for episode, options in zip(episodes, reset_options):
        env = family.make_env(task_config)
        obs, info = env.reset(options=options)
        episode.task_state = dict(info.get("task_state", {}))
        image = Image.fromarray(obs["image"]) if multimodal and "image" in obs else None
        envs.append(env)
        images.append(image)
        messages.append([_user_message(obs["text"], image is not None)])
    active = list(range(len(reset_options)))
    while active:
        requests = [
            GenerationRequest(
                prompt=chat.apply_chat_template(
                    messages[i], tokenize=False, add_generation_prompt=True
                ),
                image=images[i],
            )
            for i in active
        ]
        generations = engine.generate(requests, sampling)
        still_active = []
        for i, gen in zip(active, generations):
            obs, reward, terminated, truncated, info = envs[i].step(gen.text)
            done = bool(terminated or truncated)
            episodes[i].turns.append(
                Turn(
                    prompt_token_ids=gen.prompt_token_ids,
                    response_token_ids=gen.token_ids,
                    logprobs=gen.logprobs,
                    response=gen.text,
                    reward=float(reward),
                    verdict=dict(info.get("verdict", {})),
                    done=done,
                )
            )
            messages[i].append({"role": "assistant", "content": gen.text})
            if done:
                episodes[i].success = family.episode_success(info)
            if not done:
                messages[i].append(_user_message(obs["text"], False))
                still_active.append(i)
        active = still_active
    return episodes
