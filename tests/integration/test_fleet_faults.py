"""Rollout fleet under actor deaths, hangs and scaling: nothing lost, nothing duplicated.

The kills are real (ray.kill on live actors while episodes are being played), a hang is real
(SIGSTOP of an actor's process), and both wait for an event (the first episode in the buffer),
not a timer."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest
import ray
from ray.exceptions import RayActorError

from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from learner.assets import prepare
from rollout.buffer_actor import make_buffer_actor
from rollout.buffer_config import ReplayBufferConfig
from rollout.config import RolloutConfig
from rollout.fleet import RolloutFleet
from rollout.runner import EpisodeSpec

TASK = config_dict(GeneralPointsConfig(num_cards=2, target_mode="one_op", viter=2))
CFG = RolloutConfig(
    max_model_len=1024,
    max_new_tokens=24,
    temperature=1.0,
    max_concurrent_episodes=8,
    cpus_per_worker=0.5,
    cpus_per_env_actor=0.1,
    cpus_per_verifier_actor=0.1,
    env_actors=2,
    verifier_actors=2,
    actor_call_timeout_s=10,  # env and verifier calls take milliseconds
)


def _specs(n: int, prefix: str) -> list[EpisodeSpec]:
    options = family("generalpoints").eval_reset_options(TASK, n, 0)
    return [EpisodeSpec(f"{prefix}-{i}", "generalpoints", TASK, o) for i, o in enumerate(options)]


@pytest.fixture(scope="module")
def fleet(ray_cluster, tmp_path_factory):
    f = RolloutFleet(prepare("tiny-lm"), CFG, False, tmp_path_factory.mktemp("img"))
    f.play(_specs(2, "warm"))  # engine started
    yield f
    f.shutdown()


def _check_exactly_once(results, specs, buffer) -> None:
    ids = [r.episode_id for r in results]
    assert ids == [s.episode_id for s in specs]  # every episode once, in order
    stats = ray.get(buffer.stats.remote())
    assert stats["buffer/size_episodes"] == len(specs)
    table = ray.get(buffer.consume.remote(len(specs)))
    assert sorted(set(table.column("episode_id").to_pylist())) == sorted(ids)


def _pid(actor) -> int:
    """The process of a live actor (Ray's state API, on this session's cluster)."""
    from ray.util.state import get_actor

    address = ray.get_runtime_context().gcs_address  # other clusters may run on this machine
    return get_actor(actor._actor_id.hex(), address=address).pid


def _kill_after_first_episode(buffer, target) -> None:
    """The kill's event: the first finished episode reaches the buffer (the rest still play)."""
    while ray.get(buffer.stats.remote())["buffer/size_episodes"] < 1:
        time.sleep(0.01)
    ray.kill(target, no_restart=True)


@pytest.mark.parametrize("victim", ["rollout", "env", "verifier"])
def test_killed_actor_is_replaced_and_its_episodes_rerun(fleet, tmp_path: Path, victim) -> None:
    specs = _specs(24, f"kill-{victim}")
    buffer = make_buffer_actor(ReplayBufferConfig(), tmp_path)
    before = dict(fleet.replaced)
    target = {
        "rollout": lambda: next(iter(fleet.workers.values())).handle,
        "env": lambda: fleet.envs[0],
        "verifier": lambda: fleet.verifiers[0],
    }[victim]()
    killer = threading.Thread(target=_kill_after_first_episode, args=(buffer, target))
    killer.start()
    results = fleet.play(specs, buffer)
    killer.join()
    assert fleet.replaced[victim] == before[victim] + 1
    _check_exactly_once(results, specs, buffer)
    ray.kill(buffer)


def test_a_hung_env_actor_is_replaced_and_its_episodes_rerun(fleet, tmp_path: Path) -> None:
    specs = _specs(16, "hang")
    buffer = make_buffer_actor(ReplayBufferConfig(), tmp_path)
    before = fleet.replaced["env"]
    pid = _pid(fleet.envs[0])

    def stop_after_first_episode() -> None:
        while ray.get(buffer.stats.remote())["buffer/size_episodes"] < 1:
            time.sleep(0.01)
        os.kill(pid, signal.SIGSTOP)  # alive, holding its episodes, answering nothing

    stopper = threading.Thread(target=stop_after_first_episode)
    stopper.start()
    try:
        results = fleet.play(specs, buffer)
    finally:
        stopper.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert fleet.replaced["env"] == before + 1
    _check_exactly_once(results, specs, buffer)
    ray.kill(buffer)


def test_a_hung_rollout_worker_is_replaced_and_its_chunks_rerun(fleet, tmp_path: Path) -> None:
    specs = _specs(16, "hang-worker")
    buffer = make_buffer_actor(ReplayBufferConfig(), tmp_path)
    before, saved = fleet.replaced["rollout"], fleet.cfg
    victim = next(iter(fleet.workers.values()))
    proc = psutil.Process(_pid(victim.handle))
    family_procs = [proc, *proc.children(recursive=True)]  # its vLLM engine core too

    def stop_after_first_episode() -> None:
        while ray.get(buffer.stats.remote())["buffer/size_episodes"] < 1:
            time.sleep(0.01)
        for p in family_procs:
            p.send_signal(signal.SIGSTOP)

    fleet.cfg = dataclasses.replace(saved, chunk_timeout_s=20)  # tiny-lm: a chunk takes ~1 s
    stopper = threading.Thread(target=stop_after_first_episode)
    stopper.start()
    try:
        results = fleet.play(specs, buffer)
    finally:
        fleet.cfg = saved
        stopper.join()
        for p in family_procs:
            with contextlib.suppress(psutil.Error):
                p.kill()
    assert fleet.replaced["rollout"] == before + 1
    assert victim.worker_id not in fleet.workers
    _check_exactly_once(results, specs, buffer)
    ray.kill(buffer)


def test_scale_up_and_down_while_playing(fleet, tmp_path: Path) -> None:
    specs = _specs(24, "scale")
    buffer = make_buffer_actor(ReplayBufferConfig(), tmp_path)
    seen: list[int] = []
    calls = {"n": 0}

    def desired() -> int:
        calls["n"] += 1
        seen.append(fleet.num_workers)
        return 2 if calls["n"] < 4 else 1  # up to two workers, then back down to one

    results = fleet.play(specs, buffer, desired_workers=desired)
    assert 2 in seen
    assert fleet.num_workers == 1 and len(fleet.workers) == 1
    _check_exactly_once(results, specs, buffer)
    ray.kill(buffer)


def test_a_worker_dead_at_weight_sync_is_replaced_and_serves_the_new_weights(fleet) -> None:
    victim = next(iter(fleet.workers.values()))
    before = fleet.replaced["rollout"]
    ray.kill(victim.handle, no_restart=True)
    with pytest.raises(RayActorError):  # the event: the worker is dead before the sync starts
        while True:
            ray.get(victim.handle.version.remote())
    served = fleet.load_weights(7, str(prepare("tiny-lm")))
    assert served == [7] * fleet.num_workers
    assert fleet.replaced["rollout"] == before + 1
    assert victim.worker_id not in fleet.workers
    assert ray.get([w.handle.version.remote() for w in fleet.workers.values()]) == served
    results = fleet.play(_specs(4, "after-sync"))  # and the fleet plays on
    assert [r.episode_id for r in results] == [f"after-sync-{i}" for i in range(4)]
