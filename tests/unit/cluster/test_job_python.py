"""Choosing the job's Python from a preflight report, and the preflight script itself run the
way Ray runs it (a shell under a process whose ancestor is a raylet-like worker command)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cluster.job_python import (
    MARK,
    Candidate,
    NoUsablePython,
    choose_python,
    parse_report,
    preflight_entrypoint,
)

RAY_OK = Candidate("ray", "/env/bin/python", "3.11.7", ())
PATH_BARE = Candidate("path", "/usr/bin/python3", "3.10.12", ("torch", "gymnasium"))


def test_ray_python_wins_over_path_and_given_wins_over_both() -> None:
    assert choose_python([PATH_BARE, RAY_OK]) == "/env/bin/python"
    given = Candidate("given", "/opt/py", "3.11.9", ())
    assert choose_python([RAY_OK, given], "/opt/py") == "/opt/py"


def test_no_usable_python_names_every_candidate_and_the_fix() -> None:
    bare_ray = Candidate("ray", "/usr/bin/python3", "3.10.12", ("torch",))
    with pytest.raises(NoUsablePython) as err:
        choose_python([bare_ray, PATH_BARE])
    text = str(err.value)
    assert "the Python Ray runs on (/usr/bin/python3, Python 3.10.12) lacks torch" in text
    assert "PATH's python (/usr/bin/python3, Python 3.10.12) lacks torch, gymnasium" in text
    assert "--python PATH" in text
    with pytest.raises(NoUsablePython, match=r"--python \(/nope\) does not run"):
        choose_python([Candidate("given", "/nope", "", ()), RAY_OK], "/nope")


def test_report_lines_are_read_among_other_log_lines() -> None:
    log = "\n".join(
        [
            "Running entrypoint for job x",
            f"{MARK} ray /env/bin/python 3.11.7 -",
            f"{MARK} path /usr/bin/python3 - -",
            f"{MARK} broken line",
        ]
    )
    assert parse_report(log) == [RAY_OK, Candidate("path", "/usr/bin/python3", "", ())]


def test_the_script_finds_the_worker_command_python_of_an_ancestor(tmp_path) -> None:
    # A stand-in for the raylet: a process whose argv carries --python_worker_command (the
    # raylet is a C++ binary; the walk only reads /proc cmdline and status).
    script = preflight_entrypoint("/nonexistent/python")
    parent = (
        "import subprocess, sys; "
        "r = subprocess.run(['bash', '-c', sys.argv[1]], capture_output=True, text=True); "
        "print(r.stdout)"
    )
    worker_command = f"--python_worker_command={sys.executable} default_worker.py"
    out = subprocess.run(
        [sys.executable, "-c", parent, script, worker_command],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = {c.source: c for c in parse_report(out)}
    assert found["given"] == Candidate("given", "/nonexistent/python", "", ())
    assert found["ray"].path == sys.executable and found["ray"].usable
    assert choose_python(list(found.values())) == sys.executable
