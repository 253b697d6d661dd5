"""Hostile answers through every env variant and its verifier: no exception, bounded time.

Not a CI test (it takes minutes): run it after touching a parser, a verifier or an env.

  python -m benchmarks.fuzz_answers                    # 100,000 answers per variant
  python -m benchmarks.fuzz_answers --answers 2000     # a quick look

Each variant is one task family x observation mode (x action space for V-IRL) x evaluation
suite (in-distribution, OOD rule, OOD visual). Every answer goes through the verifier itself
(an exception there is counted, not caught by the safety net) and through ``env.step`` (which
also counts verdicts that the safety net, verifier.base.verify_total, had to make). The answers
are seeded: a mix of answer-shaped JSON with hostile numbers (1e309, NaN, 60-digit integers,
hex and underscore literals) in every field, deep nesting, long text up to 40k characters,
control and non-ASCII characters, and mutations of the expert's own answer.

Writes ``benchmarks/results/fuzz_answers.json``: per variant the answers sent, exceptions,
safety-net verdicts, the worst and the 99.9th-percentile step time. The target: 0 exceptions
and a worst step under 50 ms.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from benchmarks.common import RESULTS_DIR, machine_info
from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from envs.virl.config import VirlConfig
from verifier.base import VERIFIER_ERROR_FIELD

WORST_STEP_TARGET_MS = 50.0
NUMBERS = [
    "1e309", "-1e309", "1E-400", "NaN", "nan", "Infinity", "-Infinity", "inf", "0x1F", "0b101",
    "0o17", "1_000", "9" * 60, "-" + "9" * 45, "1e99999", "0.1e-5", "13.0", "24.000000001",
    "1.7976931348623157e308", "True", "null", "-0", "+5", "١٢", "²",
]  # fmt: skip
WORDS = [
    "K", "Q", "J", "A", "10", "T", "King of Spades", "turn_direction(north)", "forward()",
    "stop()", "turn_direction(slightly left)", "Joe's Pizza", "formula", "cards", "number",
    "action", "current observation", "\\u0000", "\x00", "\u202e", "💥", "{", "}", "[", "]",
]  # fmt: skip
OPS = ["+", "-", "*", "/", "**", "//", "%", "(", ")", "=", " ", "^", "x", "÷"]


def _hostile_value(rng: random.Random, depth: int = 0) -> str:
    roll = rng.random()
    if roll < 0.35:
        return rng.choice(NUMBERS)
    if roll < 0.55:
        return json.dumps(rng.choice(WORDS))
    if roll < 0.7:
        return json.dumps("".join(rng.choice(OPS + NUMBERS[:4] + ["8", "3"]) for _ in range(9)))
    if roll < 0.85 and depth < 6:
        items = [_hostile_value(rng, depth + 1) for _ in range(rng.randint(0, 5))]
        return "[" + ", ".join(items) + "]"
    if depth < 6:
        return "{" + f'"x": {_hostile_value(rng, depth + 1)}' + "}"
    return "0"


def _answer_shaped(rng: random.Random, keys: list[str]) -> str:
    fields = [f'"{k}": {_hostile_value(rng)}' for k in keys if rng.random() < 0.9]
    body = "{" + ", ".join(fields) + "}"
    return rng.choice(["", "Sure! ", "```json\n"]) + body + rng.choice(["", "\n```", " ok"])


def _long(rng: random.Random) -> str:
    unit = rng.choice(["{", '{"formula": "', "[" * 3, "1+", "a" * 7, "\\", '"', "turn_direction("])
    return unit * rng.randint(100, 40_000 // len(unit))


def _mutated(rng: random.Random, expert: str) -> str:
    chars = list(expert)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(chars) + 1)
        pick = rng.choice(NUMBERS + WORDS + OPS)
        if rng.random() < 0.5 and chars:
            chars[min(i, len(chars) - 1)] = pick
        else:
            chars.insert(i, pick)
    return "".join(chars)


def hostile_answers(
    rng: random.Random, keys: list[str], expert: Callable[[], str]
) -> Iterator[str]:
    """An endless seeded stream of hostile answers for a task whose answer has ``keys``."""
    while True:
        roll = rng.random()
        if roll < 0.5:
            yield _answer_shaped(rng, keys)
        elif roll < 0.6:
            yield _long(rng)
        elif roll < 0.8:
            yield _mutated(rng, expert())
        elif roll < 0.9:
            yield "".join(chr(rng.randrange(0, 0x3000)) for _ in range(rng.randint(0, 300)))
        else:
            yield _hostile_value(rng)


def variants() -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(name, family, env config, answer keys) for every env variant and evaluation suite."""
    out = []
    gp_keys = ["cards", "number", "formula"]
    virl_keys = ["current observation", "current instruction", "action"]
    for mode in ("text", "image"):
        base = config_dict(GeneralPointsConfig(observation_mode=mode, image_size=112))
        for suite, cfg in family("generalpoints").suites(base).items():
            out.append((f"generalpoints/{mode}/{suite}", "generalpoints", cfg, gp_keys))
    for mode in ("text", "image"):
        for space in ("absolute", "relative"):
            base = config_dict(VirlConfig(observation_mode=mode, action_space=space, view_size=64))
            for suite, cfg in family("virl").suites(base).items():
                name = f"virl/{mode}/{space}/{suite}"
                out.append((name, "virl", cfg, virl_keys))
    return out


