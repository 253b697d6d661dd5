"""SUMMARY.md from the benchmarks' JSON files: each ratio against its target (issue 9), the
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


def target_rows(out_dir: Path) -> list[str]:
    rows = [
        "| # | measure | model | veriray | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    r = _load(out_dir, "rollout")
    if r:
        for model, per in r["results"]["per_model"].items():
            base = per["runs"]["sequential HF (study)"]
            for name, s in per["speedup_vs_sequential"].items():
                v = per["runs"][name]
                target = model == "smollm2-135m"
                rows.append(
                    f"| 1 | rollout episodes/s, {name.replace('veriray vLLM x', '')} worker(s) vs "
                    f"sequential HF loop (tokens/s ratio {s['tokens']:.1f}x) | {model} | "
                    f"{v['episodes_per_s']:.2f} ep/s | {base['episodes_per_s']:.3f} ep/s | "
                    f"{s['episodes']:.1f}x | {'>= 20x' if target else '-'} | "
                    f"{_met(s['episodes'] >= 20) if target else '-'} |"
                )
    e = _load(out_dir, "e2e_trl")
    if e:
        res, st = e["results"], e["settings"]
        ratio = res.get("speedup_vs_trl")
        trl = (
            _f(res.get("trl_episodes_per_s"), "{:.3f} ep/s")
            if ratio
            else "failed: " + str(e.get("trl", {}).get("error", "?")).splitlines()[0][:80]
        )
        bound = res.get("speedup_bound_training_only")
        bound_note = f"; at most {bound:.1f}x with free rollout and sync" if bound else ""
        rows.append(
            f"| 2 | RL episodes trained/s vs TRL GRPOTrainer ({st['episodes_per_update']} "
            f"episodes/update, {st['updates_timed']} timed updates{bound_note}) | {st['model']} | "
            f"{res['veriray_episodes_per_s']:.3f} ep/s | {trl} | {_f(ratio, '{:.1f}x')} | "
            f">= 4x | {_met(None if ratio is None else ratio >= 4)} |"
        )
    w = _load(out_dir, "weight_sync")
    if w:
        for model, per in w["results"]["per_model"].items():
            for workers, x in per.items():
                rows.append(
                    f"| 3 | weight sync learner -> {workers[1:]} engine(s) vs memcpy of the same "
                    f"{x['bytes'] / 2**20:.0f} MiB | {model} | {x['weight_sync_s']:.3f} s | "
                    f"{x['memcpy_s']:.4f} s | {x['sync_over_memcpy']:.1f}x | <= 4x | "
                    f"{_met(x['sync_over_memcpy'] <= 4)} |"
                )
    o = _load(out_dir, "overhead")
    if o:
        for model, x in o["results"]["per_model"].items():
            rows.append(
                f"| 4 | share of an RL iteration outside generation/env/verifier/training "
                f"(weight sync {100 * x['weight_sync_share']:.1f}% + glue "
                f"{100 * x['glue_share']:.1f}%) | {model} | {x['iteration_s_mean']:.1f} s "
                f"per iteration | - | {100 * x['overhead_share']:.1f}% | <= 5% | "
                f"{_met(x['overhead_share'] <= 0.05)} |"
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
        "| GRPO update s, unpacked / packed prompts |",
        "|---|---|---|---|---|---|",
    ]
    for name, x in r["results"].items():
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
    lines += _section("Targets (issue 9)", target_rows, out_dir)
    lines += _section("Verifier, solver, envs, rendering (one core)", component_rows, out_dir)
    lines += _section("Learner (one rank, 2 threads)", learner_rows, out_dir)
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
