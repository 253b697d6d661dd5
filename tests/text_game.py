"""A small third-party-style gymnasium env with text spaces, written as a stranger to veriray
would write it (it imports only gymnasium): say the secret word, with hints after misses.

Importing this module registers "textgame/SayTheWord-v0".
"""

from __future__ import annotations

import string
from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.envs.registration import register, registry

WORDS = ("apple", "river", "stone", "cloud", "maple", "tiger", "candle", "garden")
ENV_ID = "textgame/SayTheWord-v0"


class SayTheWord(gym.Env):
    """Observation: an instruction naming a word. Action: any text. Reward 1 and the end when
    the text contains the word; otherwise a hint, until ``tries`` are spent."""

    def __init__(self, tries: int = 2, words: tuple[str, ...] = WORDS) -> None:
        charset = frozenset(string.printable)
        self.observation_space = spaces.Text(256, min_length=0, charset=charset)
        self.action_space = spaces.Text(256, min_length=0, charset=charset)
        self.tries, self.words = tries, tuple(words)
        self.word, self.used = "", 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.word = self.words[int(self.np_random.integers(len(self.words)))]
        self.used = 0
        return f"Say the word {self.word}.", {}

    def step(self, action: str):
        self.used += 1
        said = self.word in action.lower()
        done = said or self.used >= self.tries
        hint = "" if said else f"No. The word is {self.word}."
        return hint, float(said), said, done and not said, {"is_success": said}


if ENV_ID not in registry:
    register(id=ENV_ID, entry_point=SayTheWord)
