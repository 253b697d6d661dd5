"""Which Python a submitted job runs on, found on the cluster before the job is submitted.

Ray runs a job's entrypoint as a shell command with the head node's environment from when
`ray start` ran, so a bare ``python`` is whatever came first on that PATH: often not the
environment Ray itself runs from (``~/veriray-env/bin/ray start`` without activating it). So
``veriray submit`` first runs a tiny preflight job (a shell script, no Python needed) that
reports each candidate and what it lacks:

- ``given``: the ``--python PATH`` of the submit command, if any;
- ``ray``: the Python that runs Ray's own workers on the head node, read from the raylet's
  ``--python_worker_command`` (found by walking up from the job's process; Linux /proc);
- ``path``: ``python`` (or ``python3``) on the head node's PATH.

The job then runs on the given Python, else Ray's, else PATH's, whichever has veriray's stack;
with none, submit stops and names each candidate and what it lacks.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

MARK = "VERIRAY_PYTHON"
"""Prefix of the preflight's report lines (the rest of its log is Ray's)."""
REQUIRED_MODULES = ("ray", "torch", "transformers", "gymnasium", "pyarrow", "deepspeed", "yaml")
"""What the job's driver imports on the head node; any missing one fails it at once."""

_CHECK = (
    "import importlib.util as u, sys; "
    f"m = [n for n in {REQUIRED_MODULES!r} if u.find_spec(n) is None]; "
    "print(sys.version.split()[0], ','.join(m) or '-')"
)


@dataclass(frozen=True)
class Candidate:
    """One Python the preflight found on the head node."""

    source: str  # given | ray | path
    path: str
    version: str  # "" when it would not run
    missing: tuple[str, ...]

    @property
    def usable(self) -> bool:
        return bool(self.version) and not self.missing

    def describe(self) -> str:
        what = {"given": "--python", "ray": "the Python Ray runs on", "path": "PATH's python"}
        if not self.version:
            return f"{what[self.source]} ({self.path}) does not run"
        lacks = f" lacks {', '.join(self.missing)}" if self.missing else " has the stack"
        return f"{what[self.source]} ({self.path}, Python {self.version}){lacks}"


class NoUsablePython(RuntimeError):
    """No Python on the head node can run veriray's job driver."""


def preflight_entrypoint(given: str | None = None) -> str:
    """The preflight job's shell command: one ``MARK source path version missing`` line per
    candidate (version and missing are ``-`` when the candidate does not run)."""
    check = shlex.quote(_CHECK)
    lines = [
        "report() {",
        f'  out=$("$1" -c {check} 2>/dev/null | tail -n 1)',
        f'  echo "{MARK} $2 $1 ${{out:-- -}}"',
        "}",
    ]
    if given:
        lines.append(f"report {shlex.quote(given)} given")
    lines += [
        # Up from this shell to the raylet, whose worker command names Ray's Python.
        "pid=$PPID",
        'while [ -n "$pid" ] && [ "$pid" -gt 1 ]; do',
        "  cmd=$(tr '\\0' '\\n' < /proc/$pid/cmdline 2>/dev/null"
        " | sed -n 's/^--python_worker_command=//p' | head -n 1)",
        '  if [ -n "$cmd" ]; then report "${cmd%% *}" ray; break; fi',
        "  pid=$(awk '/^PPid:/{print $2}' /proc/$pid/status 2>/dev/null)",
        "done",
        "p=$(command -v python || command -v python3)",
        'if [ -n "$p" ]; then report "$p" path; fi',
        "true",
    ]
    return "\n".join(lines)


def parse_report(log: str) -> list[Candidate]:
    """The candidates of a preflight log, in the order reported."""
    out = []
    for line in log.splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] != MARK:
            continue
        _, source, path, version, missing = parts
        out.append(
            Candidate(
                source,
                path,
                "" if version == "-" else version,
                () if missing == "-" else tuple(missing.split(",")),
            )
        )
    return out


def choose_python(candidates: list[Candidate], given: str | None = None) -> str:
    """The Python the job runs on (see the module docstring), or NoUsablePython naming each
    candidate and what to do."""
    order = ("given",) if given else ("ray", "path")
    for source in order:
        for c in candidates:
            if c.source == source and c.usable:
                return c.path
    found = "; ".join(c.describe() for c in candidates) or "no Python at all"
    fix = (
        f"install veriray's environment at {given} on the head node, or drop --python"
        if given
        else "start Ray on every node from veriray's environment "
        "(e.g. ~/veriray-env/bin/ray start ...), or name that environment's Python on the "
        "head node with --python PATH"
    )
    raise NoUsablePython(f"the cluster has no Python to run the job: {found}. Fix: {fix}")
