"""The rollout worker actor: one generation engine, many concurrent episodes.

An async Ray actor: ``play`` runs episodes as asyncio tasks on the engine and streams every
finished episode to the replay buffer (if given) as an Arrow record batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.paths import set_build_env
from rollout.config import RolloutConfig
from rollout.engine import Sampling, make_engine
from rollout.pools import ActorPool
from rollout.runner import EpisodeResult, EpisodeRunner, EpisodeSpec
from rollout.trajectory import to_record_batch


class RolloutWorker:
    def __init__(
        self,
        model_path: str | Path,
        cfg: RolloutConfig,
        multimodal: bool,
        env_actors: list[Any],
        verifier_actors: list[Any],
        worker_id: str = "rollout-0",
    ) -> None:
        set_build_env()
        self.cfg = cfg
        self.worker_id = worker_id
        # "rollout-3" -> 3: which share of the node's cores a CPU engine takes.
        index = worker_id.rpartition("-")[2]
        self.engine = make_engine(model_path, cfg, multimodal, int(index) if index.isdigit() else 0)
        if multimodal:
            from transformers import AutoProcessor

            chat = AutoProcessor.from_pretrained(model_path)
        else:
            from transformers import AutoTokenizer

            chat = AutoTokenizer.from_pretrained(model_path)
        self.runner = EpisodeRunner(
            self.engine,
            chat,
            ActorPool(env_actors, "env"),
            ActorPool(verifier_actors, "verifier"),
            Sampling.from_config(cfg),
            multimodal,
            worker_id,
            cfg.actor_call_timeout_s,
        )
        self.episodes_played = 0
        self.tokens_generated = 0

    async def play(
        self, specs: list[EpisodeSpec], buffer: Any = None, sampling: Sampling | None = None
    ) -> list[EpisodeResult]:
        """Play the episodes; stream each finished one into ``buffer`` (an actor) if given.

        ``sampling`` overrides the worker's own (evaluation samples differently)."""

        pending_adds: list[Any] = []

        def sink(result: EpisodeResult) -> None:
            self.episodes_played += 1
            self.tokens_generated += sum(len(t.response_token_ids) for t in result.turns)
            if buffer is not None:
                pending_adds.append(buffer.add.remote(to_record_batch(result.turns)))

        results = await self.runner.run(specs, self.cfg.max_concurrent_episodes, sink, sampling)
        # Every episode is in the buffer before play returns (a failed add raises here).
        for ref in pending_adds:
            await ref
        return results

    def set_pools(self, env_actors: list[Any], verifier_actors: list[Any]) -> None:
        """Swap in new env/verifier actor lists (after the fleet replaced a dead one)."""
        self.runner.env_pool = ActorPool(env_actors, "env")
        self.runner.verifier_pool = ActorPool(verifier_actors, "verifier")

    async def load_weights(self, version: int, weights_dir: str) -> int:
        await self.engine.load_weights(version, weights_dir)
        return self.engine.version()

    async def nccl_group_init(self, addr: str, port: int, rank_offset: int, world: int) -> None:
        await self.engine.nccl_group_init(addr, port, rank_offset, world)  # type: ignore[attr-defined]

    async def nccl_receive(self, version: int, specs: list[tuple[str, str, list[int]]]) -> int:
        await self.engine.nccl_receive(version, specs)  # type: ignore[attr-defined]
        return self.engine.version()

    async def sleep(self) -> None:
        await self.engine.sleep()

    async def wake_up(self) -> None:
        await self.engine.wake_up()

    def version(self) -> int:
        return self.engine.version()

    def stats(self) -> dict[str, Any]:
        return {
            "rollout/episodes": self.episodes_played,
            "rollout/tokens": self.tokens_generated,
            "rollout/policy_version": self.engine.version(),
        }

    def shutdown(self) -> None:
        self.engine.shutdown()
