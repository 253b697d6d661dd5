"""Weight sync: learner -> rollout engines, against a plain memory copy of the same bytes.

veriray's CPU transport (learner/weight_sync.py, SharedMemoryTransport) is timed exactly as the
controller calls it after every update: the learner group writes the policy's tensors into a
safetensors file in /dev/shm, in place (``export``; learner/engine_weights.py), then every
rollout engine reloads its weights in place from there (``load``: vLLM ``reload_weights`` +
prefix-cache reset, all engines in parallel).

References, measured in this process on the same number of bytes:
  memcpy          a plain copy into a fresh buffer (torch ``clone`` of a byte tensor)
  memcpy_warm     a copy into an already-touched buffer (no page faults)
  shm_write       safetensors ``save_file`` of the policy's tensors to /dev/shm
  shm_read        safetensors ``load_file`` of the exported folder
So export - shm_write is the learner's own cost (gather, Ray call) and load - shm_read is the
engine's (vLLM's weight loader and repacking).

Headline: for SmolLM2-135M sync / memcpy (target <= 2.5x); for tiny-lm (1.6 MB, copied
in well under a millisecond) the sync is all fixed cost (Ray calls, vLLM's reload path), so
its headline is that cost in milliseconds, with no ratio target. Medians over ``--repeats``
syncs after one warm-up sync.

Usage (from the repository root):
  python -m benchmarks.bench_weight_sync [--models tiny-lm smollm2-135m] [--workers 1 2]
      [--repeats 5] [--out benchmarks/results/weight_sync.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import exit_on_sigterm, save_png, write_json
from benchmarks.rl_loop import LoopSpec, RLBench

DEFAULT_OUT = Path("benchmarks/results/weight_sync.json")
SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
# sync / memcpy targets by model; models not listed report their fixed cost in ms instead.
TARGET_MAX_RATIO = {"smollm2-135m": 2.5}


def _median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def references(folder: Path, nbytes: int, repeats: int) -> dict[str, float]:
    """Copies of the same bytes without veriray: memcpy (fresh / warm), shm write and read."""
    import torch
    from safetensors.torch import load_file, save_file

    src = torch.ones(nbytes, dtype=torch.uint8)
    dst = torch.empty_like(src)
    dst.zero_()
    files = sorted(folder.glob("*.safetensors"))
    tensors = {k: v for f in files for k, v in load_file(str(f)).items()}
    out = SHM / f"veriray-bench-ref-{time.monotonic_ns()}.safetensors"
    try:
        write = _median_time(lambda: save_file(tensors, str(out)), repeats)
        read = _median_time(lambda: [load_file(str(f)) for f in files], repeats)
    finally:
        out.unlink(missing_ok=True)
    return {
        "memcpy_s": _median_time(lambda: src.clone(), repeats),
        "memcpy_warm_s": _median_time(lambda: dst.copy_(src), repeats),
        "shm_write_s": write,
        "shm_read_s": read,
    }


def bench_model(model: str, workers: list[int], repeats: int, workdir: Path) -> dict:
    spec = LoopSpec(model=model, workers=workers[0], name=f"bench-sync-{model}")
    bench = RLBench(spec, workdir)
    out: dict[str, dict] = {}
    version = 1000
    try:
        for n in workers:
            if n != bench.spec.workers:
                bench.start_fleet(workers=n)
            runs = []
            for _ in range(repeats + 1):  # the first one warms up
                version += 1
                runs.append(bench.transport.sync(version))
            runs = runs[1:]
            folder = bench.transport.latest
            assert folder is not None
            nbytes = int(runs[-1]["perf/weight_sync_bytes"])
            med = {
                k.split("/")[1] + "_s": statistics.median(r[k] for r in runs)
                for k in ("timing/weight_sync", "timing/weight_export", "timing/weight_load")
            }
            ref = references(folder, nbytes, repeats)
            out[f"x{n}"] = {
                "bytes": nbytes,
                **med,
                **ref,
                "sync_over_memcpy": med["weight_sync_s"] / ref["memcpy_s"],
                # What the sync costs beyond copying its bytes once: all of it for tiny-lm.
                "sync_ms": 1000 * med["weight_sync_s"],
                "fixed_cost_ms": 1000 * (med["weight_sync_s"] - ref["memcpy_s"]),
                "sync_gb_per_s": nbytes / med["weight_sync_s"] / 1e9,
                "memcpy_gb_per_s": nbytes / ref["memcpy_s"] / 1e9,
                "export_over_shm_write": med["weight_export_s"] / ref["shm_write_s"],
                "load_over_shm_read": med["weight_load_s"] / ref["shm_read_s"],
            }
            print(model, f"x{n}", json.dumps(out[f"x{n}"], indent=1))
    finally:
        bench.close()
    return out


def plot(results: dict, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(m, f"{m} {w}", r) for m, per in results.items() for w, r in per.items()]
    fig, ax = plt.subplots(figsize=(8, 0.9 * len(rows) * 2 + 1.2))
    labels, y = [], 0
    for model, name, r in rows:
        ax.barh(y, r["weight_export_s"], color="#4c72b0", label="export (learner -> /dev/shm)")
        ax.barh(
            y, r["weight_load_s"], left=r["weight_export_s"], color="#dd8452",
            label="load (engines reload_weights)",
        )  # fmt: skip
        note = f"{r['sync_over_memcpy']:.1f}x memcpy" if model in TARGET_MAX_RATIO else ""
        ax.text(r["weight_sync_s"], y, f" {note or str(round(r['sync_ms'])) + ' ms'}", va="center")
        ax.barh(y + 1, r["memcpy_s"], color="#999999", label="plain memcpy, same bytes")
        labels += [f"{name}: sync ({r['bytes'] / 2**20:.0f} MiB)", f"{name}: memcpy"]
        y += 2
    ax.set_xlim(0, 1.35 * max(r["weight_sync_s"] for _, _, r in rows))
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    handles, names = ax.get_legend_handles_labels()
    uniq = dict(zip(names, handles, strict=True))
    ax.legend(uniq.values(), uniq.keys(), fontsize=8, loc="lower right")
    ax.set_title("weight sync learner -> rollout engines vs memcpy of the same bytes", fontsize=10)
    save_png(fig, out_png)


def main() -> None:
    from common.paths import set_build_env

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny-lm", "smollm2-135m"])
    parser.add_argument("--workers", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    exit_on_sigterm()
    set_build_env()
    results = {}
    with tempfile.TemporaryDirectory(prefix="veriray-sync-") as tmp:
        for model in args.models:
            results[model] = bench_model(model, args.workers, args.repeats, Path(tmp))
    headline = {
        (f"{m}/{w}/sync_over_memcpy" if m in TARGET_MAX_RATIO else f"{m}/{w}/fixed_cost_ms"): (
            r["sync_over_memcpy"] if m in TARGET_MAX_RATIO else r["fixed_cost_ms"]
        )
        for m, per in results.items()
        for w, r in per.items()
    }
    write_json(
        args.out,
        "weight_sync",
        {"headline": headline, "target_max_ratio": TARGET_MAX_RATIO, "per_model": results},
        settings={"repeats": args.repeats, "workers": args.workers, "transport": "shm"},
    )
    plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
