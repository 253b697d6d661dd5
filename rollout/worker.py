"""The rollout worker actor: one generation engine, many concurrent episodes."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from cluster.paths import set_build_env
from envs.families import family as task_family
from rollout.config import RolloutConfig
from rollout.engine import Sampling, VLLMEngine
from rollout.episodes import run_episodes


class RolloutWorker:
    """Owns one engine; plays batches of episodes for the controller."""

    def __init__(self, model_path: str | Path, cfg: RolloutConfig, multimodal: bool) -> None:
        set_build_env()
        self.cfg = cfg
        self.multimodal = multimodal
        if cfg.backend != "vllm":
            raise NotImplementedError("rollout.backend 'hf' arrives with the rollout issue")
        self.engine = VLLMEngine(model_path, cfg, multimodal)
        if multimodal:
            from transformers import AutoProcessor

            self.chat = AutoProcessor.from_pretrained(model_path)
        else:
            from transformers import AutoTokenizer

            self.chat = AutoTokenizer.from_pretrained(model_path)

    def play(
        self, family: str, task_config: dict[str, Any], reset_options: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Run one episode per reset option; return the episodes as plain dicts."""
        episodes = run_episodes(
            self.engine,
            self.chat,
            task_family(family),
            task_config,
            reset_options,
            Sampling.from_config(self.cfg),
            self.multimodal,
        )
        return [asdict(e) | {"total_reward": e.total_reward} for e in episodes]
