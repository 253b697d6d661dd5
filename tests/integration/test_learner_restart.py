"""A learner rank killed mid-run: the RL arm starts again by itself from its newest complete
checkpoint, and the final policy has trained every update's episodes exactly once.

The kill is real (SIGKILL of the rank's process, found by its Ray process title) and waits for
an event: the first checkpoint sealed on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT, quick_demo_args


def _rank_process(job: subprocess.Popen) -> psutil.Process | None:
    for proc in psutil.Process(job.pid).children(recursive=True):
        try:
            if "ray::LearnerRank" in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    # Ray workers may be children of the raylet, itself a child of the driver; if Ray
    # re-parented them, look everywhere in this session.
    for proc in psutil.process_iter(["cmdline"]):
        named = "ray::LearnerRank" in " ".join(proc.info["cmdline"] or [])
        if named and os.getsid(proc.pid) == os.getsid(job.pid):
            return proc
    return None


def test_a_killed_learner_rank_is_rebuilt_from_the_last_checkpoint(tmp_path: Path) -> None:
    run_dir = tmp_path / "quick"
    first = run_dir / "checkpoints" / "update-000001" / "COMPLETE.json"
    log_path = tmp_path / "job.log"
    with log_path.open("w") as log:
        job = subprocess.Popen(
            quick_demo_args(tmp_path, "rl.updates=3", "evaluation.every_k_updates=1"),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            victim = None
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while job.poll() is None and time.monotonic() < deadline:
                if first.is_file():
                    victim = _rank_process(job)
                    if victim is not None:
                        victim.send_signal(signal.SIGKILL)
                        break
                time.sleep(0.05)
            assert victim is not None, "no learner rank found after the first checkpoint"
            job.wait(timeout=JOB_TIMEOUT_S)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
    output = log_path.read_text()
    assert job.returncode == 0, output[-4000:]
    assert "an actor died" in output and "starting again from update-000001" in output

    checkpoints = run_dir / "checkpoints"
    state = {
        u: json.loads((checkpoints / f"update-00000{u}" / "trainer_state.json").read_text())
        for u in (1, 3)
    }
    assert state[3]["policy_version"] == 3
    # The final lineage: update 1 from before the kill, then updates 2 and 3 as last played.
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    last = {r["step"]: r for r in rows if "rollout/turns_mean" in r}
    turns = {
        u: round(last[u]["rollout/turns_mean"] * last[u]["rollout/episodes_delta"]) for u in (2, 3)
    }
    assert state[3]["consumed_samples"] == state[1]["consumed_samples"] + turns[2] + turns[3]
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points if p["stage"] == "rl"] == [1, 2, 3]
