"""SUMMARY.md from the benchmarks' JSON files: each ratio against its target, the
component rates, and the machine they were measured on.

Usage: python -m benchmarks.summary [benchmarks/results]   (run_all calls it at the end)
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import machine_line


def _load(out_dir: Path, name: str) -> dict[str, Any] | None:
    path = out_dir / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**yes**" if ok else "no")


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None else fmt.format(x)


# The full run of 2026-11-27 22:41 (committed JSON of that night, docs/performance.md), kept
# beside the new numbers so that a change shows against it. Keys: (measure, model, variant).
BEFORE = "2026-11-27"
BEFORE_VALUES: dict[tuple[str, str, str], str] = {
    ("rollout", "smollm2-135m", "1"): "16.6x",
    ("rollout", "smollm2-135m", "2"): "9.8x",
    ("rollout", "tiny-lm", "1"): "6.8x",
    ("rollout", "tiny-lm", "2"): "5.9x",
    ("e2e", "smollm2-135m", "trl"): "3.3x (16 ep/update, TRL ckpt on, 1 run)",
    ("sync", "smollm2-135m", "x1"): "3.2x",
    ("sync", "smollm2-135m", "x2"): "3.0x",
    ("sync", "tiny-lm", "x1"): "35 ms (86x)",
    ("sync", "tiny-lm", "x2"): "37 ms (13x)",
    ("overhead", "smollm2-135m", ""): "1.2%",
    ("overhead", "tiny-lm", ""): "1.9%",
}
# Targets (revised with shared-prefix training): rollout SmolLM2 1 worker, TRL, SmolLM2 sync.
ROLLOUT_TARGET, TRL_TARGET, SYNC_TARGET, OVERHEAD_TARGET = 25.0, 3.0, 2.5, 0.05
SYNC_TARGETS_MODELS = ("smollm2-135m",)  # other models: the sync's fixed cost, no ratio target


def _before(measure: str, model: str, variant: str = "") -> str:
    return BEFORE_VALUES.get((measure, model, variant), "-")


def _rollout_rows(r: dict[str, Any]) -> list[str]:
    rows = []
    for model, per in r["results"]["per_model"].items():
        base = per["runs"]["sequential HF (study)"]
        for name, s in per["speedup_vs_sequential"].items():
            v = per["runs"][name]
            workers = name.replace("veriray vLLM x", "")
            target = model == "smollm2-135m" and workers == "1"
            rows.append(
                f"| 1 | rollout episodes/s, {workers} worker(s) vs sequential HF loop (tokens/s "
                f"ratio {s['tokens']:.1f}x) | {model} | {v['episodes_per_s']:.2f} ep/s | "
                f"{base['episodes_per_s']:.3f} ep/s | {s['episodes']:.1f}x | "
                f"{_before('rollout', model, workers)} | "
                f"{f'>= {ROLLOUT_TARGET:.0f}x' if target else '-'} | "
                f"{_met(s['episodes'] >= ROLLOUT_TARGET) if target else '-'} |"
            )
    return rows


def _range(x: dict[str, Any], fmt: str) -> str:
    """``median (min-max)`` of a spread dict from bench_e2e_trl."""
    if x.get("median") is None:
        return "n/a"
    return f"{fmt.format(x['median'])} ({fmt.format(x['min'])}-{fmt.format(x['max'])})"


def _e2e_rows(e: dict[str, Any]) -> list[str]:
    res, st = e["results"], e["settings"]
    model = st["model"]
    if "ratio" not in res:  # a result from before the alternated runs: one run per side
        old = res.get("speedup_vs_trl")
        return [
            f"| 2 | RL episodes trained/s vs TRL GRPOTrainer (old format, 1 run) | {model} | "
            f"{res['veriray_episodes_per_s']:.3f} ep/s | "
            f"{_f(res.get('trl_episodes_per_s'), '{:.3f} ep/s')} | "
            f"{_f(old, '{:.1f}x')} | {_before('e2e', model, 'trl')} | "
            f">= {TRL_TARGET:.0f}x | {_met(None if old is None else old >= TRL_TARGET)} |"
        ]
    ratio = res.get("speedup_vs_trl")
    error = res.get("trl_error")
    # A TRL failure's last line is its exception; the table row must stay one line.
    last = (str(error).strip().splitlines() or ["?"])[-1].replace("|", "/")[:100]
    trl = _range(res["trl"], "{:.3f}") + " ep/s" if ratio else f"failed: {last}"
    shape = (
        f"{st['episodes_per_update']} episodes/update, {st['updates_timed']} timed updates x "
        f"{st['runs_per_side']} alternated runs per side; median (min-max)"
    )
    bound = res.get("speedup_bound_training_only")
    rows = [
        f"| 2 | RL episodes trained/s vs TRL GRPOTrainer, gradient checkpointing off, "
        f"{st.get('trl_generation', 'transformers generate')} ({shape}"
        f"{f'; at most {bound:.1f}x with free rollout and sync' if bound else ''}) | {model} | "
        f"{_range(res['veriray'], '{:.3f}')} ep/s | {trl} | {_range(res['ratio'], '{:.2f}x')} | "
        f"{_before('e2e', model, 'trl')} | >= {TRL_TARGET:.0f}x | "
        f"{_met(None if ratio is None else ratio >= TRL_TARGET)} |"
    ]
    d = res.get("speedup_vs_trl_defaults")
    if d is not None:
        rows.append(
            f"| 2 | same vs TRL's defaults (gradient checkpointing on; "
            f"{st.get('trl_defaults_runs', 1)} run) | {model} | "
            f"{res['veriray_episodes_per_s']:.3f} ep/s (median) | "
            f"{_range(res['trl_defaults'], '{:.3f}')} ep/s | {d:.2f}x | - | - | - |"
        )
    return rows


def _sync_rows(w: dict[str, Any]) -> list[str]:
    rows = []
    for model, per in w["results"]["per_model"].items():
        for workers, x in per.items():
            target = model in SYNC_TARGETS_MODELS
            # tiny-lm's bytes copy in < 1 ms: its sync is a fixed cost, reported in ms.
            ms = 1000 * x["weight_sync_s"]
            value = f"{x['sync_over_memcpy']:.1f}x" if target else f"{ms:.0f} ms"
            rows.append(
                f"| 3 | weight sync learner -> {workers[1:]} engine(s) vs memcpy of the same "
                f"{x['bytes'] / 2**20:.0f} MiB{'' if target else ' (fixed cost)'} | {model} | "
                f"{x['weight_sync_s']:.3f} s | {x['memcpy_s']:.4f} s | {value} | "
                f"{_before('sync', model, workers)} | "
                f"{f'<= {SYNC_TARGET}x' if target else '-'} | "
                f"{_met(x['sync_over_memcpy'] <= SYNC_TARGET) if target else '-'} |"
            )
    return rows


def target_rows(out_dir: Path) -> list[str]:
    rows = [
        f"| # | measure | model | veriray | baseline | ratio | {BEFORE} | target | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    if r := _load(out_dir, "rollout"):
        rows += _rollout_rows(r)
    if e := _load(out_dir, "e2e_trl"):
        rows += _e2e_rows(e)
    if w := _load(out_dir, "weight_sync"):
        rows += _sync_rows(w)
    o = _load(out_dir, "overhead")
    if o:
        for model, x in o["results"]["per_model"].items():
            rows.append(
                f"| 4 | share of an RL iteration outside generation/env/verifier/training "
                f"(weight sync {100 * x['weight_sync_share']:.1f}% + glue "
                f"{100 * x['glue_share']:.1f}%) | {model} | {x['iteration_s_mean']:.1f} s "
                f"per iteration | - | {100 * x['overhead_share']:.1f}% | "
                f"{_before('overhead', model)} | <= 5% | "
                f"{_met(x['overhead_share'] <= OVERHEAD_TARGET)} |"
            )
    return rows


def component_rows(out_dir: Path) -> list[str]:
    rows = ["| family | measure | per second |", "|---|---|---|"]
    for name in ("generalpoints", "virl"):
        r = _load(out_dir, name)
        for key, value in (r or {}).get("results", {}).items():
            unit = "" if "per_s" in key else " (s)"
            rows.append(f"| {name} | {key}{unit} | {value:,.1f} |")
    return rows


def learner_rows(out_dir: Path) -> list[str]:
    r = _load(out_dir, "learner")
    if not r:
        return []
    rows = [
        "| model / precision | SFT tokens/s | SFT step s | PPO tokens/s | PPO update s "
        "| GRPO update s, share_prefixes off / on |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in r["results"].items():
        if name == "rl_update":
            continue
        grpo = "-"
        if "grpo/update_s_packed" in x:  # results written before packing have no GRPO run
            grpo = (
                f"{x['grpo/update_s_unpacked']:.2f} / {x['grpo/update_s_packed']:.2f} "
                f"({x['grpo/packing_speedup']:.2f}x)"
            )
        rows.append(
            f"| {name} | {x['sft/tokens_per_s']:,.0f} | {x['sft/step_s']:.2f} | "
            f"{x['ppo/tokens_per_s']:,.0f} | {x['ppo/update_s']:.2f} | {grpo} |"
        )
    return rows


def rl_update_rows(out_dir: Path) -> list[str]:
    """The study's PPO update on real GeneralPoints rows, shared prefixes off vs on."""
    r = _load(out_dir, "learner")
    per = (r or {}).get("results", {}).get("rl_update")
    if not per:
        return []
    rows = [
        "| model | share_prefixes | update s | tokens computed (fwd+bwd / fwd-only) | MFU "
        "| speed-up | matmul probe GFLOP/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for model, x in per.items():
        for name, flag in (("whole_rows", "off"), ("shared_prefixes", "on")):
            y = x[name]
            speedup = f"{x['speedup']:.2f}x" if flag == "on" else "-"
            rows.append(
                f"| {model} ({x['rows']} rows) | {flag} | {y['update_s']:.2f} | "
                f"{y['tokens_trained']:,.0f} / {y['tokens_forward_only']:,.0f} | "
                f"{100 * y['mfu']:.1f}% | {speedup} | "
                f"{x['probe_flops'] / 1e9:,.0f} |"
            )
    rows += [
        "",
        "MFU = (6 N x tokens computed forward and backward + 2 N x tokens computed forward-only)"
        " / update seconds / the in-run bf16 matmul probe's FLOP/s (N = parameters).",
    ]
    return rows


def prefix_cache_rows(out_dir: Path) -> list[str]:
    """vLLM's prefix cache in the rollout benchmark: its hit rate and the prefill computed,
    over veriray's episodes and over first turns in the prompt layout before / after."""
    r = _load(out_dir, "rollout")
    if not r:
        return []
    rows = [
        "| model | prompts | prefix-cache hit rate | prefill tokens computed |",
        "|---|---|---|---|",
    ]
    for model, per in r["results"]["per_model"].items():
        for name, v in per["runs"].items():
            if "prefix_cache_hit_rate" in v:
                rows.append(
                    f"| {model} | {name}, whole episodes | {100 * v['prefix_cache_hit_rate']:.1f}%"
                    f" | {v['prefill_tokens_per_episode']:.0f} per episode |"
                )
        for name, v in per.get("prefix_cache_layouts", {}).items():
            rows.append(
                f"| {model} | {v['prompts']} first turns, layout {name} | "
                f"{100 * v['prefix_cache_hit_rate']:.1f}% | "
                f"{v['prefill_tokens_per_prompt']:.0f} per prompt |"
            )
    return rows


def scaling_rows(out_dir: Path) -> list[str]:
    r = _load(out_dir, "scaling")
    if not r:
        return []
    rows = [
        "| model | rollout workers | env actors | rollout ep/s | rollout tok/s | iteration s "
        "| rollout s | train s | sync s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model, per in r["results"]["per_model"].items():
        for p in per["points"].values():
            rows.append(
                f"| {model} | {p['workers']} | {p['env_actors']} | "
                f"{p['rollout_episodes_per_s']:.2f} | {p['rollout_tokens_per_s']:,.0f} | "
                f"{p['iteration_s']:.2f} | {p['rollout_s']:.2f} | {p['train_s']:.2f} | "
                f"{p['weight_sync_s']:.2f} |"
            )
    return rows


def _section(title: str, fn: Callable[[Path], list[str]], out_dir: Path) -> list[str]:
    try:
        rows = fn(out_dir)
    except (KeyError, TypeError, ValueError, ZeroDivisionError) as err:
        rows = [f"(could not read the results: {type(err).__name__}: {err})"]
    return [f"## {title}", "", *(rows or ["(not run)"]), ""]


def write_summary(out_dir: Path, statuses: dict[str, Any], smoke: bool) -> Path:
    machines = [
        (name, r["machine"])
        for name in ("rollout", "e2e_trl", "weight_sync", "overhead", "scaling", "learner")
        if (r := _load(out_dir, name)) and isinstance(r.get("machine"), dict)
    ]
    lines = ["# veriray benchmarks: summary", ""]
    if smoke:
        lines += [
            "> **SMOKE RUN**: tiny sizes (mostly the tiny model), possibly on a busy machine.",
            "> These numbers only show that every benchmark runs; do not quote them.",
            "",
        ]
    if machines:
        m = machines[0][1]
        loads = ", ".join(f"{name} {x['loadavg_1m_at_start']}" for name, x in machines)
        lines += [
            f"Machine: {machine_line(m)} ({m['os']}, Python {m['python']}).",
            f"1-minute load average when each benchmark started: {loads} "
            f"(the machine has {m['logical_cpus']} CPUs; more than that means it was shared).",
            "",
        ]
    lines += [
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by `python -m benchmarks.run_all`; "
        "every ratio is taken between numbers measured in the same run, same machine, same model "
        "and task. What each number means: docs/performance.md.",
        "",
    ]
    lines += _section("Targets", target_rows, out_dir)
    lines += _section("Verifier, solver, envs, rendering (one core)", component_rows, out_dir)
    lines += _section("Learner (one rank, 2 threads)", learner_rows, out_dir)
    lines += _section("RL update on real episodes (learner benchmark)", rl_update_rows, out_dir)
    lines += _section("Rollout prefix cache (vLLM's own counts)", prefix_cache_rows, out_dir)
    lines += _section("Scaling", scaling_rows, out_dir)
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    lines += ["Figures: " + ", ".join(f"[{p}]({p})" for p in pngs), ""]
    lines += ["## Runs", "", "| benchmark | status | wall s | when |", "|---|---|---|---|"]
    for name, s in statuses.items():
        status = s["status"].replace("|", "/").replace("\n", " ")[:200]
        lines.append(f"| {name} | {status} | {s['wall_s']:.0f} | {s.get('when', '')} |")
    path = out_dir / "SUMMARY.md"
    path.write_text("\n".join(lines) + "\n")
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("benchmarks/results")
    status_file = out / "run_all.json"
    st = json.loads(status_file.read_text()).get("benchmarks", {}) if status_file.is_file() else {}
    print(write_summary(out, st, smoke="smoke" in out.parts).read_text())