def _expert(env: Any) -> Callable[[], str]:
    """The expert's answer in the env's current state (what mutations start from)."""
    from envs.generalpoints.oracle import oracle_answer

    def answer() -> str:
        inner = env.unwrapped
        if hasattr(inner, "expert_answer"):
            return str(inner.expert_answer())
        return oracle_answer(inner.task)

    return answer


def fuzz_variant(
    fam: str, config: dict[str, Any], keys: list[str], n: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    env = family(fam).make_env(config)
    verifier = family(fam).make_verifier(config)
    env.reset(seed=seed)
    answers = hostile_answers(rng, keys, _expert(env))
    exceptions: list[str] = []
    net_verdicts = 0
    times: list[float] = []
    for i in tqdm(range(n), desc=f"{fam}", leave=False, mininterval=2):
        text = next(answers)
        try:
            verifier.verify(env.unwrapped.task_state(), text)
        except Exception:
            exceptions.append("verifier: " + traceback.format_exc(limit=3)[-600:])
        start = time.perf_counter()
        try:
            _obs, _r, terminated, truncated, info = env.step(text)
        except Exception:
            exceptions.append("env.step: " + traceback.format_exc(limit=3)[-600:])
            terminated = True
            info = {}
        times.append(time.perf_counter() - start)
        if VERIFIER_ERROR_FIELD in info.get("verdict", {}).get("fields", {}):
            net_verdicts += 1
        if terminated or truncated:
            env.reset(seed=seed + i + 1)
    times.sort()
    return {
        "answers": n,
        "exceptions": len(exceptions),
        "first_exceptions": exceptions[:3],
        "safety_net_verdicts": net_verdicts,
        "worst_step_ms": round(1000 * times[-1], 2),
        "p999_step_ms": round(1000 * times[min(len(times) - 1, math.ceil(0.999 * n))], 3),
        "mean_step_ms": round(1000 * sum(times) / n, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=100_000, help="answers per variant")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="variants whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "fuzz_answers.json")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    start = time.perf_counter()
    for k, (name, fam, cfg, keys) in enumerate(variants()):
        if args.only not in name:
            continue
        results[name] = fuzz_variant(fam, cfg, keys, args.answers, args.seed + 1000 * k)
        r = results[name]
        print(
            f"{name}: {r['exceptions']} exceptions, {r['safety_net_verdicts']} safety-net "
            f"verdicts, worst step {r['worst_step_ms']} ms (p99.9 {r['p999_step_ms']} ms)",
            flush=True,
        )
    worst = max((r["worst_step_ms"] for r in results.values()), default=0.0)
    total_exc = sum(r["exceptions"] for r in results.values())
    report = {
        "machine": machine_info(),
        "answers_per_variant": args.answers,
        "seed": args.seed,
        "wall_s": round(time.perf_counter() - start, 1),
        "exceptions": total_exc,
        "worst_step_ms": worst,
        "target": f"0 exceptions, worst step < {WORST_STEP_TARGET_MS} ms",
        "met": total_exc == 0 and worst < WORST_STEP_TARGET_MS,
        "variants": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"{len(results)} variants, {total_exc} exceptions, worst step {worst} ms -> {args.out}")


if __name__ == "__main__":
    main()
