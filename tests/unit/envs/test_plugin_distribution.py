"""A pip-installed plugin adds a task without touching veriray: a throwaway distribution with
a ``veriray.tasks`` entry point, in a temp site dir, seen by a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.plugins.install import ROOT, env_with, install_plugin

SCRIPT = """
import json
from cluster.config import load_experiment
from common.typed_config import ConfigError
from envs.families import family, names

cfg = load_experiment(None, ["task.family=reverse", "task.reverse.max_len=5",
                             "study.primary_suite=ood_longer"])
fam = family("reverse")
env = fam.make_env(cfg.task.train_dict())
obs, info = env.reset(seed=0)
word = info["task_state"]["word"]
wrong = env.step("no")
right = env.step(word[::-1])
try:
    load_experiment(None, ["task.family=reverse", "task.reverse.min_len=0"])
    error = None
except ConfigError as err:
    error = str(err)
print(json.dumps({
    "names": names(), "obs": obs["text"], "word": word,
    "wrong": wrong[1:4], "right": right[1:4], "error": error,
    "suites": list(fam.suites(cfg.task.active_dict())),
}))
"""


def test_an_installed_plugin_validates_and_plays(tmp_path) -> None:
    env = env_with(install_plugin(tmp_path / "site"))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert "reverse" in got["names"] and {"generalpoints", "virl"} <= set(got["names"])
    assert got["obs"] == f"Write {got['word']} backwards."
    assert got["wrong"] == [0.0, False, False] and got["right"] == [1.0, True, False]
    assert got["error"].startswith("task.reverse.min_len: must be in [1, max_len=")
    assert got["suites"] == ["in_distribution", "ood_longer"]
    listed = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "tasks"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "reverse: reverse a word" in listed.stdout, listed.stderr[-2000:]


def test_without_the_plugin_the_family_is_unknown(tmp_path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "cluster.cli",
            "config",
            "show",
            "configs/cpu/quick.yaml",
            "task.family=reverse",
        ],
        cwd=ROOT,
        env=env_with(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "task.family: task family 'reverse' is not registered" in out.stderr
