"""A driver killed (SIGKILL) in the middle of a checkpoint save loses nothing it had finished:
`--resume` skips the partial save, says so, starts from the newest complete checkpoint and
replays the rest, with every evaluation point exactly once.

The kill waits for an event, not a timer: the first partial checkpoint folder appearing on
disk. The quick run saves after every update, so there are three chances to see one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT, quick_demo_args


def _args(out: Path, *extra: str) -> list[str]:
    return quick_demo_args(out, "rl.updates=3", "evaluation.every_k_updates=1", *extra)


def _kill_inside_a_save(proc: subprocess.Popen, checkpoints: Path) -> Path | None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while proc.poll() is None and time.monotonic() < deadline:
        partial = next(iter(checkpoints.glob(".update-*.partial-*")), None)
        if partial is not None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and the cluster it started
            proc.wait()
            return partial
        time.sleep(0.005)
    return None


def test_sigkill_during_a_checkpoint_save_then_resume(tmp_path: Path) -> None:
    run_dir = tmp_path / "quick"
    checkpoints = run_dir / "checkpoints"  # one seed: the arm is the run folder
    proc = subprocess.Popen(
        _args(tmp_path),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        partial = _kill_inside_a_save(proc, checkpoints)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert partial is not None, "the run ended before any checkpoint save was seen in flight"
    assert partial.exists()  # killed inside the save: the partial folder was left behind
    complete_before = sorted(p.name for p in checkpoints.glob("update-*"))

    result = subprocess.run(
        _args(tmp_path, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=JOB_TIMEOUT_S
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert f"skipped {checkpoints}/{partial.name}: a save that did not finish" in result.stdout
    assert sorted(p.name for p in checkpoints.glob("update-*")) == [
        "update-000001",
        "update-000002",
        "update-000003",
    ]
    assert set(complete_before) <= {"update-000001", "update-000002"}
    assert not partial.exists()  # removed by the next complete save
    points = [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]
    assert [p["step"] for p in points if p["stage"] == "rl"] == [1, 2, 3]  # each exactly once
    state = json.loads((checkpoints / "update-000003" / "trainer_state.json").read_text())
    assert state["policy_version"] == 3
