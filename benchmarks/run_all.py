"""Run every benchmark, one subprocess each, and write SUMMARY.md with the ratios vs targets.

Each benchmark writes ``<out-dir>/<name>.json`` and its PNG(s); its whole output goes to
``<out-dir>/logs/<name>.log`` and its own progress lines are echoed here. A benchmark that
fails or runs past its time limit is recorded (``<out-dir>/run_all.json``, SUMMARY.md) and the
next one starts. The full set took 28.9 minutes on an idle 2-core machine (2026-12-05), inside
the 30-minute budget: a few points are left out here and measured by each benchmark on its
own (docs/performance.md, "Time budget"). ``--smoke`` runs tiny sizes
(mostly the tiny model) in a few minutes, into ``benchmarks/results/smoke/``, so that the full
results are never overwritten by a smoke run.

Usage (from the repository root):
  python -m benchmarks.run_all                   # everything (make bench)
  python -m benchmarks.run_all --smoke           # quick check of every benchmark
  python -m benchmarks.run_all --only rollout e2e_trl
  python -m benchmarks.run_all --summary-only    # rebuild SUMMARY.md from the JSON files
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.bench_e2e_trl import ensure_trl_env
from benchmarks.common import RESULTS_DIR, machine_info, machine_line
from benchmarks.summary import write_summary

REPO = Path(__file__).resolve().parent.parent
# After a benchmark's time limit: how long it gets to shut Ray down before it is killed.
KILL_GRACE_S = 30


@dataclass
class Bench:
    """A benchmark module and its arguments at full and smoke size. The time limits are a
    safety net against a hang (typical full times on 2 idle cores are a third of them);
    starting Ray, DeepSpeed and vLLM engines is much slower on a busy machine."""

    name: str
    module: str
    full: list[str] = field(default_factory=list)
    smoke: list[str] = field(default_factory=list)
    timeout_s: int = 600
    smoke_timeout_s: int = 300


def _a(args: str) -> list[str]:
    return args.split()


BENCHES = [
    Bench("generalpoints", "benchmarks.bench_generalpoints", [], _a("--scale 0.2"), 120, 60),
    Bench("virl", "benchmarks.bench_virl", [], _a("--scale 0.2"), 120, 60),
    Bench(
        "learner",
        "benchmarks.bench_learner",
        _a("--models tiny-lm smollm2-135m --dtypes autocast --steps 1"),
        _a("--models tiny-lm --dtypes float32 autocast --steps 1")
        + _a("--rl-update-models tiny-lm --rl-episodes 8"),
        900,
        300,
    ),
    Bench(
        "rollout",
        "benchmarks.bench_rollout",
        _a("--models tiny-lm smollm2-135m --episodes 96 --baseline-episodes tiny-lm=24 *=6")
        + _a("--workers 1 --layout-prompts 32"),
        _a("--models tiny-lm --episodes 32 --baseline-episodes 2 --layout-prompts 8"),
        900,
        480,
    ),
    Bench(
        "weight_sync",
        "benchmarks.bench_weight_sync",
        _a("--models tiny-lm smollm2-135m --workers 1 2 --repeats 3"),
        _a("--models tiny-lm --repeats 2"),
        600,
        360,
    ),
    Bench(
        "e2e_trl",
        "benchmarks.bench_e2e_trl",
        _a("--model smollm2-135m --episodes-per-update 8 --updates 5 --runs 3"),
        _a("--model tiny-lm --episodes-per-update 8 --updates 1 --runs 2 --max-new-tokens 32"),
        1800,
        600,
    ),
    Bench(
        "overhead",
        "benchmarks.bench_overhead",
        _a("--models smollm2-135m --updates 3 --episodes-per-update 8"),
        _a("--models tiny-lm --updates 3 --episodes-per-update 8"),
        900,
        420,
    ),
    Bench(
        "scaling",
        "benchmarks.bench_scaling",
        _a("--models tiny-lm --episodes-per-update 16"),  # SmolLM2 point: bench_scaling alone
        _a("--models tiny-lm --episodes-per-update 8 --workers 1 --env-actors 1 2"),
        900,
        480,
    ),
]


def _echo(line: str) -> bool:
    """Which lines of a benchmark's output to show live (its own progress, not actor logs)."""
    noisy = ("pid=", "WARNING", "Warning", "warn(", "Loading weights", "it/s]")
    return bool(line.strip()) and not any(n in line for n in noisy)


