"""`veriray baseline rllib CONFIG`: a reference policy without a language model.

RLlib's PPO trains a small MLP over the task's discrete encoding (envs.discrete: for
GeneralPoints with two cards an operation and an order, for V-IRL-L the action to take) on the
task's training split, once per training seed of the study. The trained policy then plays the
run's held-out suites greedily, on the same prompts the language model's evaluation plays
(the Evaluator's own prompt lists), and the task's verifier scores its answers. Results go to
<run_dir>/baseline_rllib/ (result.json, training.csv, baseline_rllib.png); when the run's
report exists, it is written again with the baseline as a reference line.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cluster.config import ExperimentConfig
from cluster.evaluate import resolved_eval_config
from cluster.ray_runtime import init_ray
from cluster.run_logs import verbose
from common.typed_config import ConfigError
from envs.discrete import DiscreteEncoding, DiscreteTaskEnv
from envs.families import family
from evaluation.evaluator import Evaluator, prompt_id
from evaluation.plots import plt, save_figure
from evaluation.report import REFERENCE_DIR_PREFIX, REPORT_JSON, load_references, write_report
from evaluation.stats import wilson_interval

log = logging.getLogger(__name__)

NAME = "rllib"
LABEL = "RLlib PPO, MLP without a language model"
MAX_EVAL_TURNS = 64  # a route longer than this is a broken route; the episode is cut


def out_dir(cfg: ExperimentConfig) -> Path:
    return cfg.run_dir / f"{REFERENCE_DIR_PREFIX}{NAME}"


def encoding_of(cfg: ExperimentConfig) -> DiscreteEncoding:
    """The task's discrete encoding; a ConfigError naming the field when it has none (call it
    before Ray starts)."""
    fam = family(cfg.task.family)
    if fam.discrete_encoding is None:
        raise ConfigError(
            f"task.family: {cfg.task.family!r} has no discrete encoding, so it has no "
            "non-language baseline (a family opts in with TaskFamily.discrete_encoding)"
        )
    try:
        return fam.discrete_encoding(cfg.task.active_dict())
    except ValueError as err:
        raise ConfigError(str(err)) from err


def build_algorithm(cfg: ExperimentConfig, seed: int) -> Any:
    """An RLlib PPO algorithm on the training split (new API stack, torch)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    b = cfg.baseline.rllib
    env_config = {"family": cfg.task.family, "task": cfg.task.train_dict()}
    config = (
        PPOConfig()
        .environment(DiscreteTaskEnv, env_config=env_config)
        .env_runners(num_env_runners=b.num_env_runners)
        .training(
            lr=b.lr,
            train_batch_size_per_learner=b.train_batch_size,
            minibatch_size=b.minibatch_size,
            num_epochs=b.num_epochs,
            entropy_coeff=b.entropy_coeff,
            gamma=b.gamma,
            lambda_=b.gae_lambda,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(b.hidden_sizes)))
        .debugging(seed=seed, log_level="WARN")
    )
    return config.build_algo()


def greedy_actions(module: Any, obs: np.ndarray) -> np.ndarray:
    """The policy's most likely action for each row of ``obs``."""
    import torch
    from ray.rllib.core.columns import Columns

    with torch.no_grad():
        out = module.forward_inference({Columns.OBS: torch.as_tensor(obs, dtype=torch.float32)})
    return out[Columns.ACTION_DIST_INPUTS].argmax(-1).cpu().numpy()


def play_suite(
    module: Any, family_name: str, suite: dict[str, Any], options: list[dict[str, Any]]
) -> dict[str, bool]:
    """Play each prompt once, greedily; {prompt_id: success}."""
    config = {"family": family_name, "task": suite, "max_turns": MAX_EVAL_TURNS}
    env = DiscreteTaskEnv(config | {"reset_options": options})
    outcomes: dict[str, bool] = {}
    for opt in options:
        obs, _ = env.reset(options=opt)
        success, done = False, False
        while not done:
            action = int(greedy_actions(module, obs[None])[0])
            obs, _, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            success = info["success"]
        outcomes[prompt_id(opt)] = success
    return outcomes


def rate(outcomes: dict[str, bool]) -> dict[str, Any]:
    k, n = sum(outcomes.values()), len(outcomes)
    return {
        "rate": k / n if n else 0.0,
        "successes": k,
        "n": n,
        "wilson95": list(wilson_interval(k, n)),
    }


