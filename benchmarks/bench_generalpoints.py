"""Throughput of the GeneralPoints pieces a rollout worker runs on CPU.

Reports (one process pinned to one core, one thread):
  verifier/checks_per_s      verify() on a realistic mix of replies (correct, wrong, hostile)
  solver/hands_per_s         exact solve of every 4-card number multiset, cold memo
  solver/hands_per_s_warm    the same with the memo warm (what dealing costs)
  env/steps_per_s            text-mode reset + step with oracle answers
  render/images_per_s        table images of new hands (card faces cached after first draw)
  render/images_per_s_cold   the same with the card-face cache cleared before each image

Writes the JSON and a PNG of the rates beside it (log scale).

Usage (from the repository root; the results folder is created if missing):
  python -m benchmarks.bench_generalpoints [--out benchmarks/results/generalpoints.json]
      [--scale 1.0]   (fraction of the default work; 0.2 for a smoke run)
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.common import bar_png, pin_one_core, write_results
from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import deal_task
from envs.generalpoints.env import GeneralPointsEnv
from envs.generalpoints.oracle import oracle_answer
from envs.generalpoints.render import card_face, render_hand
from envs.generalpoints.solver import _solve_sorted, reachable, solve
from verifier.generalpoints import GeneralPointsVerifier
from verifier.generalpoints_rules import RANKS, rank_value

DEFAULT_OUT = Path("benchmarks/results/generalpoints.json")


def _rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench_verifier(n_tasks: int = 200) -> float:
    cfg = GeneralPointsConfig(observation_mode="image")
    verifier = GeneralPointsVerifier(cfg)
    rng = np.random.default_rng(0)
    tasks = [deal_task(cfg, rng) for _ in range(n_tasks)]
    replies = []
    for task in tasks:
        replies += [
            (task, oracle_answer(task, thought=True)),
            (task, '{"cards": ["A"], "number": [1], "formula": "1+2+3+4"}'),
            (task, "I think the answer is 24."),
            (task, '```json\n{"formula": "9**9**9"}\n```'),
            (task, "(" * 5000),
        ]

    def run() -> None:
        for task, reply in replies:
            verifier.verify(task, reply)

    return _rate(len(replies), run)


def bench_solver() -> tuple[float, float]:
    keys = sorted(
        {
            tuple(sorted(rank_value(r, "ordinal") for r in ranks))
            for ranks in itertools.combinations_with_replacement(RANKS, 4)
        }
    )
    reachable.cache_clear()
    _solve_sorted.cache_clear()

    def run() -> None:
        for key in keys:
            solve(key, 24)

    cold = _rate(len(keys), run)
    warm = _rate(len(keys), run)
    return cold, warm


def bench_env(n_episodes: int = 500) -> float:
    env = GeneralPointsEnv()
    rng = np.random.default_rng(0)
    cfg = env.config
    tasks = [deal_task(cfg, rng) for _ in range(n_episodes)]
    answers = [oracle_answer(t) for t in tasks]

    def run() -> None:
        for i, (task, reply) in enumerate(zip(tasks, answers, strict=True)):
            env.reset(seed=i, options={"task_state": task})
            env.step('{"formula": "1+1"}')  # one failed attempt, then the right one
            env.step(reply)

    return _rate(2 * n_episodes, run)


def bench_render(n_images: int = 100) -> tuple[float, float]:
    cfg = GeneralPointsConfig(suit_color="mixed")
    rng = np.random.default_rng(0)
    hands = [deal_task(cfg, rng).cards for _ in range(n_images)]

    def warm() -> None:
        for cards in hands:
            render_hand(cards)

    def cold() -> None:
        for cards in hands:
            card_face.cache_clear()
            render_hand(cards)

    warm()  # fill the card-face cache
    return _rate(n_images, warm), _rate(n_images, cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default work")
    args = parser.parse_args()
    pinned = pin_one_core()
    n = lambda k: max(5, int(k * args.scale))  # noqa: E731
    solver_cold, solver_warm = bench_solver()
    render_warm, render_cold = bench_render(n(100))
    results = {
        "verifier/checks_per_s": bench_verifier(n(200)),
        "solver/hands_per_s": solver_cold,
        "solver/hands_per_s_warm": solver_warm,
        "env/steps_per_s": bench_env(n(500)),
        "render/images_per_s": render_warm,
        "render/images_per_s_cold": render_cold,
    }
    write_results(args.out, "generalpoints", results, 1, pinned=pinned, scale=args.scale)
    labels = ["verdicts", "solver\n(cold)", "solver\n(warm memo)", "env steps", "images"]
    bar_png(
        args.out.with_suffix(".png"),
        [*labels, "images\n(cold)"],
        list(results.values()),
        "per second (log)",
        "GeneralPoints on one core: verdicts, solver hands, env steps, images per second",
        log=True,
    )


if __name__ == "__main__":
    main()
