"""What every benchmark shares: the machine description, JSON/PNG writing, one-core pinning.

Every benchmark writes one JSON file (``benchmark``, ``machine``, ``when``, its settings and
``results``) and one or more PNGs beside it; ``benchmarks/run_all.py`` reads the JSON files
into ``SUMMARY.md``. Ratios are always taken between numbers measured in the same process
run, on the same machine, with the same model and task.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

RESULTS_DIR = Path("benchmarks/results")
# How long a finished side's processes may take to exit (Ray workers see their raylet go).
QUIET_WAIT_S = 60


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (falls back to the architecture)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine a number was measured on, and how busy it was when the benchmark started
    (the load average matters: the cores here may be shared with other jobs)."""
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = float("nan")
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "loadavg_1m_at_start": round(load[0], 2),
    }


def machine_line(info: dict[str, Any]) -> str:
    return f"{info['cpu']}, {info['logical_cpus']} logical CPUs, {info['memory_gib']} GiB"


def write_json(out: Path, name: str, results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Write ``{"benchmark", "machine", "when", **extra, "results"}`` to ``out``; return it."""
    report = {
        "benchmark": name,
        "machine": machine_info(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        **extra,
        "results": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=float) + "\n")
    print(f"wrote {out}")
    return report


def write_results(
    out: Path, name: str, results: dict[str, float], digits: int, **extra: Any
) -> dict[str, Any]:
    """Write flat ``results`` (rounded) with the machine's description to ``out``; print them."""
    rounded = {k: round(v, digits) for k, v in results.items()}
    for key, value in rounded.items():
        print(f"{key:28s} {value:>14,.{digits}f}")
    return write_json(out, name, rounded, **extra)


def exit_on_sigterm() -> None:
    """Turn SIGTERM (run_all's time limit) into SystemExit, so ``finally`` blocks shut Ray
    and the engines down instead of leaving them running."""

    def handler(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def pin_one_core() -> dict[str, Any]:
    """Run the rest of this process on one core with one thread (the "on one core" numbers).

    Pins the process to the first core it may use and caps the BLAS/OpenMP/torch thread
    pools at 1. Returns what was set, for the JSON."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    return {"core": core, "threads": 1}


def bar_png(
    out_png: Path,
    labels: Sequence[str],
    values: Sequence[float],
    ylabel: str,
    title: str,
    log: bool = False,
    colors: Sequence[str] | None = None,
    fmt: str = "{:,.0f}",
) -> None:
    """A labelled bar chart (one bar per value, its value printed on top)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(labels) + 2), 3.6))
    ax.bar(range(len(labels)), values, color=colors or "#4c72b0")
    for i, v in enumerate(values):
        ax.text(i, v, fmt.format(v), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, fontsize=8, rotation=15 if len(labels) > 4 else 0)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    save_png(fig, out_png)


def save_png(fig: Any, out_png: Path) -> None:
    """Lay out, write (creating the folder) and close a benchmark figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
    print(f"wrote {out_png}")


def become_subreaper() -> bool:
    """Make this process the child subreaper (Linux): processes orphaned by a side (Ray
    workers whose raylet died, an engine whose parent crashed) are re-parented here, so
    ``ensure_quiet`` sees them instead of losing them to init."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _alive_descendants() -> list[Any]:
    import psutil

    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def ensure_quiet(before: str) -> None:
    """Fail loudly unless Ray is shut down and no process started by this one is alive
    (waits up to QUIET_WAIT_S for them to exit): one benchmark side must not run beside the
    leftovers of the other."""
    import ray

    if ray.is_initialized():
        raise RuntimeError(f"Ray is still initialized before the {before} run")
    deadline = time.monotonic() + QUIET_WAIT_S
    while (left := _alive_descendants()) and time.monotonic() < deadline:
        time.sleep(1.0)
    if left:
        names = ", ".join(f"{p.pid} {p.name()}" for p in left[:10])
        raise RuntimeError(f"before the {before} run, {len(left)} process(es) still alive: {names}")