def train_and_evaluate(
    cfg: ExperimentConfig, seed: int, suites: dict[str, list[dict[str, Any]]], ev: Evaluator
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One seed: train (progress bar), then play every suite; (result, training rows)."""
    algo = build_algorithm(cfg, seed)
    rows = []
    try:
        bar = tqdm(range(cfg.baseline.rllib.iterations), desc=f"rllib PPO seed {seed}")
        for it in bar:
            result = algo.train()
            runners = result.get("env_runners", {})
            row = {
                "seed": seed,
                "iteration": it + 1,
                "env_steps": int(result.get("num_env_steps_sampled_lifetime", 0) or 0),
                "episode_return_mean": float(runners.get("episode_return_mean", float("nan"))),
                "episode_len_mean": float(runners.get("episode_len_mean", float("nan"))),
            }
            rows.append(row)
            bar.set_postfix(ret=f"{row['episode_return_mean']:.3f}")
        module = algo.get_module()
        by_suite = {}
        for name, options in suites.items():
            outcomes = play_suite(module, cfg.task.family, ev.suites[name], options)
            by_suite[name] = rate(outcomes) | {"outcomes": outcomes}
    finally:
        algo.stop()
    return {"seed": seed, "suites": by_suite}, rows


def mean_over_seeds(per_seed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per suite: the mean success over seeds, and all seeds' outcomes pooled (Wilson)."""
    out = {}
    for name in per_seed[0]["suites"]:
        rates = [s["suites"][name]["rate"] for s in per_seed]
        k = sum(s["suites"][name]["successes"] for s in per_seed)
        n = sum(s["suites"][name]["n"] for s in per_seed)
        out[name] = {"rate": float(np.mean(rates)), "successes": k, "n": n}
        out[name]["wilson95"] = list(wilson_interval(k, n))
    return out


def write_outputs(
    cfg: ExperimentConfig, result: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    folder = out_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps(result, indent=2))
    with (folder / "training.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    for seed in sorted({r["seed"] for r in rows}):
        mine = [r for r in rows if r["seed"] == seed]
        left.plot(
            [r["env_steps"] for r in mine],
            [r["episode_return_mean"] for r in mine],
            label=f"seed {seed}",
        )
    left.set_xlabel("env steps")
    left.set_ylabel("mean episode return")
    left.set_title("training (ID rule, training split)", fontsize=9)
    left.legend(fontsize=8)
    suites = list(result["suites"])
    means = [100 * result["suites"][s]["rate"] for s in suites]
    low = [100 * result["suites"][s]["wilson95"][0] for s in suites]
    high = [100 * result["suites"][s]["wilson95"][1] for s in suites]
    err = np.clip([np.subtract(means, low), np.subtract(high, means)], 0, None)
    right.bar(suites, means, yerr=err, color="tab:gray", capsize=3)
    right.set_ylim(0, 100)
    right.set_ylabel("success (%)")
    right.set_title("held-out suites (greedy)", fontsize=9)
    fig.suptitle(f"{LABEL}: {cfg.task.family}", fontsize=9)
    save_figure(fig, folder / "baseline_rllib.png")
    return folder


def run(cfg: ExperimentConfig) -> Path:
    """Train and evaluate the baseline for every training seed; rewrite the run's report."""
    encoding_of(cfg)
    ev = Evaluator(None, cfg.task.family, cfg.task.active_dict(), resolved_eval_config(cfg))  # type: ignore[arg-type]
    suites = {name: ev.suite_prompts(name, s).options for name, s in ev.suites.items()}
    if not verbose():  # RLlib's API-stack notices and deprecation warnings (--verbose shows them)
        for name in ("ray.rllib", "ray.tune"):
            logging.getLogger(name).setLevel(logging.ERROR)
    handle = init_ray(cfg.ray)
    if handle.dashboard_url:
        print(f"Ray dashboard: {handle.dashboard_url}")
    try:
        per_seed, rows = [], []
        for seed in cfg.training_seeds:
            result, seed_rows = train_and_evaluate(cfg, seed, suites, ev)
            per_seed.append(result)
            rows += seed_rows
    finally:
        if handle.embedded:
            import ray

            ray.shutdown()
    result = {
        "name": NAME,
        "label": LABEL,
        "task": cfg.task.family,
        "encoding_actions": list(encoding_of(cfg).actions),
        "config": json.loads(json.dumps(cfg.baseline.rllib.__dict__)),
        "episodes_per_suite": ev.cfg.episodes,
        "eval_seed": ev.cfg.seed,
        "suites": mean_over_seeds(per_seed),
        "per_seed": per_seed,
    }
    folder = write_outputs(cfg, result, rows)
    report_path = cfg.run_dir / REPORT_JSON
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        report["references"] = load_references(cfg.run_dir)
        write_report(cfg.run_dir, report)
    return folder