def run_one(b: Bench, smoke: bool, out_dir: Path) -> dict:
    args = (b.smoke if smoke else b.full) + ["--out", str(out_dir / f"{b.name}.json")]
    timeout = b.smoke_timeout_s if smoke else b.timeout_s
    log_path = out_dir / "logs" / f"{b.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", b.module, *args]
    start = time.perf_counter()
    status = "ok"
    with log_path.open("w") as log:
        log.write(" ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # its Ray and vLLM children end with it on a timeout
        )
        assert proc.stdout is not None
        timed_out = threading.Event()

        def kill() -> None:
            # SIGTERM first: benchmarks turn it into SystemExit, so Ray and the engines are
            # shut down by their own finally blocks; whatever is left is killed after that.
            timed_out.set()
            for sig, grace in ((signal.SIGTERM, KILL_GRACE_S), (signal.SIGKILL, 0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=grace)

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        tail: list[str] = []
        try:
            for line in proc.stdout:
                log.write(line)
                tail = [*tail, line.rstrip()][-20:]
                if _echo(line):
                    print(f"    {line.rstrip()[:160]}", flush=True)
            proc.wait()
        finally:
            watchdog.cancel()
        if timed_out.is_set():
            status = f"timed out after {timeout} s"
    wall = time.perf_counter() - start
    if status == "ok" and proc.returncode != 0:
        status = f"failed (exit {proc.returncode}): " + " | ".join(tail[-3:])
    return {"status": status, "wall_s": round(wall, 1), "args": args, "log": str(log_path)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few minutes")
    parser.add_argument("--only", nargs="+", choices=[b.name for b in BENCHES])
    parser.add_argument("--skip", nargs="+", default=[], choices=[b.name for b in BENCHES])
    parser.add_argument("--out-dir", type=Path, default=None)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    out_dir = args.out_dir or (RESULTS_DIR / "smoke" if args.smoke else RESULTS_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    status_path = out_dir / "run_all.json"
    previous = json.loads(status_path.read_text()) if status_path.is_file() else {}
    statuses: dict = previous.get("benchmarks", {})
    if not args.summary_only:
        todo = [b for b in BENCHES if (not args.only or b.name in args.only)]
        todo = [b for b in todo if b.name not in args.skip]
        machine = machine_info()
        print(f"machine: {machine_line(machine)} (load {machine['loadavg_1m_at_start']})")
        print(f"results: {out_dir}{' (smoke sizes)' if args.smoke else ''}")
        t0 = time.perf_counter()
        if any(b.name == "e2e_trl" for b in todo):
            print("TRL's own environment (benchmarks/setup_trl.sh) ...", flush=True)
            error = ensure_trl_env()  # outside the e2e benchmark's time limit
            print(f"    {error or 'ready'}", flush=True)
        for i, b in enumerate(todo, 1):
            elapsed = (time.perf_counter() - t0) / 60
            print(f"[{i}/{len(todo)}] {b.name} (t+{elapsed:.1f} min) ...", flush=True)
            statuses[b.name] = run_one(b, args.smoke, out_dir) | {
                "when": time.strftime("%Y-%m-%d %H:%M:%S")
            }
            s = statuses[b.name]
            print(f"[{i}/{len(todo)}] {b.name}: {s['status']} in {s['wall_s']:.0f} s", flush=True)
        total = time.perf_counter() - t0
        print(f"all done in {total / 60:.1f} min")
        status_path.write_text(
            json.dumps(
                {
                    "smoke": args.smoke,
                    "machine": machine,
                    "total_wall_s": round(total, 1),
                    "benchmarks": statuses,
                },
                indent=2,
            )
            + "\n"
        )
    summary = write_summary(out_dir, statuses, smoke=args.smoke or "smoke" in out_dir.parts)
    print(f"wrote {summary}")
    print(summary.read_text())


if __name__ == "__main__":
    main()
