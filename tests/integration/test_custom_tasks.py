"""Bringing your own task, end to end through the real command line on an embedded cluster
with tiny-lm: the countdown example as its README documents it (generate the data, run the
config), a third-party gymnasium text env for one update, and an installed plugin
distribution for one update."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from common.ports import free_port
from tests.integration.quick_demo import JOB_TIMEOUT_S, ROOT
from tests.plugins.install import env_with, install_plugin

SMALL = ["episodes=4", "study.seeds=1", "rl.episodes_per_update=8"]


def _run(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> str:
    """Run a command; stderr to a file (a full pipe nobody reads would stall the job)."""
    with log.open("w+") as err:
        out = subprocess.run(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            timeout=JOB_TIMEOUT_S,
        )
        err.seek(0)
        assert out.returncode == 0, err.read()[-4000:]
    return out.stdout


def _veriray(*args: str) -> list[str]:
    return [sys.executable, "-m", "cluster.cli", *args, f"ray.dashboard_port={free_port()}"]


def _points(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "eval_points.jsonl").read_text().splitlines()]


def test_countdown_example_runs_as_documented(tmp_path) -> None:
    work = tmp_path / "work"
    shutil.copytree(
        ROOT / "examples" / "countdown",
        work / "examples" / "countdown",
        ignore=shutil.ignore_patterns("data", "__pycache__"),
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    _run(
        [sys.executable, "examples/countdown/generate.py", "--train", "200", "--test", "20"],
        work,
        env,
        tmp_path / "generate.log",
    )
    stdout = _run(
        _veriray(
            "run",
            "examples/countdown/config.yaml",
            *SMALL,
            "rl.updates=2",
            "sft.examples=16",
            f"output_dir={tmp_path / 'runs'}",
        ),
        work,
        env,
        tmp_path / "run.log",
    )
    assert "report:" in stdout
    run_dir = tmp_path / "runs" / "countdown"
    points = _points(run_dir)
    assert [p["stage"] for p in points] == ["base", "init", "rl", "sft"]
    for p in points:
        assert list(p["suites"]) == ["in_distribution", "ood_large", "ood_more"]
        assert all("mean_reward" in s["extra"] for s in p["suites"].values())
    report = json.loads((run_dir / "report.json").read_text())
    assert report["task"] == "dataset"
    # SFT examples from the solution column, behind the system prompt.
    sft = pq.read_table(run_dir / "sft" / "sft_data.parquet").to_pylist()
    system, user, answer = json.loads(sft[0]["messages"])
    assert system["role"] == "system" and "Using the numbers" in user["content"]
    assert answer["role"] == "assistant" and answer["content"]
    # max_turns: 2: a failed first answer got the reward function's feedback as a second turn.
    samples = pq.read_table(run_dir / "samples.parquet").to_pylist()
    assert {str(s["turn"]) for s in samples} >= {"0"}
    failed_first = [s for s in samples if str(s["turn"]) == "0" and s["turn_success"] == "False"]
    assert all(
        any(t["prompt_id"] == s["prompt_id"] and str(t["turn"]) == "1" for t in samples)
        for s in failed_first
    )


def test_a_third_party_gymnasium_env_trains_one_update(tmp_path) -> None:
    third_party = tmp_path / "third_party"
    third_party.mkdir()
    shutil.copy(ROOT / "tests" / "text_game.py", third_party / "text_game.py")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(third_party), str(ROOT), env.get("PYTHONPATH", "")])
    _run(
        _veriray(
            "run",
            "configs/cpu/quick.yaml",
            *SMALL,
            "name=gym",
            "rl.updates=1",
            "sft.enabled=false",
            "task.family=gymnasium",
            "task.gymnasium.env_id=text_game:textgame/SayTheWord-v0",
            "task.gymnasium.eval_suites={in_distribution: {}, ood_one_try: {tries: 1}}",
            "task.gymnasium.eval_episodes=4",
            "study.primary_suite=ood_one_try",
            f"output_dir={tmp_path / 'runs'}",
        ),
        ROOT,
        env,
        tmp_path / "run.log",
    )
    run_dir = tmp_path / "runs" / "gym"
    points = _points(run_dir)
    assert [(p["stage"], p["step"]) for p in points] == [("init", 0), ("rl", 1)]
    assert list(points[-1]["suites"]) == ["in_distribution", "ood_one_try"]
    assert points[-1]["train_gflops"] > 0  # one PPO update happened
    for suite in points[-1]["suites"].values():  # the env's own success, turn by turn
        outcomes = suite["outcomes"]
        assert all(s >= f for s, f in zip(outcomes["success"], outcomes["first_try"]))


def test_an_installed_plugin_trains_one_update(tmp_path) -> None:
    env = env_with(install_plugin(tmp_path / "site"))
    _run(
        _veriray(
            "run",
            "configs/cpu/quick.yaml",
            *SMALL,
            "name=plugin",
            "rl.updates=1",
            "sft.enabled=false",
            "task.family=reverse",
            "study.primary_suite=ood_longer",
            f"output_dir={tmp_path / 'runs'}",
        ),
        ROOT,
        env,
        tmp_path / "run.log",
    )
    points = _points(tmp_path / "runs" / "plugin")
    assert [(p["stage"], p["step"]) for p in points] == [("init", 0), ("rl", 1)]
    assert list(points[-1]["suites"]) == ["in_distribution", "ood_longer"]
