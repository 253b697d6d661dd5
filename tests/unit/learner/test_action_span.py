"""Answer/reasoning token masks from the parsed response, with real offline tokenizers.

The tokenizers are trained in memory here (no hub access).
"""

import itertools
import time

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from learner import action_span
from learner.action_span import (
    answer_char_span,
    response_masks,
    token_char_offsets,
    token_masks_from_offsets,
)
from learner.assets.tokenizer import train_byte_bpe
from verifier.json_answer import MAX_SCAN_CHARS

GP_ANSWER = '{"cards": ["K", "3", "8", "A"], "number": [10, 3, 8, 1], "formula": "(10-8+1)*8"}'
VIRL_ANSWER = '{"current observation": "bakery on the right", "action": "turn_direction(east)"}'
CORPUS = [
    "Let me think step by step. 10 - 8 = 2, 2 + 1 = 3, 3 * 8 = 24. " + GP_ANSWER,
    "I am at the intersection; the instruction says turn east. " + VIRL_ANSWER,
    "Cards: café, naïve, 🂡 ♠ ♥ — fine.",
] * 20


@pytest.fixture(scope="module")
def byte_bpe():
    """The project's byte-level BPE (learner.assets), trained here on a few lines."""
    return train_byte_bpe(CORPUS, vocab_size=300)


