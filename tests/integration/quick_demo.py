"""The command line of a small `veriray demo --quick` run, shared by the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from common.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_S = 900


def quick_demo_args(out: Path, *extra: str) -> list[str]:
    """`veriray demo --quick` at test size into ``out``: one seed, a checkpoint per update."""
    return [
        sys.executable,
        "-m",
        "cluster.cli",
        "demo",
        "--quick",
        "episodes=4",
        "rl.episodes_per_update=8",
        "rl.checkpoint_every=1",
        "study.seeds=1",  # quick.yaml runs 2 seeds; one is enough here (--seeds N overrides)
        f"output_dir={out}",
        f"ray.dashboard_port={free_port()}",
        *extra,
    ]


def actor_process(job: subprocess.Popen, title: str) -> psutil.Process | None:
    """The process of the job's Ray actor whose process title holds ``title`` (e.g.
    "ray::LearnerRank"); Ray may re-parent workers, so it looks through this session."""
    for proc in psutil.process_iter(["cmdline"]):
        named = title in " ".join(proc.info["cmdline"] or [])
        if named and os.getsid(proc.pid) == os.getsid(job.pid):
            return proc
    return None


def run_and_kill_on_event(
    args: list[str], log_path: Path, event: Callable[[], bool], title: str
) -> tuple[int, str]:
    """Run ``args`` (a quick demo) and SIGKILL the process of the actor named ``title`` as
    soon as ``event()`` is true; return the job's exit code and output."""
    with log_path.open("w") as log:
        job = subprocess.Popen(
            args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            victim = None
            deadline = time.monotonic() + JOB_TIMEOUT_S
            while job.poll() is None and time.monotonic() < deadline:
                if event():
                    victim = actor_process(job, title)
                    if victim is not None:
                        victim.send_signal(signal.SIGKILL)
                        break
                time.sleep(0.02)
            assert victim is not None, f"no {title} process found once the event happened"
            job.wait(timeout=JOB_TIMEOUT_S)
        finally:
            if job.poll() is None:
                os.killpg(job.pid, signal.SIGKILL)
    return job.returncode, log_path.read_text()
