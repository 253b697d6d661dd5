"""`submit_when_agent_ready` asks again while the cluster has no job agent yet, never starts a
job twice, and passes every other refusal straight through.

A stand-in client is used here (and only here) because the fault, a head node whose dashboard
answers before its job agent registers, is a race that a test cannot cause on demand; the
real submission path runs against a real head node in tests/integration/test_job_submit.py.
"""

from __future__ import annotations

import re

import pytest

from cluster.jobs import NO_AGENT_ANSWER, submit_when_agent_ready

NO_AGENT = RuntimeError(f"Request failed with status code 500: {NO_AGENT_ANSWER} to submit job")


class ScriptedClient:
    """Answers each submit_job call with the next scripted outcome (an exception or 'ok')."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict] = []

    def submit_job(self, **kwargs) -> str:
        self.calls.append(kwargs)
        outcome = self.outcomes.pop(0)
        if outcome == "duplicate":
            raise RuntimeError(
                "Request failed with status code 400: Job with submission_id "
                f"{kwargs['submission_id']} already exists. Please use a different one."
            )
        if isinstance(outcome, Exception):
            raise outcome
        return kwargs["submission_id"]


def test_retries_until_the_agent_is_up_with_one_submission_id() -> None:
    client = ScriptedClient([NO_AGENT, NO_AGENT, "ok"])
    job_id = submit_when_agent_ready(client, "python -m x", {}, wait_s=5, pause_s=0)
    assert len(client.calls) == 3
    assert {c["submission_id"] for c in client.calls} == {job_id}
    assert re.fullmatch(r"veriray_[0-9a-f]{16}", job_id)


def test_a_retry_refused_as_duplicate_means_the_first_attempt_landed() -> None:
    client = ScriptedClient([NO_AGENT, "duplicate"])
    job_id = submit_when_agent_ready(client, "python -m x", {}, wait_s=5, pause_s=0)
    assert job_id == client.calls[0]["submission_id"]


def test_a_first_attempt_refused_as_duplicate_is_an_error() -> None:
    client = ScriptedClient(["duplicate"])
    with pytest.raises(RuntimeError, match="already exists"):
        submit_when_agent_ready(client, "python -m x", {}, wait_s=5, pause_s=0)


def test_other_refusals_are_not_retried() -> None:
    client = ScriptedClient([RuntimeError("Request failed with status code 400: bad runtime_env")])
    with pytest.raises(RuntimeError, match="bad runtime_env"):
        submit_when_agent_ready(client, "python -m x", {}, wait_s=5, pause_s=0)
    assert len(client.calls) == 1


def test_gives_up_after_the_wait_naming_what_to_check() -> None:
    client = ScriptedClient([NO_AGENT] * 100)
    expected = r"job agent did not come up within 0 s.*dashboard_agent"
    with pytest.raises(RuntimeError, match=expected):
        submit_when_agent_ready(client, "python -m x", {}, wait_s=0.0, pause_s=0.01)
    assert len(client.calls) == 1


def test_the_entrypoint_keeps_each_override_one_literal_argument() -> None:
    import shlex

    from cluster.jobs import job_entrypoint

    overrides = ["task.virl.data_dir=/data/my routes", "name=x;rm -rf ~", "a=$(whoami)"]
    entry = job_entrypoint("configs/cpu/quick.yaml", overrides)
    assert shlex.split(entry) == [
        "python", "-m", "cluster.cli", "run", "configs/cpu/quick.yaml", "ray.address=auto",
        *overrides,
    ]  # fmt: skip
