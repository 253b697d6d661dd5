"""Throughput of the V-IRL pieces a rollout worker runs on CPU.

Reports (one process pinned to one core, one thread):
  verifier/checks_per_s        verify() on a realistic mix (expert, wrong, prose, hostile)
  env/steps_per_s_text         text-mode steps with expert answers (resets included)
  env/steps_per_s_image        image-mode steps (2x2 grid of new views at every step)
  render/views_per_s           single street views at new (point, heading) pairs
  city/generate_seconds        generating the default 1,000-route New York (cold)

Writes the JSON and a PNG of the rates beside it (log scale).

Usage (from the repository root; the results folder is created if missing):
  python -m benchmarks.bench_virl [--out benchmarks/results/virl.json] [--view-size 224]
      [--scale 1.0]   (fraction of the default work; 0.2 for a smoke run)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import bar_png, pin_one_core, write_results
from envs.virl.city import generate_city
from envs.virl.config import VirlConfig
from envs.virl.env import VirlEnv
from envs.virl.oracle import expert_answer
from envs.virl.render import route_view
from envs.virl.styles import STYLES
from verifier.virl import VirlVerifier

DEFAULT_OUT = Path("benchmarks/results/virl.json")


def _rate(n: int, fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def _task_states(n: int) -> list[tuple[dict, str]]:
    """(task_state, expert answer) pairs from real episodes."""
    env = VirlEnv({"num_routes": 200})
    out: list[tuple[dict, str]] = []
    seed = 0
    while len(out) < n:
        _, info = env.reset(seed=seed)
        seed += 1
        done = False
        while not done and len(out) < n:
            state = info["task_state"]
            answer = expert_answer(env.route, env.oracle[state["step_index"]], "absolute")
            out.append((state, answer))
            _, _, done, _, info = env.step(answer)
    return out


def bench_verifier(n_states: int = 200) -> float:
    verifier = VirlVerifier()
    replies = []
    for state, answer in _task_states(n_states):
        replies += [
            (state, answer),
            (state, '{"current observation": "none", "action": "turn_direction(left)"}'),
            (state, "I think I should walk forward now."),
            (state, "```json\n{'current observation': 'x', 'action': 'Stop()',}\n```"),
            (state, "[" * 5000),
        ]

    def run() -> None:
        for state, reply in replies:
            verifier.verify(state, reply)

    return _rate(len(replies), run)


def bench_env(mode: str, n_steps: int, view_size: int) -> float:
    env = VirlEnv(VirlConfig(observation_mode=mode, view_size=view_size, num_routes=200))

    def run() -> None:
        _, info = env.reset(seed=0)
        episode = 0
        for _ in range(n_steps):
            step = env.oracle[info["task_state"]["step_index"]]
            _, _, done, _, info = env.step(expert_answer(env.route, step, "absolute"))
            if done:
                episode += 1
                _, info = env.reset(seed=episode)

    return _rate(n_steps, run)


def bench_render(n_views: int, view_size: int) -> float:
    routes = generate_city("new_york", 0, 1000).routes
    style = STYLES["new_york"]

    def run() -> None:
        for k in range(n_views):
            route = routes[k % len(routes)]
            route_view(route, style, k % route.num_points, (k * 37.0) % 360.0, view_size)

    return _rate(n_views, run)


def bench_generate() -> float:
    start = time.perf_counter()
    generate_city.__wrapped__("new_york", 12345, 1000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results path")
    parser.add_argument("--view-size", type=int, default=224, help="pixels per street view")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the default work")
    args = parser.parse_args()
    pinned = pin_one_core()
    n = lambda k: max(5, int(k * args.scale))  # noqa: E731
    results = {
        "verifier/checks_per_s": bench_verifier(n(200)),
        "env/steps_per_s_text": bench_env("text", n(2000), args.view_size),
        "env/steps_per_s_image": bench_env("image", n(300), args.view_size),
        "render/views_per_s": bench_render(n(400), args.view_size),
        "city/generate_seconds": bench_generate(),
    }
    write_results(
        args.out, "virl", results, 3, view_size=args.view_size, pinned=pinned, scale=args.scale
    )
    rates = {k: v for k, v in results.items() if k.endswith("_per_s") or "_per_s_" in k}
    bar_png(
        args.out.with_suffix(".png"),
        ["verdicts", "env steps\n(text)", "env steps\n(image)", "street views"],
        list(rates.values()),
        "per second (log)",
        f"V-IRL on one core ({args.view_size} px views): verdicts, env steps, images per second",
        log=True,
    )


if __name__ == "__main__":
    main()