@pytest.fixture(scope="module")
def metaspace_bpe():
    """A SentencePiece-style tokenizer (word-initial '▁', dropped on decode at the start)."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>", "</s>"], show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="</s>")


# ----------------------------------------------------------------------------- the span


@pytest.mark.parametrize("answer", [GP_ANSWER, VIRL_ANSWER])
def test_span_is_the_final_object_after_reasoning(answer):
    reasoning = "Think: {not json here. Also {'x': 1} was an idea.\n```json\n"
    text = reasoning + answer + "\n```"
    assert answer_char_span(text) == (len(reasoning), len(reasoning) + len(answer))


def test_span_widens_to_an_enclosing_object_and_accept_picks_the_graded_one():
    text = 'ok {"answer": {"formula": "3*8"}, "note": "x"} trailing'
    assert answer_char_span(text) == (3, text.index(" trailing"))
    # With the verifier's test, a later non-answer object is skipped.
    text = 'r {"formula": "3*8"} then {"x": 0}'
    has_formula = lambda obj: "formula" in obj  # noqa: E731
    assert answer_char_span(text) == (text.index('{"x"'), len(text))
    assert answer_char_span(text, accept=has_formula) == (2, text.index(" then"))


def test_span_skips_a_broken_trailing_brace_and_handles_no_object():
    text = 'r {"formula": "3*8"} {oops'
    assert answer_char_span(text) == (2, text.index(" {oops"))
    assert answer_char_span("forward()") is None
    assert answer_char_span("") is None
    with pytest.raises(TypeError):
        answer_char_span(None)


def test_span_is_bounded_on_adversarial_text():
    text = "{" * 200_000 + "x" + "{'a': [" * 5000
    start = time.perf_counter()
    assert answer_char_span(text) is None
    long_reasoning = "a" * (3 * MAX_SCAN_CHARS) + GP_ANSWER  # offsets are of the full text
    assert answer_char_span(long_reasoning) == (3 * MAX_SCAN_CHARS, len(long_reasoning))
    assert time.perf_counter() - start < 2.0


# ----------------------------------------------------------------------------- masks


def test_masks_from_offsets_by_hand():
    # text "ab {x:1}<eos>", span [3, 8): tokens "ab" (0,2), " {" (2,4) straddles the start,
    # "x:1}" (4,8), eos (8,8) after the span; a zero-width token at 0 precedes everything.
    offsets = [(0, 0), (0, 2), (2, 4), (4, 8), (8, 8)]
    answer, reasoning = token_masks_from_offsets(offsets, (3, 8))
    assert reasoning.tolist() == [True, True, False, False, False]
    assert answer.tolist() == [False, False, True, True, True]
    answer, reasoning = token_masks_from_offsets(offsets, None)  # no answer: all action
    assert answer.all() and not reasoning.any()
    assert answer.dtype == torch.bool


@pytest.mark.parametrize("tok_name", ["byte_bpe", "metaspace_bpe"])
@pytest.mark.parametrize("answer", [GP_ANSWER, VIRL_ANSWER])
def test_response_masks_with_real_tokenizers(request, tok_name, answer):
    tok = request.getfixturevalue(tok_name)
    reasoning = "Let me think: 10 - 8 = 2, café 🂡, then 3 * 8 = 24.\n"
    text = reasoning + answer
    ids = tok(text, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    answer_mask, reasoning_mask = response_masks(tok, text, ids)
    assert len(answer_mask) == len(ids) and not (answer_mask & reasoning_mask).any()
    assert (answer_mask | reasoning_mask).all()
    n_reason = int(reasoning_mask.sum())
    assert reasoning_mask[:n_reason].all()  # reasoning is a prefix, answer the rest
    assert answer_mask[-1]  # the end-of-turn token belongs to the action
    head = tok.decode(ids[:n_reason], skip_special_tokens=True)
    tail = tok.decode(ids[n_reason:], skip_special_tokens=True)
    assert text.startswith(head) and len(head) <= len(reasoning)
    assert answer in tail and len(reasoning) - len(head) < 4  # at most a straddling merge


def test_offsets_tile_the_text_and_agree_with_the_exact_path(byte_bpe, metaspace_bpe):
    text = "Naïve café 🂡🂱 — ♠♥ " * 5 + GP_ANSWER
    for tok in (byte_bpe, metaspace_bpe):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        decoded, offsets = token_char_offsets(tok, ids)
        assert offsets[0][0] == 0 and offsets[-1][1] == len(decoded)
        assert all(a[1] == b[0] and a[0] <= a[1] for a, b in itertools.pairwise(offsets))
        fast = action_span._windowed_ends(tok, ids, decoded)
        assert fast == action_span._prefix_ends(tok, ids, decoded)
    # Byte-level BPE splits multi-byte characters over tokens; the pieces still rebuild it.
    ids = byte_bpe(text, add_special_tokens=False)["input_ids"]
    decoded, offsets = token_char_offsets(byte_bpe, ids)
    assert "".join(decoded[a:b] for a, b in offsets) == decoded == text
    assert token_char_offsets(byte_bpe, []) == ("", [])


class LigatureDecoder:
    """Token i is the character chr(i); decoding rewrites 'ab' into 'X' across tokens."""

    def batch_decode(self, sequences, **_):
        return ["".join(chr(i) for i in seq).replace("ab", "X") for seq in sequences]


def test_exact_path_runs_when_windowed_pieces_do_not_add_up():
    ids = [ord(c) for c in "zab{q:1}"]
    assert action_span._windowed_ends(LigatureDecoder(), ids, "zX{q:1}") is None
    text, offsets = token_char_offsets(LigatureDecoder(), ids)
    assert text == "zX{q:1}"
    assert offsets[:3] == [(0, 1), (1, 1), (1, 2)]  # 'a' waits for 'b' to become 'X'
    _, reasoning = response_masks(LigatureDecoder(), text, ids)
    assert reasoning.tolist() == [True] * 3 + [False] * 5


def test_engine_text_that_differs_from_the_tokens(byte_bpe):
    reasoning, tail = "Think: 3 * 8 = 24.\n", "\nSTOP"
    ids = byte_bpe(reasoning + GP_ANSWER + tail, add_special_tokens=False)["input_ids"]
    expected = response_masks(byte_bpe, reasoning + GP_ANSWER + tail, ids)
    # An engine that trimmed the stop string: the span still lines up with the tokens.
    trimmed = response_masks(byte_bpe, reasoning + GP_ANSWER, ids)
    # A text that disagrees before the span: the span is looked up in the decoded tokens.
    shifted = response_masks(byte_bpe, "PREFIX " + reasoning + GP_ANSWER, ids)
    for got in (trimmed, shifted):
        assert all(torch.equal(g, e) for g, e in zip(got, expected))
    assert expected[1].any()


@settings(max_examples=40, deadline=None)
@given(
    reasoning=st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=60
    ),
    number=st.integers(-99, 99),
)
def test_property_reasoning_is_exactly_the_text_before_the_answer(byte_bpe, reasoning, number):
    answer = f'{{"formula": "{number}*1"}}'
    text = reasoning.replace("{", "(").replace("}", ")") + answer
    ids = byte_bpe(text, add_special_tokens=False)["input_ids"]
    answer_mask, reasoning_mask = response_masks(byte_bpe, text, ids)
    assert (answer_mask ^ reasoning_mask).all()
    n_reason = int(reasoning_mask.sum())
    assert reasoning_mask[:n_reason].all()
    head = byte_bpe.decode(ids[:n_reason]).rstrip("\ufffd")  # may end in half a character
    assert answer in byte_bpe.decode(ids[n_reason:])  # the whole answer is answer tokens
    assert text.startswith(head) and len(head) <= len(text) - len(answer)  # nothing of it before
