"""`veriray submit` runs the main job on a separately started `ray start --head` cluster
(token auth on), and `veriray status` lists it; bad addresses and tokens fail fast."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.ray_auth import ensure_token_file
from common.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
HEAD_START_TIMEOUT_S = 120
JOB_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def head_cluster(tmp_path_factory):
    """A real head node in its own process group, with its own ports and token."""
    tmp = tmp_path_factory.mktemp("head")
    token = ensure_token_file(tmp / "token")
    dash = free_port()
    # As the docs say: the environment's own `ray` binary, the environment NOT activated, so
    # `python` on this PATH is not veriray's (the job must still find the right one).
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = os.environ | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "PATH": path}
    env.pop("RAY_ADDRESS", None)
    ray_bin = str(Path(sys.executable).parent / "ray")
    args = [
        ray_bin,
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        "--disable-usage-stats",
        f"--port={free_port()}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dash}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        "--node-manager-port=0",
        "--object-manager-port=0",
    ]
    proc = subprocess.Popen(
        args,
        env=env,
        start_new_session=True,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{dash}"
    deadline = time.monotonic() + HEAD_START_TIMEOUT_S
    from cluster.jobs import ClusterUnreachable, JobTarget, check_reachable

    while True:
        try:
            check_reachable(JobTarget(url, str(token)))
            break
        except ClusterUnreachable:
            if time.monotonic() > deadline or proc.poll() is not None:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail("ray start --head did not come up")
            time.sleep(1)
    yield url, token, env
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def _veriray(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_submit_runs_the_job_and_status_lists_it(head_cluster, tmp_path: Path) -> None:
    url, token, env = head_cluster
    out = tmp_path / "my runs"  # an override with a space reaches the job as one argument
    result = _veriray(
        [
            "submit",
            "configs/cpu/quick.yaml",
            "episodes=2",
            "sft.enabled=false",
            "rl.enabled=false",
            f"output_dir={out}",
            "--address",
            url,
            "--token-file",
            str(token),
            "--wait",
            "--timeout",
            str(JOB_TIMEOUT_S),
        ],
        env,
        JOB_TIMEOUT_S + 60,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "SUCCEEDED" in result.stdout
    assert f"job python: {sys.executable}" in result.stdout  # Ray's own, not PATH's
    assert (out / "quick" / "report.json").is_file()  # same machine: the path is shared
    listed = _veriray(["status", "--address", url, "--token-file", str(token)], env, 60)
    assert listed.returncode == 0 and "SUCCEEDED" in listed.stdout


def test_wrong_token_and_wrong_address_fail_fast(head_cluster, tmp_path: Path) -> None:
    url, _, env = head_cluster
    bad = tmp_path / "bad"
    bad.write_text("0" * 64)
    result = _veriray(["status", "--address", url, "--token-file", str(bad)], env, 60)
    assert result.returncode == 3 and "refused the auth token" in result.stderr
    result = _veriray(["status", "--address", f"http://127.0.0.1:{free_port()}"], env, 60)
    assert result.returncode == 3 and "no Ray dashboard at" in result.stderr


def test_bad_config_is_refused_before_submitting(head_cluster) -> None:
    url, token, env = head_cluster
    result = _veriray(
        [
            "submit",
            "configs/cpu/quick.yaml",
            "rollout.num_workers=0",
            "--address",
            url,
            "--token-file",
            str(token),
        ],
        env,
        60,
    )
    assert result.returncode == 2
    assert "rollout.num_workers: must be >= 1" in result.stderr


def test_a_python_without_the_stack_is_refused_naming_every_candidate(head_cluster) -> None:
    url, token, env = head_cluster
    missing = "/nonexistent/veriray-env/bin/python"
    result = _veriray(
        ["submit", "configs/cpu/quick.yaml", "--address", url, "--token-file", str(token),
         "--python", missing],
        env,
        360,
    )  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert f"--python ({missing}) does not run" in result.stderr
    assert "Fix: install veriray's environment" in result.stderr
    assert "submitted" not in result.stdout  # nothing was started
