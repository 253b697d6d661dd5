"""Env and verifier actors, each in a pool of its own size, so CPU-heavy work (dealing hands,
rendering street views, checking answers) scales apart from generation.

An episode lives in one env actor (it is stateful); any verifier actor can score any turn.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

from envs.families import family as task_family
from rollout.images import ImageStore
from verifier.base import verify_total

logger = logging.getLogger(__name__)


class EnvActor:
    """Holds the envs of live episodes, keyed by attempt (episode id + a unique suffix)."""

    def __init__(self, image_dir: str) -> None:
        self.images = ImageStore(image_dir)
        self.envs: dict[str, Any] = {}

    def reset(
        self, key: str, family: str, config: dict[str, Any], options: dict[str, Any]
    ) -> dict[str, Any]:
        if key in self.envs:
            raise ValueError(f"episode key {key} is already running in this env actor")
        env = task_family(family).make_env(config)
        rest = dict(options)
        seed = rest.pop("seed", None)  # a seed deals a fresh task; other options pick one
        obs, info = env.reset(seed=seed, options=rest or None)
        self.envs[key] = env
        # A task may open with a system message (a dataset task's system_prompt).
        system = obs.get("system")
        return self._observation(obs) | {"task_state": info["task_state"], "system": system}

    def apply_verdict(self, key: str, verdict: dict[str, Any]) -> dict[str, Any]:
        env = self.envs[key]
        try:
            obs, reward, terminated, truncated, info = env.apply_verdict(verdict)
        except Exception as err:  # an env bug on one answer must not end the run
            return self._end_on_error(key, verdict, err)
        done = bool(terminated or truncated)
        if done:
            del self.envs[key]
        return self._observation(obs) | {
            "reward": float(reward),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "done": done,
            "info": _jsonable(info),
            "task_state": info["task_state"],
        }

    def _end_on_error(self, key: str, verdict: dict[str, Any], err: Exception) -> dict[str, Any]:
        """The episode ends here, truncated, scored with the verdict's reward; the error is
        logged and kept in the step's info (``env_error``), so it is counted, not fatal."""
        env = self.envs.pop(key)
        reason = f"{type(err).__name__}: {str(err)[:200]}"
        logger.warning(
            "env %s raised while stepping episode %s (%s); episode truncated",
            type(env).__name__,
            key,
            reason,
        )
        state = env.task_state() if hasattr(env, "task_state") else {}
        return {"text": "", "image": None, "image_ref": None} | {
            "reward": float(verdict.get("reward", 0.0)),
            "terminated": False,
            "truncated": True,
            "done": True,
            "info": {"env_error": reason},
            "task_state": _jsonable(state),
        }

    def close(self, key: str) -> None:
        self.envs.pop(key, None)

    def ping(self) -> bool:
        return True

    def live_episodes(self) -> int:
        return len(self.envs)

    def _observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        image = obs.get("image")
        return {
            "text": obs["text"],
            "image": image,
            "image_ref": self.images.put(image) if image is not None else None,
        }


class VerifierActor:
    """Scores responses; verifiers are pure, so any actor can score any turn."""

    def __init__(self) -> None:
        self._verifiers: dict[tuple[str, str], Any] = {}

    def ping(self) -> bool:
        return True

    def verify(
        self, family: str, config: dict[str, Any], task_state: dict[str, Any], response: str
    ) -> dict[str, Any]:
        key = (family, json.dumps(config, sort_keys=True, default=str))
        if key not in self._verifiers:
            self._verifiers[key] = task_family(family).make_verifier(config)
        return verify_total(self._verifiers[key], task_state, response).to_dict()


class ActorPool:
    """Round-robin over a fixed set of actor handles of one kind ("env", "verifier")."""

    def __init__(self, actors: list[Any], kind: str = "actor") -> None:
        if not actors:
            raise ValueError("an actor pool needs at least one actor")
        self.actors = actors
        self.kind = kind
        self._next = itertools.cycle(enumerate(actors))

    def pick(self) -> Any:
        return self.pick_indexed()[1]

    def pick_indexed(self) -> tuple[int, Any]:
        """The next actor and its index in the pool (the fleet's index too)."""
        return next(self._next)


class ActorHungError(RuntimeError):
    """An env or verifier actor did not answer one call within the configured time.

    Raised inside a rollout worker; the fleet reads ``kind`` and ``index`` (also through
    Ray's task-error wrapper) to kill and replace that actor, then plays the chunk again.
    """

    def __init__(self, kind: str, index: int, actor_id: str, method: str, timeout_s: float) -> None:
        self.kind, self.index, self.actor_id = kind, index, actor_id
        self.method, self.timeout_s = method, timeout_s
        super().__init__(
            f"{kind} actor {index} (Ray actor {actor_id}) did not answer {method} within "
            f"{timeout_s:g} s (rollout.actor_call_timeout_s): it is taken as hung"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # crosses processes inside Ray's task errors
        return type(self), (self.kind, self.index, self.actor_id, self.method, self.timeout_s)


def hung_actor(err: BaseException) -> ActorHungError | None:
    """The ActorHungError behind ``err`` (itself, or the cause Ray wrapped), if any."""
    # The cause first: Ray's wrapper is an ActorHungError too, but not a plain one.
    for c in (getattr(err, "cause", None), err):
        if isinstance(c, ActorHungError):  # a plain copy: no wrapped traceback in str()
            return ActorHungError(c.kind, c.index, c.actor_id, c.method, c.timeout_s)
    return None


def _jsonable(value: Any) -> Any:
    """Info dicts cross actors and land in trajectories: keep them plain."""
    return json.loads(json.dumps(value, default=str))
