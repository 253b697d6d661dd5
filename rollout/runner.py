"""The multi-turn episode runner: many concurrent episodes per rollout worker.

Each episode is an asyncio task: observation -> generate -> verify -> feedback turn -> ...
until done. While one episode awaits its verifier or env actor, the engine keeps generating for
the others (continuous batching), so env and verifier work never blocks generation. Each
finished episode is handed to ``sink`` at once (streamed to the replay buffer), not collected
at the end.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from rollout.engine import Engine, GenerationRequest, Sampling
from rollout.pools import ActorHungError, ActorPool
from rollout.trajectory import TurnRecord


@dataclass
class EpisodeSpec:
    """One episode to play."""

    episode_id: str
    family: str
    config: dict[str, Any]
    reset_options: dict[str, Any] = field(default_factory=dict)
    group_id: str = ""


@dataclass
class EpisodeResult:
    episode_id: str
    success: bool
    turns: list[TurnRecord]
    final_info: dict[str, Any]

    @property
    def total_reward(self) -> float:
        return sum(t.reward for t in self.turns)


def render_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages for the template: only the newest observation keeps its image.

    Engines take one image per prompt; the current observation is what the model must read
    (a V-IRL step's street views, or the GP table image of the first turn).
    """
    latest = max((i for i, m in enumerate(messages) if m.get("has_image")), default=-1)
    out = []
    for i, m in enumerate(messages):
        if i == latest:
            content: Any = [{"type": "image"}, {"type": "text", "text": m["text"]}]
        else:
            content = m["text"]
        out.append({"role": m["role"], "content": content})
    return out


class EpisodeRunner:
    def __init__(
        self,
        engine: Engine,
        chat: Any,
        env_pool: ActorPool,
        verifier_pool: ActorPool,
        sampling: Sampling,
        multimodal: bool,
        worker_id: str = "",
        call_timeout_s: float = 0.0,
    ) -> None:
        self.engine = engine
        self.call_timeout_s = call_timeout_s  # per env/verifier call; 0 = no limit
        self.chat = chat
        self.env_pool = env_pool
        self.verifier_pool = verifier_pool
        self.sampling = sampling
        self.multimodal = multimodal
        self.worker_id = worker_id

    async def run(
        self,
        specs: list[EpisodeSpec],
        max_concurrent: int,
        sink: Callable[[EpisodeResult], None] | None = None,
        sampling: Sampling | None = None,
    ) -> list[EpisodeResult]:
        """Play every spec (at most ``max_concurrent`` at once); results in input order.

        ``sink`` gets each episode as soon as it finishes (per call: concurrent ``run`` calls
        on one runner each stream to their own sink).
        """
        gate = asyncio.Semaphore(max_concurrent)

        async def guarded(spec: EpisodeSpec) -> EpisodeResult:
            async with gate:
                result = await self.run_episode(spec, sampling or self.sampling)
            if sink is not None:
                sink(result)
            return result

        # A TaskGroup cancels the sibling episodes when one fails (an actor died): the fleet
        # replays the whole chunk, so leftovers must not keep playing.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(guarded(s)) for s in specs]
        except BaseExceptionGroup as failures:
            # Surface the first cause itself (e.g. ActorDiedError), which the fleet's recovery
            # inspects, rather than the group wrapping it.
            raise failures.exceptions[0] from failures
        return [t.result() for t in tasks]

    async def _call(self, pool: ActorPool, index: int, method: str, *args: Any) -> Any:
        """``pool.actors[index].method(*args)``, failing with ActorHungError past the timeout."""
        ref = getattr(pool.actors[index], method).remote(*args)
        try:
            return await asyncio.wait_for(ref, self.call_timeout_s or None)
        except TimeoutError:
            actor_id = pool.actors[index]._actor_id.hex()
            raise ActorHungError(pool.kind, index, actor_id, method, self.call_timeout_s) from None

    async def run_episode(self, spec: EpisodeSpec, sampling: Sampling) -> EpisodeResult:
        envs = self.env_pool  # this episode's pool, even if the fleet swaps in a new one
        e, env = envs.pick_indexed()
        # The env actor keys this attempt uniquely: a replayed episode (same episode_id) and a
        # cancelled earlier attempt whose calls are still in flight never touch each other.
        key = f"{spec.episode_id}#{uuid.uuid4().hex[:12]}"
        obs = await self._call(envs, e, "reset", key, spec.family, spec.config, spec.reset_options)
        task_state = obs["task_state"]
        messages: list[dict[str, Any]] = []
        if obs.get("system"):
            messages.append({"role": "system", "text": obs["system"], "has_image": False})
        image, image_ref = None, None
        turns: list[TurnRecord] = []
        final_info: dict[str, Any] = {}
        try:
            while True:
                if self.multimodal and obs["image"] is not None:
                    image, image_ref = Image.fromarray(obs["image"]), obs["image_ref"]
                messages.append(
                    {"role": "user", "text": obs["text"], "has_image": obs["image"] is not None}
                )
                prompt = self.chat.apply_chat_template(
                    render_messages(messages) if self.multimodal else _text_only(messages),
                    tokenize=False,
                    add_generation_prompt=True,
                )
                gen = await self.engine.generate(
                    GenerationRequest(prompt=prompt, image=image if self.multimodal else None),
                    sampling,
                )
                verifiers = self.verifier_pool
                v = verifiers.pick_indexed()[0]
                verdict = await self._call(
                    verifiers, v, "verify", spec.family, spec.config, task_state, gen.text
                )
                step = await self._call(envs, e, "apply_verdict", key, verdict)
                # The env has the last word on the turn's success: the study's envs pass the
                # verdict through; an adapted gymnasium env scores the answer in its own step.
                judged = step["info"].get("verdict", verdict)
                turns.append(
                    TurnRecord(
                        episode_id=spec.episode_id,
                        turn_index=len(turns),
                        task_family=spec.family,
                        task_state=json.dumps(task_state, sort_keys=True),
                        prompt_token_ids=gen.prompt_token_ids,
                        response_token_ids=gen.token_ids,
                        behaviour_logprobs=gen.logprobs,
                        response_text=gen.text,
                        reward=step["reward"],
                        success=bool(judged.get("success", verdict["success"])),
                        done=step["done"],
                        truncated=step["truncated"],
                        verdict=json.dumps(verdict["fields"], sort_keys=True, default=str),
                        policy_version=gen.policy_version,
                        group_id=spec.group_id,
                        image_ref=image_ref if self.multimodal else None,
                        worker_id=self.worker_id,
                        created_at=time.time(),
                        cached_prompt_tokens=gen.cached_prompt_tokens,
                        finish_reason=gen.finish_reason,
                    )
                )
                messages.append({"role": "assistant", "text": gen.text})
                task_state = step["task_state"]
                obs = step
                if step["done"]:
                    final_info = step["info"]
                    break
        except BaseException:
            env.close.remote(key)
            raise
        from envs.families import family as task_family

        success = task_family(spec.family).episode_success(final_info)
        for t in turns:
            t.episode_success = success
        return EpisodeResult(spec.episode_id, success, turns, final_info)


def _text_only(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"role": m["role"], "content": m["text"]} for m in messages]
