"""The dataset task: prompts from Parquet, JSONL or a saved dataset folder, scored by a user
function that runs bounded (a child process with a time limit), with errors naming fields."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cluster.config import load_experiment
from common.typed_config import ConfigError
from envs.dataset.env import DatasetVerifier
from envs.families import SFTRequest, family
from verifier.base import VERIFIER_ERROR_FIELD, verify_total

ROWS = [
    {"question": f"What is {a} + {b}?", "answer": a + b, "worked": f"{a + b}"}
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8)]
]
REWARD = """
import os, sys, time

def score(response, example):
    print("user prints go to stderr, not the protocol")
    if response.strip() == "boom":
        raise RuntimeError("the user function failed")
    if response.strip() == "sleep":
        time.sleep(30)
    if response.strip() == "exit":
        sys.exit(3)
    if response.strip() == "crash":
        os._exit(1)
    if response.strip() == "odd":
        return {"reward": "lots"}
    ok = response.strip() == str(example["answer"])
    return {"reward": 1.0 if ok else -0.5, "success": ok,
            "feedback": None if ok else f"attempt {example['attempt']}: not {response!r}"}

def flag(response, example):
    return response.strip() == str(example["answer"])
"""


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _save_to_disk(folder: Path, rows: list[dict]) -> Path:
    """The layout datasets' Dataset.save_to_disk writes: Arrow stream files + state.json."""
    folder.mkdir()
    table = pa.Table.from_pylist(rows)
    arrow = str(folder / "data-00000-of-00001.arrow")
    with pa.OSFile(arrow, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    state = {"_data_files": [{"filename": "data-00000-of-00001.arrow"}], "_split": "test"}
    (folder / "state.json").write_text(json.dumps(state))
    (folder / "dataset_info.json").write_text("{}")
    return folder


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    pq.write_table(pa.Table.from_pylist(ROWS), str(tmp_path / "train.parquet"))
    return {
        "train": tmp_path / "train.parquet",
        "test": _write_jsonl(tmp_path / "test.jsonl", ROWS[:2]),
        "ood": _save_to_disk(tmp_path / "ood", ROWS[2:]),
        "reward": _write_reward(tmp_path / "my_reward.py"),
    }


def _write_reward(path: Path) -> Path:
    path.write_text(REWARD)
    return path


def _overrides(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        "task.family=dataset",
        f"task.dataset.train_file={files['train']}",
        f"task.dataset.eval_files={{in_distribution: {files['test']}, ood_x: {files['ood']}}}",
        "task.dataset.prompt_column=question",
        "task.dataset.reference_columns=[answer]",
        f"task.dataset.reward_fn={files['reward']}:score",
        "study.primary_suite=ood_x",
        *extra,
    ]


def test_config_loads_and_every_format_plays(files) -> None:
    cfg = load_experiment(None, _overrides(files, "task.dataset.max_turns=2"))
    fam = family("dataset")
    suites = fam.suites(cfg.task.active_dict())
    assert list(suites) == ["in_distribution", "ood_x"]
    for name, n in (("in_distribution", 2), ("ood_x", 2)):
        options = fam.eval_reset_options(suites[name], None, 0)
        assert options == [{"row": i} for i in range(n)]
        env = fam.make_env(suites[name])
        obs, info = env.reset(options=options[1])
        row = ROWS[1 if name == "in_distribution" else 3]
        assert obs["text"] == row["question"]
        assert info["task_state"]["reference"] == {"answer": row["answer"]}
    env = fam.make_env(cfg.task.train_dict())
    obs, info = env.reset(seed=1)
    answer = info["task_state"]["reference"]["answer"]
    # A wrong answer: the function's feedback is the next user turn (a revision turn).
    obs, reward, terminated, truncated, info = env.step("nope")
    assert (reward, terminated, truncated) == (-0.5, False, False)
    assert obs["text"] == "attempt 1: not 'nope'"
    obs, reward, terminated, truncated, info = env.step(str(answer))
    assert (reward, terminated, info["attempt"]) == (1.0, True, 2)
    env.close()


def test_the_budget_truncates_with_its_penalty(files) -> None:
    cfg = load_experiment(None, _overrides(files, "task.dataset.budget_penalty=-1"))
    env = family("dataset").make_env(cfg.task.train_dict())
    env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step("wrong")
    assert (reward, terminated, truncated) == (-1.5, False, True)
    env.close()


def test_the_user_function_is_bounded_and_its_failures_are_failed_verdicts(files) -> None:
    cfg = load_experiment(None, _overrides(files, "task.dataset.reward_timeout_s=1"))
    verifier = DatasetVerifier(cfg.task.train_dict())
    state = {"prompt": "What is 1 + 2?", "reference": {"answer": 3}, "attempt": 0}
    assert verify_total(verifier, state, "3").success
    for bad in ("boom", "sleep", "exit", "crash", "odd"):
        start = time.monotonic()
        verdict = verify_total(verifier, state, bad)
        assert time.monotonic() - start < 10, bad  # the 30 s sleep was cut at 1 s
        assert not verdict.success and verdict.reward == 0.0, bad
        assert VERIFIER_ERROR_FIELD in verdict.fields, bad
        assert verify_total(verifier, state, "3").success, f"after {bad}: a fresh child"
    assert "exceeded 1 s" in verify_total(verifier, state, "sleep").fields[VERIFIER_ERROR_FIELD]
    verifier.close()


def test_a_bool_result_and_a_module_function(files, monkeypatch) -> None:
    monkeypatch.setenv("PYTHONPATH", f"{files['reward'].parent}:{Path.cwd()}")
    monkeypatch.syspath_prepend(str(files["reward"].parent))
    cfg = load_experiment(None, _overrides(files, "task.dataset.reward_fn=my_reward:flag"))
    verifier = DatasetVerifier(cfg.task.train_dict())
    state = {"prompt": "q", "reference": {"answer": 7}, "attempt": 0}
    assert verify_total(verifier, state, "7").reward == 1.0
    wrong = verify_total(verifier, state, "8")
    assert (wrong.reward, wrong.success, wrong.feedback) == (0.0, False, cfg.task.active.feedback)
    verifier.close()


def test_sft_examples_come_from_a_column(files) -> None:
    with pytest.raises(ConfigError, match=r"^sft\.enabled: .*sft_column is not set"):
        load_experiment(None, _overrides(files, "sft.enabled=true"))
    cfg = load_experiment(
        None,
        _overrides(
            files,
            "sft.enabled=true",
            "rl.enabled=true",
            "task.dataset.sft_column=worked",
            "task.dataset.system_prompt=Be brief.",
        ),
    )
    rows = list(family("dataset").sft_examples(SFTRequest(cfg.task.train_dict(), 6, seed=0)))
    assert len(rows) == 6
    for r in rows:
        system, user, assistant = json.loads(r["messages"])
        assert system == {"role": "system", "content": "Be brief."}
        row = next(x for x in ROWS if x["question"] == user["content"])
        assert assistant == {"role": "assistant", "content": row["worked"]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["task.dataset.prompt_column=q"], r"^task\.dataset\.prompt_column: column\(s\) \['q'\]"),
        (["task.dataset.reference_columns=[nope]"], r"^task\.dataset\.reference_columns: "),
        (["task.dataset.train_file=/no/such.jsonl"], r"^task\.dataset\.train_file: .*not found"),
        (["task.dataset.reward_fn=score"], r"^task\.dataset\.reward_fn: 'score' is not"),
        (["task.dataset.reward_fn=no_such_mod:f"], r"^task\.dataset\.reward_fn: module"),
        (["task.dataset.eval_files={}"], r"^task\.dataset\.eval_files: name at least one"),
        (["task.dataset.max_turns=0"], r"^task\.dataset\.max_turns: must be >= 1"),
        (["task.dataset.reward_timeout_s=0"], r"^task\.dataset\.reward_timeout_s: must be > 0"),
        (["evaluation.suites=[ood_rule]"], r"^evaluation\.suites: \['ood_rule'\] not defined"),
    ],
)
def test_bad_config_names_the_field(files, extra: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment(None, _overrides(files, *extra))


def test_a_datasetdict_folder_asks_for_a_split(files, tmp_path) -> None:
    folder = tmp_path / "dd"
    folder.mkdir()
    (folder / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(ConfigError, match=r"train_file: .*several splits.*dd/train"):
        load_experiment(None, _overrides(files, f"task.dataset.train_file={folder}"))
