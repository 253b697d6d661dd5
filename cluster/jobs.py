"""Job submission to a Ray cluster (``veriray submit``) and status (``veriray status``).

``submit`` wraps Ray's job API: the project folder is the job's working dir (the top-level
packages ship to every node with no install step), the runtime env carries veriray's settings,
and every request carries the cluster's auth token. The token itself never goes into the
runtime env or the logs: the job's driver runs on the cluster, which already has it.
"""

from __future__ import annotations

import logging
import shlex
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.job_python import choose_python, parse_report, preflight_entrypoint
from cluster.ray_auth import auth_headers
from common.paths import PROJECT_ROOT

log = logging.getLogger(__name__)

# Uploaded with the working dir? Never: environments, caches, outputs, VCS data.
WORKING_DIR_EXCLUDES = [
    ".venv",
    ".cache",
    "runs",
    ".git",
    "**/__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "benchmarks/results",
]
# Reaching the dashboard's job API should be instant; a longer wait means a wrong address.
CONNECT_TIMEOUT_S = 10
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
# The dashboard answers before the head node's job agent has registered; until it has, a
# submission waits 10 s server-side and then gets HTTP 500 "No available agent". On a busy
# machine the agent can take longer than that after `ray start --head`, so ask again.
NO_AGENT_ANSWER = "No available agent"
AGENT_WAIT_S = 120.0
AGENT_RETRY_PAUSE_S = 2.0
# The preflight job (a few shell lines) ends in seconds once the cluster has started it.
PREFLIGHT_TIMEOUT_S = 300.0


class ClusterUnreachable(RuntimeError):
    """The dashboard / job API did not answer (wrong address, cluster down, bad token)."""


@dataclass(frozen=True)
class JobTarget:
    address: str
    """Dashboard URL of the cluster, e.g. http://127.0.0.1:8265."""
    token_file: str | None = None
    """The cluster's auth token file (None: $RAY_AUTH_TOKEN or the project token)."""

    @property
    def url(self) -> str:
        return self.address if self.address.startswith("http") else f"http://{self.address}"


def check_reachable(target: JobTarget) -> None:
    """Fail fast, with what to fix, if the cluster's job API does not answer."""
    req = urllib.request.Request(
        f"{target.url}/api/version", headers=auth_headers(target.token_file)
    )
    try:
        with urllib.request.urlopen(req, timeout=CONNECT_TIMEOUT_S) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise ClusterUnreachable(
                f"{target.url} refused the auth token ({err.code}): pass the cluster's token "
                "with --token-file PATH or set RAY_AUTH_TOKEN"
            ) from err
        raise ClusterUnreachable(f"{target.url} answered HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ClusterUnreachable(
            f"no Ray dashboard at {target.url} ({err}): check --address (the dashboard "
            "address, default port 8265) and that the cluster is running"
        ) from err


def _client(target: JobTarget) -> Any:
    from ray.job_submission import JobSubmissionClient

    check_reachable(target)
    return JobSubmissionClient(target.url, headers=auth_headers(target.token_file))


def submit(
    target: JobTarget,
    config: str,
    overrides: list[str],
    working_dir: Path = PROJECT_ROOT,
    pip: list[str] | None = None,
    python: str | None = None,
) -> str:
    """Submit ``veriray run CONFIG overrides`` as a Ray job; return the job id.

    The job runs on the head node's Python that has veriray's stack (``python``, else the one
    Ray runs on, else PATH's), found by a preflight job first (cluster/job_python.py).
    """
    client = _client(target)
    interpreter = job_python(client, python)
    print(f"job python: {interpreter}", flush=True)
    runtime_env: dict[str, Any] = {
        "working_dir": str(working_dir),
        "excludes": WORKING_DIR_EXCLUDES,
        "env_vars": {"HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"},
    }
    if pip:
        runtime_env["pip"] = pip
    entrypoint = job_entrypoint(config, overrides, interpreter)
    return submit_when_agent_ready(client, entrypoint, runtime_env)


def job_python(client: Any, given: str | None = None) -> str:
    """Run the preflight job through ``client`` and pick the Python the real job runs on
    (NoUsablePython, naming every candidate, when none has the stack)."""
    job_id = submit_when_agent_ready(client, preflight_entrypoint(given), {})
    deadline = time.monotonic() + PREFLIGHT_TIMEOUT_S
    while str(client.get_job_status(job_id).value) not in TERMINAL:
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"the preflight job {job_id} did not finish within {PREFLIGHT_TIMEOUT_S:.0f} s: "
                "is the cluster starting jobs? (see its dashboard)"
            )
        time.sleep(0.5)
    return choose_python(parse_report(client.get_job_logs(job_id)), given)


def job_entrypoint(config: str, overrides: list[str], python: str = "python") -> str:
    """The job's shell command. Quoted word by word (shlex.join): an override with spaces or
    shell characters (``data_dir=/my data``, ``a=$(x)``) reaches the run as one literal argument."""
    return shlex.join([python, "-m", "cluster.cli", "run", config, "ray.address=auto", *overrides])


def submit_when_agent_ready(
    client: Any,
    entrypoint: str,
    runtime_env: dict[str, Any],
    wait_s: float = AGENT_WAIT_S,
    pause_s: float = AGENT_RETRY_PAUSE_S,
) -> str:
    """Submit through ``client`` (a ``JobSubmissionClient``), asking again while the cluster
    says its job agent is not up yet; return the job id.

    The id is chosen here, once, so a retry can never start the job twice: if an earlier
    attempt did reach the agent, the retry is refused as a duplicate id and that job stands.
    """
    submission_id = f"veriray_{uuid.uuid4().hex[:16]}"
    deadline = time.monotonic() + wait_s
    retried = False
    while True:
        try:
            return client.submit_job(
                entrypoint=entrypoint, runtime_env=runtime_env, submission_id=submission_id
            )
        except RuntimeError as err:
            answer = str(err)
            if retried and "already exists" in answer and submission_id in answer:
                return submission_id
            if NO_AGENT_ANSWER not in answer:
                raise
            if time.monotonic() + pause_s > deadline:
                raise RuntimeError(
                    f"the cluster's job agent did not come up within {wait_s:.0f} s "
                    f"({answer}): check the head node's dashboard_agent.log, or retry once "
                    "the node shows as alive on the dashboard"
                ) from err
            log.warning("cluster has no job agent yet; submitting again in %.0f s", pause_s)
            retried = True
            time.sleep(pause_s)


def wait(target: JobTarget, job_id: str, timeout_s: float, poll_s: float = 2.0) -> str:
    """Poll until the job ends (or time runs out); return its final status."""
    client = _client(target)
    deadline = time.monotonic() + timeout_s
    while True:
        status = str(client.get_job_status(job_id).value)
        if status in TERMINAL or time.monotonic() > deadline:
            return status
        time.sleep(poll_s)


def logs(target: JobTarget, job_id: str) -> str:
    return _client(target).get_job_logs(job_id)


def status(target: JobTarget) -> list[dict[str, Any]]:
    """veriray's jobs on the cluster: id, status, entrypoint, start time."""
    jobs = _client(target).list_jobs()
    return [
        {
            "job_id": j.submission_id or j.job_id,
            "status": str(j.status.value),
            "entrypoint": j.entrypoint,
            "start_time": j.start_time,
        }
        for j in jobs
        if "cluster.cli run" in (j.entrypoint or "")
    ]
