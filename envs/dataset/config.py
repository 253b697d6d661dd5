"""Typed config of the dataset task (``task.dataset``).

Paths become absolute at load time, so every process (each Ray worker, whatever its working
directory) reads the same files. The files' columns and the reward function's module are
checked at load time too, so a typo fails before a run starts, naming the field.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from envs.dataset.files import DataFileError, columns

TRAIN, VALIDATION = "train", "validation"


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path)) if path else path


def resolve_reward_ref(ref: str) -> str:
    """``module:function`` or ``path/to/file.py:function``, the path made absolute."""
    target, sep, func = ref.rpartition(":")
    if not sep or not target or not func.isidentifier():
        raise ValueError(
            f"reward_fn: {ref!r} is not 'module:function' or 'path/to/file.py:function'"
        )
    if target.endswith(".py"):
        path = _abs(target)
        if not Path(path).is_file():
            raise ValueError(f"reward_fn: file {path} not found")
        return f"{path}:{func}"
    try:
        found = importlib.util.find_spec(target)
    except (ImportError, ValueError):
        found = None
    if found is None:
        raise ValueError(
            f"reward_fn: module {target!r} is not importable; put its folder on PYTHONPATH "
            "(every Ray worker needs it) or name the file: path/to/file.py:function"
        )
    return ref


@dataclass
class DatasetTaskConfig:
    """Prompts from files, answers scored by a reward function you write."""

    train_file: str = ""
    """Training prompts: a .parquet file, a .jsonl file (one JSON object per line) or a folder
    a Hugging Face dataset was saved to with save_to_disk (for a DatasetDict, the split's
    subfolder). Relative paths are resolved from the working directory."""
    eval_files: dict[str, str] = field(default_factory=dict)
    """Evaluation suites: suite name -> file (same formats), e.g. {in_distribution: ...,
    ood_larger: ...}. Each suite plays each of its rows once. List the ID suite first."""
    validation_file: str | None = None
    """Held-out prompts for tuning (`veriray tune` plays the validation suite); never
    evaluated unless evaluation.suites names validation."""
    prompt_column: str = "prompt"
    """The column holding the prompt text (the first user turn)."""
    reference_columns: list[str] = field(default_factory=list)
    """Columns handed to the reward function with the prompt (answers, labels, test cases).
    Their values must be JSON-able (they travel with the episode to the verifier)."""
    system_prompt: str | None = None
    """A system message before every prompt (None = no system message)."""
    reward_fn: str = ""
    """The reward function, 'module:function' (importable in every Ray worker) or
    'path/to/file.py:function'. Called as fn(response: str, example: dict) where example
    holds "prompt", "attempt" (1-based) and the reference columns; returns a dict
    {"reward": float, "success": bool, "feedback": str (optional)}, a bool (success;
    reward 1 or 0) or a number (the reward; success when > 0)."""
    reward_timeout_s: float = 5.0
    """Time limit per call of the reward function. It runs in a child process of the
    verifier; one that runs over is killed and the answer scored as failed."""
    failure_reward: float = 0.0
    """Reward of an answer the reward function could not score (it raised, ran over its
    time limit, crashed or returned something else than documented) and of an empty
    answer (the function is not called for one)."""
    max_turns: int = 1
    """Verification budget: answers per prompt. A failed answer's feedback is the next user
    turn (as in the study's revision turns) until one succeeds or max_turns are spent."""
    budget_penalty: float = 0.0
    """Added to the last answer's reward when max_turns answers all failed (e.g. -1)."""
    feedback: str = "Your answer is not correct. Try again."
    """Feedback on a failed answer when the reward function gives none."""
    sft_column: str | None = None
    """A column with an expert answer per training row: SFT examples (the SFT warm start and
    the SFT arm need it). None = no SFT examples (run with sft.enabled: false)."""
    split: str = TRAIN
    """Which prompts the env plays: train, validation or an eval_files name. The stages set
    it (training: train; each suite: its own); leave it at train."""

    def __post_init__(self) -> None:
        if not self.train_file:
            raise ValueError("train_file: required: the training prompts (.parquet, .jsonl)")
        if not self.eval_files:
            raise ValueError(
                "eval_files: name at least one evaluation file, e.g. "
                "{in_distribution: data/test.jsonl, ood_larger: data/ood.jsonl}"
            )
        for name in self.eval_files:
            if not name.isidentifier() or name in (TRAIN, VALIDATION):
                raise ValueError(
                    f"eval_files: suite name {name!r}: use an identifier other than "
                    f"{TRAIN} and {VALIDATION}"
                )
        self.train_file = _abs(self.train_file)
        self.eval_files = {k: _abs(v) for k, v in self.eval_files.items()}
        self.validation_file = _abs(self.validation_file) if self.validation_file else None
        if self.split not in (TRAIN, VALIDATION, *self.eval_files):
            raise ValueError(
                f"split: {self.split!r} is not train, validation or an eval_files name"
            )
        if self.split == VALIDATION and self.validation_file is None:
            raise ValueError("validation_file: the validation split needs one")
        if not self.reward_fn:
            raise ValueError("reward_fn: required: 'module:function' or 'file.py:function'")
        self.reward_fn = resolve_reward_ref(self.reward_fn)
        if not (math.isfinite(self.reward_timeout_s) and self.reward_timeout_s > 0):
            raise ValueError(f"reward_timeout_s: must be > 0, got {self.reward_timeout_s}")
        if self.max_turns < 1:
            raise ValueError(f"max_turns: must be >= 1, got {self.max_turns}")
        if not self.prompt_column:
            raise ValueError("prompt_column: must name a column")
        self._check_columns()

    def files(self) -> dict[str, str]:
        """Field name -> file, for every file the config names."""
        out = {"train_file": self.train_file}
        out |= {f"eval_files.{k}": v for k, v in self.eval_files.items()}
        if self.validation_file:
            out["validation_file"] = self.validation_file
        return out

    def _check_columns(self) -> None:
        for name, path in self.files().items():
            try:
                have = columns(path)
            except DataFileError as err:
                raise ValueError(f"{name}: {err}") from err
            need = {"prompt_column": [self.prompt_column]}
            need["reference_columns"] = list(self.reference_columns)
            if name == "train_file" and self.sft_column:
                need["sft_column"] = [self.sft_column]
            for fld, cols in need.items():
                missing = [c for c in cols if c not in have]
                if missing:
                    raise ValueError(
                        f"{fld}: column(s) {missing} not in {name} {path}; it has {have}"
                    )

    def path(self) -> str:
        """The file of this config's split."""
        if self.split == TRAIN:
            return self.train_file
        if self.split == VALIDATION:
            assert self.validation_file is not None
            return self.validation_file
        return self.eval_files[self.split]
