"""Exact, bounded evaluation of untrusted arithmetic text (+ - * / over integer literals).

Model output is hostile input. This module never calls eval: it parses with
``ast.parse(mode="eval")``, accepts only a whitelist of node types and computes with exact
Fractions. Everything is bounded *before* the parser sees the text (length, parenthesis
depth, digit-run length), because CPython's parser itself can raise RecursionError or
MemoryError on deeply nested input, and int() of a huge literal is quadratic. After parsing,
the AST's node count and depth are bounded, and so is the size of every intermediate value.

`safe_eval(text)` returns an `ArithResult` and never raises on any str input.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from fractions import Fraction

# Error categories (ArithResult.category).
OK = "ok"
TOO_LONG = "too_long"
TOO_DEEP = "too_deep"
NUMBER_TOO_LARGE = "number_too_large"
SYNTAX = "syntax_error"
DISALLOWED = "disallowed"
DIVISION_BY_ZERO = "division_by_zero"
EMPTY = "empty"


@dataclass(frozen=True)
class ArithLimits:
    """Bounds that keep evaluation cheap on any input."""

    max_chars: int = 512
    """Longest accepted expression (checked before parsing)."""
    max_paren_depth: int = 32
    """Deepest parenthesis nesting (checked before parsing; the parser recurses on nesting)."""
    max_digits: int = 12
    """Longest digit run, i.e. the largest literal (checked before parsing)."""
    max_nodes: int = 256
    """Most AST nodes."""
    max_ast_depth: int = 64
    """Deepest AST (a long a-b-c-... chain nests without parentheses)."""
    max_value_bits: int = 4096
    """Largest numerator/denominator bit length of any intermediate value."""
    allow_unary: bool = False
    """Accept unary + and - (GeneralPoints does not: '-3' is not a card's number)."""


DEFAULT_LIMITS = ArithLimits()


@dataclass(frozen=True)
class ArithResult:
    """Outcome of evaluating one expression."""

    value: Fraction | None
    """Exact value, or None when the expression was rejected."""
    numbers: tuple[int, ...]
    """Integer literals in source order (empty when rejected before evaluation)."""
    category: str
    """OK or one of the error categories of this module."""
    message: str
    """Human-readable reason when rejected ("" when OK); never quotes the input."""

    @property
    def ok(self) -> bool:
        return self.category == OK


_DIGIT_RUN = re.compile(r"\d+")
_DECIMAL = re.compile(r"[0-9]+")
_BIN_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_DISALLOWED_HINTS = {
    ast.Pow: "exponentiation (**) is not allowed",
    ast.FloorDiv: "// is not allowed, use /",
    ast.Mod: "% is not allowed",
    ast.Name: "names are not allowed, only numbers",
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not allowed",
    ast.Compare: "comparisons are not allowed",
}


def _reject(category: str, message: str) -> ArithResult:
    return ArithResult(value=None, numbers=(), category=category, message=message)


def _paren_depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def _precheck(text: str, limits: ArithLimits) -> ArithResult | None:
    if len(text) > limits.max_chars:
        return _reject(TOO_LONG, f"the formula is longer than {limits.max_chars} characters")
    if not text.strip():
        return _reject(EMPTY, "the formula is empty")
    if _paren_depth(text) > limits.max_paren_depth:
        return _reject(TOO_DEEP, f"parentheses nest deeper than {limits.max_paren_depth}")
    longest = max((len(m) for m in _DIGIT_RUN.findall(text)), default=0)
    if longest > limits.max_digits:
        return _reject(NUMBER_TOO_LARGE, f"a number has more than {limits.max_digits} digits")
    return None


def _parse(text: str) -> ast.Expression | ArithResult:
    try:
        # The parser warns on some hostile text (e.g. "1if": "invalid decimal literal"); a
        # model's answer must not print to the run's log, and the text is rejected anyway.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            return ast.parse(text.strip(), mode="eval")
    # Deliberate, narrow safety net: these are the documented ways ast.parse fails on hostile
    # text (bad syntax; null bytes -> ValueError; pathological input -> RecursionError or
    # MemoryError, which the prechecks should already prevent). Nothing else is swallowed.
    except SyntaxError:
        return _reject(SYNTAX, "the formula is not valid arithmetic syntax")
    except (ValueError, RecursionError, MemoryError, OverflowError):
        return _reject(SYNTAX, "the formula could not be parsed")


def _check_literal(node: ast.Constant, source: str, limits: ArithLimits) -> ArithResult | None:
    """A literal is plain decimal digits within max_digits: Python also reads 0x1F, 0b101,
    0o17 and 1_000 as ints, and those slip past the digit-run precheck (0xFFFF... has no long
    run of digits), so the literal's own source text is checked."""
    lines = source.splitlines() or [""]
    if node.end_lineno != node.lineno or node.end_col_offset is None:
        return _reject(DISALLOWED, "only decimal whole numbers are allowed")
    # The AST's offsets count UTF-8 bytes, not characters.
    line = lines[node.lineno - 1].encode("utf-8")
    literal = line[node.col_offset : node.end_col_offset].decode("utf-8", errors="replace")
    if not _DECIMAL.fullmatch(literal):
        return _reject(DISALLOWED, "only decimal whole numbers are allowed (no 0x, 0b, 0o, _)")
    if len(literal) > limits.max_digits:
        return _reject(NUMBER_TOO_LARGE, f"a number has more than {limits.max_digits} digits")
    return None


def _check_tree(tree: ast.Expression, source: str, limits: ArithLimits) -> ArithResult | None:
    """Whitelist walk with an explicit stack (no recursion), bounding size and depth."""
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    count = 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            return _reject(TOO_LONG, f"the formula has more than {limits.max_nodes} parts")
        if depth > limits.max_ast_depth:
            return _reject(TOO_DEEP, f"the formula nests deeper than {limits.max_ast_depth}")
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _BIN_OPS:
                hint = _DISALLOWED_HINTS.get(type(node.op), "only + - * / are allowed")
                return _reject(DISALLOWED, hint)
            stack.append((node.left, depth + 1))
            stack.append((node.right, depth + 1))
        elif isinstance(node, ast.UnaryOp):
            if not limits.allow_unary or not isinstance(node.op, ast.USub | ast.UAdd):
                return _reject(DISALLOWED, "unary operators (like -3) are not allowed")
            stack.append((node.operand, depth + 1))
        elif isinstance(node, ast.Constant):
            if type(node.value) is not int:  # excludes bool, float, str, complex
                return _reject(DISALLOWED, "only whole numbers are allowed")
            rejected = _check_literal(node, source, limits)
            if rejected is not None:
                return rejected
        else:
            hint = _DISALLOWED_HINTS.get(type(node), "only numbers, + - * / and ( ) are allowed")
            return _reject(DISALLOWED, hint)
    return None


class _Abort(Exception):
    """Internal: stop evaluation with a result (never escapes safe_eval)."""

    def __init__(self, result: ArithResult) -> None:
        super().__init__(result.message)
        self.result = result


def _evaluate(node: ast.AST, numbers: list[int], limits: ArithLimits) -> Fraction:
    # Recursion is safe: _check_tree bounded the depth at max_ast_depth (<< recursion limit).
    if isinstance(node, ast.Constant):
        numbers.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, numbers, limits)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.BinOp)
    a = _evaluate(node.left, numbers, limits)
    b = _evaluate(node.right, numbers, limits)
    op = type(node.op)
    if op is ast.Add:
        value = a + b
    elif op is ast.Sub:
        value = a - b
    elif op is ast.Mult:
        value = a * b
    else:
        if b == 0:
            raise _Abort(_reject(DIVISION_BY_ZERO, "the formula divides by zero"))
        value = a / b
    if max(value.numerator.bit_length(), value.denominator.bit_length()) > limits.max_value_bits:
        raise _Abort(_reject(NUMBER_TOO_LARGE, "an intermediate value is too large"))
    return value


def safe_eval(text: str, limits: ArithLimits = DEFAULT_LIMITS) -> ArithResult:
    """Evaluate `text` exactly, or say why not. Never raises for a str argument."""
    if not isinstance(text, str):
        raise TypeError(f"safe_eval expects str, got {type(text).__name__}")
    rejected = _precheck(text, limits)
    if rejected is not None:
        return rejected
    tree = _parse(text)
    if isinstance(tree, ArithResult):
        return tree
    rejected = _check_tree(tree, text.strip(), limits)
    if rejected is not None:
        return rejected
    numbers: list[int] = []
    try:
        value = _evaluate(tree.body, numbers, limits)
    except _Abort as abort:
        return abort.result
    return ArithResult(value=value, numbers=tuple(numbers), category=OK, message="")
