"""Config validation, dict round trips and the task state."""

import dataclasses
import itertools
import json
from pathlib import Path

import pytest

from envs.generalpoints.config import GeneralPointsConfig
from verifier.generalpoints_rules import (
    Card,
    GeneralPointsTask,
    RewardTable,
    make_task,
    parse_rank,
    rank_value,
)


def test_defaults_are_the_papers():
    cfg = GeneralPointsConfig()
    assert (cfg.num_cards, cfg.target, cfg.face_card_rule, cfg.viter) == (4, 24, "ten", 5)
    r = cfg.rewards
    assert (
        r.correct,
        r.wrong_value,
        r.wrong_numbers,
        r.illegal_formula,
        r.wrong_cards,
        r.budget_exceeded,
    ) == (5, -1, -2, -3, -1.5, -1)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("face_card_rule", "x", "face_card_rule: 'x' is not one of ['ten', 'ordinal']"),
        ("suit_color", "green", "suit_color: 'green' is not one of ['black', 'red', 'mixed']"),
        ("observation_mode", "audio", "observation_mode: 'audio' is not one of"),
        ("target_mode", "two_op", "target_mode: 'two_op' is not one of ['fixed', 'one_op']"),
        ("split", "test", "split: 'test' is not one of ['train', 'validation', 'eval', 'all']"),
        ("validation_fraction", 0.9, "validation_fraction: 0.9 + heldout_fraction"),
        ("num_cards", 9, "num_cards: 9 is not in [2, 5]"),
        ("num_cards", True, "num_cards: True is not an integer"),
        ("viter", 0, "viter: 0 is not in"),
        ("heldout_fraction", 1.0, "heldout_fraction:"),
        ("image_size", 10, "image_size:"),
    ],
)
def test_invalid_values_name_the_field(field, value, message):
    with pytest.raises(ValueError) as err:
        GeneralPointsConfig(**{field: value})
    assert str(err.value).startswith(message)


def test_cross_field_check_eval_needs_heldout():
    with pytest.raises(ValueError, match=r"^heldout_fraction"):
        GeneralPointsConfig(split="eval", heldout_fraction=0.0)


def test_every_field_has_a_docstring():
    import ast
    import inspect

    for cls in (GeneralPointsConfig, RewardTable):
        tree = ast.parse(inspect.getsource(inspect.getmodule(cls)))
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls.__name__)
        body = node.body
        documented = {
            stmt.target.id
            for stmt, nxt in itertools.pairwise(body)
            if isinstance(stmt, ast.AnnAssign)
            and isinstance(nxt, ast.Expr)
            and isinstance(nxt.value, ast.Constant)
            and isinstance(nxt.value.value, str)
        }
        assert documented == {f.name for f in dataclasses.fields(cls)}


def test_dict_round_trip_and_unknown_keys():
    cfg = GeneralPointsConfig(face_card_rule="ordinal", rewards=RewardTable(correct=10.0))
    data = json.loads(json.dumps(cfg.to_dict()))
    assert GeneralPointsConfig.from_dict(data) == cfg
    with pytest.raises(ValueError, match="unknown field"):
        GeneralPointsConfig.from_dict({"num_card": 4})
    with pytest.raises(ValueError, match="rewards: unknown field"):
        GeneralPointsConfig.from_dict({"rewards": {"right": 1}})
    with pytest.raises(ValueError, match=r"^rewards.correct"):
        RewardTable(correct=float("nan"))


def test_an_experiment_that_still_sets_stack_penalties_fails_naming_it():
    # The removed option is refused where configs are read (the experiment YAML), with why.
    from cluster.config import ExperimentConfig
    from common.typed_config import load

    quick = Path(__file__).resolve().parents[3] / "configs" / "cpu" / "quick.yaml"
    with pytest.raises(ValueError, match=r"task\.generalpoints\.stack_penalties: removed: .*study"):
        load(ExperimentConfig, quick, ["task.generalpoints.stack_penalties=true"])


def test_rank_values_under_both_rules():
    assert [rank_value(r, "ten") for r in ("A", "7", "10", "J", "Q", "K")] == [1, 7, 10, 10, 10, 10]
    assert [rank_value(r, "ordinal") for r in ("A", "J", "Q", "K")] == [1, 11, 12, 13]


@pytest.mark.parametrize(
    ("token", "rank"),
    [
        ("K", "K"),
        ("king", "K"),
        ("King of Spades", "K"),
        ("q\u2665", "Q"),
        (10, "10"),
        ("10", "10"),
        (" a ", "A"),
        (1, "A"),
        (13, "K"),
        ("ten", "10"),
        ("Z", None),
        (True, None),
        (2.5, None),
        ("x" * 100, None),
    ],
)
def test_parse_rank(token, rank):
    assert parse_rank(token) == rank


def test_task_state_round_trip():
    task = GeneralPointsTask(
        (Card("K", "hearts"), Card("3", "clubs"), Card("A", "spades"), Card("7", "diamonds")),
        24,
        "ordinal",
    )
    data = json.loads(json.dumps(task.to_dict()))
    assert data["numbers"] == [13, 3, 1, 7]
    assert GeneralPointsTask.from_dict(data) == task
    assert make_task(["K", "3"]).numbers == (10, 3)
    with pytest.raises(ValueError, match=r"^suit"):
        Card("K", "stars")


def test_task_modules_import_no_heavy_frameworks():
    import subprocess
    import sys

    code = (
        "import sys, envs.generalpoints, envs.generalpoints.env, verifier.generalpoints;"
        "print(sorted(m for m in ('torch', 'ray', 'vllm') if m in sys.modules))"
    )
    repo_root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert out.stdout.strip() == "[]"
