"""Prompt layout: what every episode of a suite shares comes first, so that the engines' prefix
cache and the learner's shared-prefix training compute it once. Two episodes' first user
turns, rendered with SmolLM2's chat template as rollout renders them, share >= 80% of their
tokens on GeneralPoints, and everything before the route's own instructions on V-IRL."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from envs.families import config_dict, family
from envs.generalpoints.config import GeneralPointsConfig
from envs.virl.config import VirlConfig
from learner.assets import prepare


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(prepare("smollm2-135m"))


def _render(tokenizer, text: str) -> str:
    """The first turn as rollout renders it: one user message (no system prompt of our own;
    the template adds its default), then the generation prompt."""
    messages = [{"role": "user", "content": text}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _first_turn_ids(tokenizer, text: str) -> list[int]:
    return tokenizer(_render(tokenizer, text), add_special_tokens=False)["input_ids"]


def _common(a: list[int], b: list[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def _first_texts(family_name: str, suite: dict, picks: tuple[int, int]) -> list[str]:
    fam = family(family_name)
    options = fam.eval_reset_options(suite, None, 0)
    env = fam.make_env(suite)
    return [env.reset(options=options[i])[0]["text"] for i in picks]


@pytest.mark.parametrize("mode", ["text", "image"])
def test_generalpoints_prompts_share_80_percent(tokenizer, mode: str) -> None:
    train = GeneralPointsConfig(num_cards=2, target_mode="one_op", observation_mode=mode)
    suites = family("generalpoints").suites(config_dict(train))
    assert {"in_distribution", "ood_rule"} <= set(suites)
    for name, suite in suites.items():
        a, b = _first_texts("generalpoints", suite, (0, -1))
        assert a != b
        ids_a, ids_b = _first_turn_ids(tokenizer, a), _first_turn_ids(tokenizer, b)
        shared = _common(ids_a, ids_b) / max(len(ids_a), len(ids_b))
        assert shared >= 0.8, f"{mode} {name}: {shared:.2f} of the prompt shared"


@pytest.mark.parametrize("mode", ["text", "image"])
def test_virl_prompts_share_everything_before_the_route(tokenizer, mode: str) -> None:
    train = VirlConfig(observation_mode=mode, num_routes=40)
    suites = family("virl").suites(config_dict(train))
    # in_distribution: absolute action space; ood_rule: relative; ood_visual (image): vln_mini
    assert {"in_distribution", "ood_rule"} <= set(suites)
    assert suites["ood_rule"]["action_space"] != suites["in_distribution"]["action_space"]
    for name, suite in suites.items():
        a, b = _first_texts("virl", suite, (0, 1))
        assert a != b
        ids_a, ids_b = _first_turn_ids(tokenizer, a), _first_turn_ids(tokenizer, b)
        before = _tokens_before(tokenizer, a, "\n\n[Instructions]")  # the route's own part
        assert a.index("[Output]") < a.index("[Instructions]") < a.index("[Current observation]")
        common = _common(ids_a, ids_b)
        assert common >= before, f"{mode} {name}: {common} tokens shared, {before} before route"


def _tokens_before(tokenizer, text: str, marker: str) -> int:
    """Tokens of the rendered first turn that end before ``marker`` starts."""
    prompt = _render(tokenizer, text)
    cut = prompt.index(marker)
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    return sum(1 for _, end in enc["offset_mapping"] if end <= cut)
