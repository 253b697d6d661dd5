"""Tolerant extraction of the last JSON answer object from model text."""

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.json_answer import MAX_SCAN_CHARS, extract_last_object, parse_lenient


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("{'a': 'x', 'b': [1, 2,],}", {"a": "x", "b": [1, 2]}),
        (
            "{a: K, b: [K, 3, A], c: True, d: null}",
            {"a": "K", "b": ["K", 3, "A"], "c": True, "d": None},
        ),
        ('{"f": 8 / (3 - 8/3) = 24}', {"f": "8 / (3 - 8/3) = 24"}),
        ('```json\n{\n  "a": "x\\"y",\n}\n```', {"a": 'x"y'}),
        ("{\u201ca\u201d: \u201cb\u201d}", {"a": "b"}),
        ('{"a": "\\u0041", "n": -2.5}', {"a": "A", "n": -2.5}),
        ("{formula = 3*8}", {"formula": "3*8"}),
    ],
)
def test_lenient_forms(text, expected):
    assert extract_last_object(text) == expected


def test_last_object_wins_and_accept_filters():
    text = 'first {"formula": "1"} then {"formula": "2"} and a note {"x": 0}'
    assert extract_last_object(text) == {"x": 0}
    assert extract_last_object(text, accept=lambda o: "formula" in o) == {"formula": "2"}
    nested = '{"answer": {"formula": "3*8"}}'
    assert extract_last_object(nested, accept=lambda o: "formula" in o) == {"formula": "3*8"}


@pytest.mark.parametrize(
    "text", ["", "no braces", "{", "{{{{", "{'a': ", '{"a" 1}', "{" * 5000, "[" * 5000]
)
def test_no_object(text):
    assert extract_last_object(text) is None


def test_only_the_tail_is_scanned():
    text = '{"a": 1}' + " " * (MAX_SCAN_CHARS + 10)
    assert extract_last_object(text) is None


def test_parse_lenient_reports_end():
    value, end = parse_lenient('xx{"a": [1]} tail', 2)
    assert value == {"a": [1]} and end == 12


def test_adversarial_worst_case_is_bounded():
    text = '{"a": "' * 2000  # many candidates, each scanning to the end
    start = time.perf_counter()
    assert extract_last_object(text) is None
    assert time.perf_counter() - start < 0.5


@settings(max_examples=300, deadline=300)
@given(st.text(alphabet=st.sampled_from(list("{}[]:,'\"\\ aK1=\n")), max_size=400))
def test_arbitrary_structure_never_raises(text):
    result = extract_last_object(text)
    assert result is None or isinstance(result, dict)
