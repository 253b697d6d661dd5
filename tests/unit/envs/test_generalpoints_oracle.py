"""Oracle answers always verify, under both rules and both observation modes; prompt wording."""

import numpy as np
import pytest

from envs.generalpoints.config import GeneralPointsConfig
from envs.generalpoints.deal import deal_task
from envs.generalpoints.oracle import oracle_answer, oracle_formula
from envs.generalpoints.prompts import initial_prompt
from verifier.generalpoints import GeneralPointsVerifier
from verifier.generalpoints_rules import make_task


@pytest.mark.parametrize("rule", ["ten", "ordinal"])
@pytest.mark.parametrize("mode", ["text", "image"])
@pytest.mark.parametrize("thought", [False, True])
def test_oracle_answers_succeed(rule, mode, thought):
    cfg = GeneralPointsConfig(face_card_rule=rule, observation_mode=mode, suit_color="mixed")
    verifier = GeneralPointsVerifier(cfg)
    rng = np.random.default_rng([len(rule), len(mode), thought])
    for split in ("train", "eval"):
        c = GeneralPointsConfig.from_dict({**cfg.to_dict(), "split": split})
        for _ in range(100):
            task = deal_task(c, rng)
            verdict = verifier.verify(task, oracle_answer(task, thought=thought))
            assert verdict.success, (task, verdict)
            assert verdict.reward == 5.0


def test_oracle_on_scaled_down_task():
    cfg = GeneralPointsConfig(num_cards=2, target_mode="one_op")
    verifier = GeneralPointsVerifier(cfg)
    rng = np.random.default_rng(0)
    for _ in range(100):
        task = deal_task(cfg, rng)
        assert verifier.verify(task, oracle_answer(task)).success


def test_thought_precedes_answer():
    answer = oracle_answer(make_task(["8", "3", "8", "3"]), thought=True)
    thought, json_part = answer.rsplit("\n", 1)
    assert thought.startswith("The cards 8, 3, 8, 3 count as 8, 3, 8, 3.")
    assert json_part.startswith("{") and '"formula"' in json_part


def test_oracle_refuses_unsolvable():
    with pytest.raises(ValueError, match=r"^task"):
        oracle_formula(make_task(["A", "A", "A", "A"]))


def test_prompt_states_rule_cards_target_and_format():
    text = initial_prompt(
        make_task(["K", "3", "7", "A"], target=24, face_card_rule="ordinal"), "text"
    )
    assert text.endswith("Your cards: K, 3, 7, A.\nTarget: 24.")  # what varies comes last
    lines = text.splitlines()
    k_line = lines.index("- K counts as 13.")
    assert lines[k_line + 1 : k_line + 3] == ["- Q counts as 12.", "- J counts as 11."]
    assert '{"cards": [...], "number": [...], "formula": "..."}' in text
    assert text.isascii()
    ten = initial_prompt(make_task(["K", "3"]), "image")
    assert "J, Q and K each count as 10." in ten
    assert "K, 3" not in ten and "image" in ten and ten.endswith("Target: 24.")
