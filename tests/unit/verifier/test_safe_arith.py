"""Bounded exact arithmetic on hostile text: values, rejections, and time bounds."""

import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier.safe_arith import (
    DISALLOWED,
    DIVISION_BY_ZERO,
    EMPTY,
    NUMBER_TOO_LARGE,
    OK,
    SYNTAX,
    TOO_DEEP,
    TOO_LONG,
    ArithLimits,
    safe_eval,
)


@pytest.mark.parametrize(
    ("text", "value", "numbers"),
    [
        ("8/(3-8/3)", Fraction(24), (8, 3, 8, 3)),
        (" ( 1 + 2 ) * ( 3 + 5 ) ", Fraction(24), (1, 2, 3, 5)),
        ("7/2", Fraction(7, 2), (7, 2)),
        ("1-2-3", Fraction(-4), (1, 2, 3)),
        ("((((6))))*4", Fraction(24), (6, 4)),
    ],
)
def test_values_are_exact(text, value, numbers):
    result = safe_eval(text)
    assert result.category == OK and result.ok
    assert result.value == value
    assert result.numbers == numbers


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("__import__('os')", DISALLOWED),
        ("__import__('os').system('true')", DISALLOWED),
        ("9**9**9", DISALLOWED),
        ("2**3", DISALLOWED),
        ("x + 1", DISALLOWED),
        ("abs(-3)", DISALLOWED),
        ("7 // 2", DISALLOWED),
        ("7 % 2", DISALLOWED),
        ("1.5 * 16", DISALLOWED),
        ("True + 23", DISALLOWED),
        ("-3 + 27", DISALLOWED),
        ("'24'", DISALLOWED),
        ("[24]", DISALLOWED),
        ("24 if 1 else 0", DISALLOWED),
        ("1 < 2", DISALLOWED),
        ("1/0", DIVISION_BY_ZERO),
        ("8/(3-3)", DIVISION_BY_ZERO),
        ("1 +", SYNTAX),
        ("1\x00", SYNTAX),
        ("", EMPTY),
        ("   ", EMPTY),
        ("9" * 10_000, TOO_LONG),
        ("9" * 13, NUMBER_TOO_LARGE),
        ("(" * 5000 + "1" + ")" * 5000, TOO_LONG),
        ("(" * 40 + "1" + ")" * 40, TOO_DEEP),
        ("-".join(["1"] * 100), TOO_DEEP),
    ],
)
def test_hostile_inputs_get_a_category_fast(text, category):
    start = time.perf_counter()
    result = safe_eval(text)
    assert time.perf_counter() - start < 0.5  # bounded cost; room for a loaded CI machine
    assert result.category == category
    assert result.value is None and not result.ok
    assert (result.message and text[:20] not in result.message) or not text.strip()


def test_unary_is_opt_in():
    assert safe_eval("-3 + 27", ArithLimits(allow_unary=True)).value == 24


def test_parser_failures_are_caught_when_prechecks_are_lifted():
    # With the length/depth prechecks disabled the CPython parser itself fails on deep
    # nesting (SyntaxError "too many nested parentheses" or RecursionError/MemoryError);
    # safe_eval must still answer.
    lifted = ArithLimits(max_chars=10**6, max_paren_depth=10**6)
    start = time.perf_counter()
    result = safe_eval("(" * 5000 + "1" + ")" * 5000, lifted)
    assert time.perf_counter() - start < 1.0
    assert result.category in (SYNTAX, TOO_DEEP)


def test_value_growth_is_bounded():
    # 39 twelve-digit factors fit in 512 chars and make a ~1,560-bit product: allowed.
    text = "*".join(["999999999999"] * 39)
    assert safe_eval(text).ok
    tight = ArithLimits(max_value_bits=64)
    assert safe_eval("999999999999*999999999999", tight).category == NUMBER_TOO_LARGE


def test_non_str_is_a_programming_error():
    with pytest.raises(TypeError):
        safe_eval(24)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=1000)
@given(st.text(max_size=600))
def test_arbitrary_text_never_raises(text):
    result = safe_eval(text)
    assert result.ok == (result.value is not None)


_ARITH_ALPHABET = st.sampled_from([*"0123456789+-*/() ", "**", "//", "9" * 12])


@settings(max_examples=300, deadline=1000)
@given(st.lists(_ARITH_ALPHABET, max_size=200).map("".join))
def test_arithmetic_looking_text_never_raises(text):
    result = safe_eval(text)
    if result.ok:
        assert isinstance(result.value, Fraction)
