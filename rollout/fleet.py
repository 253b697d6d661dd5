"""The rollout side of a job: rollout workers, env actors and verifier actors.

The fleet hands episodes to workers in chunks and keeps every worker busy. It survives actor
deaths: a dead rollout worker, env actor or verifier actor is replaced and the chunks that were
in flight on it are played again (episode ids stay the same, so the replay buffer, which
de-duplicates by episode id, never stores one twice). Workers can be added or removed while
episodes are being played (``scale``); a removed worker first finishes what it holds.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import (
    ActorDiedError,
    ActorUnavailableError,
    GetTimeoutError,
    RayActorError,
    RayTaskError,
)
from ray.util.placement_group import remove_placement_group

from common.placement import PLACEMENT_TIMEOUT_S, PlacementError, RoleSpec, in_bundle, reserve
from common.placement_config import PlacementConfig
from rollout.config import RolloutConfig
from rollout.engine import Sampling
from rollout.pools import EnvActor, VerifierActor, hung_actor
from rollout.runner import EpisodeResult, EpisodeSpec
from rollout.worker import RolloutWorker

log = logging.getLogger(__name__)

# How often a chunk may be replayed after actor deaths before the job gives up.
MAX_CHUNK_RETRIES = 3
# Chunks each worker holds at once: two keep its engine busy while one finishes.
CHUNKS_IN_FLIGHT_PER_WORKER = 2
_DEATHS = (RayActorError, ActorDiedError, ActorUnavailableError)
# A scale-up the cluster cannot place within this is skipped (with a warning), not waited on.
SCALE_UP_TIMEOUT_S = 30
# A pool actor that does not answer a ping within this is taken as hung and replaced.
PING_TIMEOUT_S = 30


@dataclass
class _Worker:
    worker_id: str
    handle: Any
    pg: Any
    draining: bool = False
    starting: Any = None  # a call that returns once the engine is up; None once it did


class RolloutFleet:
    def __init__(
        self,
        model_path: str | Path,
        cfg: RolloutConfig,
        multimodal: bool,
        image_dir: str | Path,
        placement: PlacementConfig | None = None,
    ) -> None:
        self.model_path = str(model_path)
        self.cfg = cfg
        self.multimodal = multimodal
        self.image_dir = str(image_dir)
        p = placement or PlacementConfig()
        self.worker_spec = RoleSpec(
            "rollout",
            1,
            cfg.cpus_per_worker,
            cfg.gpus_per_worker,
            p.rollout_resources,
            p.rollout_strategy,
        )
        self.env_spec = RoleSpec(
            "env", cfg.env_actors, cfg.cpus_per_env_actor, 0.0, p.env_resources, p.env_strategy
        )
        self.verifier_spec = RoleSpec(
            "verifier",
            cfg.verifier_actors,
            cfg.cpus_per_verifier_actor,
            0.0,
            p.verifier_resources,
            p.verifier_strategy,
        )
        self.env_pg = reserve(self.env_spec)
        self.verifier_pg = reserve(self.verifier_spec)
        self.envs = [self._new_env(i) for i in range(cfg.env_actors)]
        self.verifiers = [self._new_verifier(i) for i in range(cfg.verifier_actors)]
        self.workers: dict[str, _Worker] = {}
        self._ids = itertools.count()
        self.replaced = {"rollout": 0, "env": 0, "verifier": 0}
        self.version = 0
        self.weights_dir: str | None = None
        # Set by a transport that pushes weights (NCCL): brings a new worker to the current
        # policy before it plays. The shared-memory path uses weights_dir instead.
        self.on_new_worker: Any = None
        self.unplaceable = 0  # a worker count that did not fit; not retried until it changes
        self.scale(cfg.num_workers, strict=True)

    # ------------------------------------------------------------------ actors
    def _new_env(self, index: int) -> Any:
        opts = in_bundle(self.env_pg, index, self.env_spec)
        return ray.remote(EnvActor).options(**opts).remote(self.image_dir)

    def _new_verifier(self, index: int) -> Any:
        opts = in_bundle(self.verifier_pg, index, self.verifier_spec)
        return ray.remote(VerifierActor).options(**opts).remote()

    def _new_worker(self, timeout_s: float = PLACEMENT_TIMEOUT_S) -> _Worker:
        worker_id = f"rollout-{next(self._ids)}"
        pg = reserve(self.worker_spec, name=f"veriray-{worker_id}", timeout_s=timeout_s)
        handle = (
            ray.remote(RolloutWorker)
            .options(**in_bundle(pg, 0, self.worker_spec), max_concurrency=1000)
            .remote(
                self.model_path, self.cfg, self.multimodal, self.envs, self.verifiers, worker_id
            )
        )
        if self.weights_dir is not None:  # a late joiner serves the current policy too
            ray.get(handle.load_weights.remote(self.version, self.weights_dir))
        elif self.on_new_worker is not None:
            self.on_new_worker(handle)
        return _Worker(worker_id, handle, pg, starting=handle.version.remote())

    def _retire(self, worker: _Worker, graceful: bool = True) -> None:
        if graceful:
            with contextlib.suppress(*_DEATHS):  # already dead: nothing to shut down
                ray.get(worker.handle.shutdown.remote(), timeout=60)
        ray.kill(worker.handle)
        remove_placement_group(worker.pg)
        self.workers.pop(worker.worker_id, None)

    @property
    def num_workers(self) -> int:
        return sum(not w.draining for w in self.workers.values())

    def scale(self, n: int, strict: bool = False) -> None:
        """Run ``n`` rollout workers: start new ones, or mark the newest ones to drain.

        ``strict`` (start-up): a worker the cluster cannot place is an error. Otherwise
        (growing a running job) it is skipped with a warning, so the job never stalls on it.
        """
        if n < 1:
            raise ValueError(f"rollout workers: need at least 1, got {n}")
        active = [w for w in self.workers.values() if not w.draining]
        for _ in range(n - len(active)):
            try:
                w = self._new_worker(PLACEMENT_TIMEOUT_S if strict else SCALE_UP_TIMEOUT_S)
            except PlacementError as err:
                if strict:
                    raise
                log.warning("scale to %d rollout workers: %s; keeping %d", n, err, self.num_workers)
                self.unplaceable = n
                break
            self.workers[w.worker_id] = w
        for w in active[n:][::-1] if n < len(active) else []:
            w.draining = True
        self._retire_idle_drained(busy=set())

    def _retire_idle_drained(self, busy: set[str]) -> None:
        for w in [w for w in self.workers.values() if w.draining and w.worker_id not in busy]:
            self._retire(w)

    def _heal_pools(self, hung: tuple[str, int] | None = None) -> bool:
        """Replace dead or hung env/verifier actors (``hung``: one known to be, by kind and
        index); tell the workers. True if any was replaced."""
        healed = False
        for kind, actors, make in (
            ("env", self.envs, self._new_env),
            ("verifier", self.verifiers, self._new_verifier),
        ):
            for i, actor in enumerate(actors):
                if hung != (kind, i):
                    try:
                        ray.get(actor.ping.remote(), timeout=PING_TIMEOUT_S)
                        continue
                    except _DEATHS:
                        log.warning("%s actor %d died; replacing it", kind, i)
                    except GetTimeoutError:
                        log.warning("%s actor %d did not answer a ping; replacing it", kind, i)
                ray.kill(actor, no_restart=True)  # a hung one must not hold its CPU slot
                actors[i] = make(i)
                self.replaced[kind] += 1
                healed = True
        if healed:
            ray.get(
                [
                    w.handle.set_pools.remote(self.envs, self.verifiers)
                    for w in self.workers.values()
                ]
            )
        return healed

    # ------------------------------------------------------------------ playing
    def play(
        self,
        specs: list[EpisodeSpec],
        buffer: Any = None,
        desired_workers: Any = None,
        sampling: Sampling | None = None,
    ) -> list[EpisodeResult]:
        """Play every episode once; results in input order.

        ``desired_workers`` (a callable returning an int, or None) is polled between chunks so
        the worker count can change while episodes are being played.
        """
        chunk = max(1, self.cfg.max_concurrent_episodes // CHUNKS_IN_FLIGHT_PER_WORKER)
        queue = deque((i, specs[i : i + chunk], 0) for i in range(0, len(specs), chunk))
        results: dict[int, list[EpisodeResult]] = {}
        in_flight: dict[Any, tuple[int, list[EpisodeSpec], int, str]] = {}
        sent: dict[Any, float] = {}  # when each in-flight chunk was handed out
        while queue or in_flight:
            want = desired_workers() if desired_workers is not None else self.num_workers
            if want != self.num_workers and want != self.unplaceable:
                self.scale(want)
            load = {wid: 0 for wid in self.workers}
            for _, _, _, wid in in_flight.values():
                load[wid] = load.get(wid, 0) + 1
            for w in list(self.workers.values()):
                while queue and not w.draining and load[w.worker_id] < CHUNKS_IN_FLIGHT_PER_WORKER:
                    start, part, tries = queue.popleft()
                    ref = w.handle.play.remote(part, buffer, sampling)
                    in_flight[ref] = (start, part, tries, w.worker_id)
                    sent[ref] = time.monotonic()
                    load[w.worker_id] += 1
            self._retire_idle_drained(busy={wid for *_, wid in in_flight.values()})
            hung = self._hung_worker(in_flight, sent)
            if hung is not None:  # its chunks now fail with the death and are played again
                limit = self.cfg.chunk_timeout_s
                self._replace_dead_worker(
                    hung, f"is hung (a chunk held over {limit:g} s, rollout.chunk_timeout_s)"
                )
                continue
            done, _ = ray.wait(
                list(in_flight), num_returns=1, timeout=self._wait_s(in_flight, sent)
            )
            if not done:
                continue
            sent.pop(done[0])
            start, part, tries, wid = in_flight.pop(done[0])
            try:
                results[start] = ray.get(done[0])
            except (*_DEATHS, RayTaskError) as err:
                if tries >= MAX_CHUNK_RETRIES:
                    raise
                self._recover(wid, err)
                queue.appendleft((start, part, tries + 1))
        return [r for start in sorted(results) for r in results[start]]

    def _hung_worker(
        self, in_flight: dict[Any, tuple[Any, ...]], sent: dict[Any, float]
    ) -> str | None:
        """The live worker holding a chunk past ``chunk_timeout_s``, if any.

        A chunk's clock runs from when its worker's engine is up, not while a new worker
        starts (tens of seconds on CPU). Chunks of workers already retired are left to fail
        with their death.
        """
        limit, now = self.cfg.chunk_timeout_s, time.monotonic()
        oldest: tuple[float, str] | None = None
        for ref, (*_, wid) in in_flight.items():
            w = self.workers.get(wid)
            if w is None:
                continue
            if w.starting is not None:
                if not ray.wait([w.starting], timeout=0)[0]:
                    sent[ref] = now
                    continue
                w.starting = None
            if oldest is None or sent[ref] < oldest[0]:
                oldest = (sent[ref], wid)
        if limit and oldest is not None and now - oldest[0] >= limit:
            return oldest[1]
        return None

    def _wait_s(
        self, in_flight: dict[Any, tuple[Any, ...]], sent: dict[Any, float]
    ) -> float | None:
        """How long to wait for the next chunk: until the oldest may be past its limit, and
        at most a second while a worker is starting (its chunks' clocks start when it is up)."""
        limit = self.cfg.chunk_timeout_s
        if not limit:
            return None
        live = [sent[ref] for ref, (*_, wid) in in_flight.items() if wid in self.workers]
        if not live:  # only chunks of retired workers: their deaths come back at once
            return 1.0
        wait_s = max(0.0, limit - (time.monotonic() - min(live)))
        if any(w.starting is not None for w in self.workers.values()):
            wait_s = min(wait_s, 1.0)
        return wait_s

    def _recover(self, worker_id: str, err: Exception) -> None:
        """After a failed chunk: replace whatever died, so the chunk can be played again.

        A dead worker raises the death itself; a dead env or verifier actor reaches us wrapped
        in the worker's task error (a RayTaskError that is also an ActorDiedError). Either may
        already have been replaced while handling another chunk that held the same actor.
        """
        worker_died = isinstance(err, _DEATHS) and not isinstance(err, RayTaskError)
        if worker_died:
            if worker_id in self.workers:
                self._replace_dead_worker(worker_id, "died while playing")
            return
        hung = hung_actor(err)
        actors = {"env": self.envs, "verifier": self.verifiers}
        if hung is not None and actors[hung.kind][hung.index]._actor_id.hex() != hung.actor_id:
            return  # replaced already, after another chunk's call to it timed out
        if hung is not None:
            log.warning("%s; replacing it", hung)
        healed = self._heal_pools((hung.kind, hung.index) if hung else None)
        if not healed and not isinstance(err, _DEATHS):
            raise err  # a real error in the episode code, not an actor death: fail loudly

    def load_weights(self, version: int, weights_dir: str) -> list[int]:
        """Every worker serves ``version``; returns the versions they report.

        A worker that dies while loading is replaced, and the replacement loads the same
        folder as it starts (``_new_worker``), so a death here costs a restart, not the run.
        """
        self.version, self.weights_dir = version, weights_dir
        calls = {
            wid: w.handle.load_weights.remote(version, weights_dir)
            for wid, w in self.workers.items()
        }
        served: list[int] = []
        for wid, ref in calls.items():
            for attempt in range(MAX_CHUNK_RETRIES + 1):
                try:
                    served.append(ray.get(ref))
                    break
                except _DEATHS:
                    if attempt == MAX_CHUNK_RETRIES:
                        raise
                    new_id = self._replace_dead_worker(wid, "died while loading weights")
                    if new_id is None:
                        break  # it was draining: nothing to replace
                    wid, ref = new_id, self.workers[new_id].handle.version.remote()
        return served

    def _replace_dead_worker(self, worker_id: str, when: str) -> str | None:
        """Retire a dead (or hung) worker and start its replacement, which serves the current
        weights (None when the dead worker was draining anyway)."""
        log.warning("rollout worker %s %s; replacing it", worker_id, when)
        worker = self.workers[worker_id]
        self._retire(worker, graceful=False)
        self.replaced["rollout"] += 1
        if worker.draining:
            return None
        new = self._new_worker()
        self.workers[new.worker_id] = new
        return new.worker_id

    def sleep(self) -> None:
        """Colocated mode: every engine frees its GPU memory while the learner trains."""
        ray.get([w.handle.sleep.remote() for w in self.workers.values()])

    def wake_up(self) -> None:
        ray.get([w.handle.wake_up.remote() for w in self.workers.values()])

    @property
    def worker_handles(self) -> list[Any]:
        return [w.handle for w in self.workers.values()]

    def stats(self) -> dict[str, float]:
        per_worker = ray.get([w.handle.stats.remote() for w in self.workers.values()])
        out: dict[str, float] = {
            "rollout/workers": float(self.num_workers),
            "rollout/env_actors": float(len(self.envs)),
            "rollout/verifier_actors": float(len(self.verifiers)),
        }
        for kind, n in self.replaced.items():
            out[f"rollout/replaced_{kind}"] = float(n)
        for key in ("rollout/episodes", "rollout/tokens"):
            out[key] = float(sum(s[key] for s in per_worker))
        return out

    def shutdown(self) -> None:
        for w in list(self.workers.values()):
            self._retire(w)
        for actor in [*self.envs, *self.verifiers]:
            ray.kill(actor)
        remove_placement_group(self.env_pg)
        remove_placement_group(self.verifier_pg)


def start_fleet(
    model_path: str | Path,
    cfg: RolloutConfig,
    multimodal: bool,
    image_dir: str | Path,
    placement: PlacementConfig | None = None,
) -> RolloutFleet:
    return RolloutFleet(model_path, cfg, multimodal, image_dir, placement)
