"""Tolerant extraction of a JSON answer object from free model text (any task).

Models wrap answers in prose and code fences, use single quotes, leave trailing commas, write
Python literals (True/None) or bare words ([K, 3, A]), and sometimes several objects. This
module finds the *last* object that a caller accepts, with a small hand-written parser that is
lenient about all of the above and bounded on any input:

* only the last `MAX_SCAN_CHARS` characters are read (the answer comes last);
* at most `MAX_CANDIDATES` opening braces are tried, from the end backwards;
* nesting depth is capped, and the parser is iterative over containers' items, recursive only
  in depth (so it cannot hit the interpreter's recursion limit).

Grammar accepted: objects, arrays, strings in ' or " (or curly quotes), numbers, true/false/
null/True/False/None, and bare scalars (anything up to the next , } ] or newline, trimmed),
e.g. `{formula: 8/(3-8/3) = 24}`. Duplicate keys: the last wins, as in json.loads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

MAX_SCAN_CHARS = 8000
MAX_CANDIDATES = 32
MAX_DEPTH = 16

_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}
_LITERALS = {"true": True, "false": False, "null": None, "none": None}
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?")
_INTEGER = re.compile(r"[+-]?\d+")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_BARE_END = ",}]\n"
_BARE_KEY_END = ":=,}]\n"
_MAX_NUMBER_CHARS = 40  # longer digit strings stay strings (no quadratic int parsing)


class JsonAnswerError(ValueError):
    """The text at the given position is not a (lenient) JSON value."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_ws(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n and text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def value(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise JsonAnswerError("nested too deeply")
        self._skip_ws()
        ch = self._peek()
        if ch == "{":
            return self._object(depth)
        if ch == "[":
            return self._array(depth)
        if ch in _QUOTES:
            return self._string()
        if ch == "" or ch in ",:}]":
            raise JsonAnswerError(f"expected a value at {self.pos}")
        return self._bare(_BARE_END)

    def _object(self, depth: int) -> dict[str, Any]:
        self.pos += 1  # "{"
        out: dict[str, Any] = {}
        while True:
            self._skip_ws()
            ch = self._peek()
            if ch == "}":
                self.pos += 1
                return out
            if ch == ",":  # tolerate stray/trailing commas
                self.pos += 1
                continue
            if ch == "":
                raise JsonAnswerError("unterminated object")
            key = self._string() if ch in _QUOTES else self._bare(_BARE_KEY_END)
            self._skip_ws()
            if self._peek() not in (":", "="):
                raise JsonAnswerError(f"expected ':' at {self.pos}")
            self.pos += 1
            out[str(key)] = self.value(depth + 1)

    def _array(self, depth: int) -> list[Any]:
        self.pos += 1  # "["
        out: list[Any] = []
        while True:
            self._skip_ws()
            ch = self._peek()
            if ch == "]":
                self.pos += 1
                return out
            if ch == ",":
                self.pos += 1
                continue
            if ch == "":
                raise JsonAnswerError("unterminated array")
            out.append(self.value(depth + 1))

    def _string(self) -> str:
        close = _QUOTES[self.text[self.pos]]
        self.pos += 1
        text, n = self.text, len(self.text)
        parts: list[str] = []
        while self.pos < n:
            ch = text[self.pos]
            if ch == close:
                self.pos += 1
                return "".join(parts)
            if ch == "\\" and self.pos + 1 < n:
                nxt = text[self.pos + 1]
                code = text[self.pos + 2 : self.pos + 6]
                if nxt == "u" and _HEX4.fullmatch(code):
                    parts.append(chr(int(code, 16)))
                    self.pos += 6
                    continue
                parts.append(_ESCAPES.get(nxt, nxt))
                self.pos += 2
                continue
            parts.append(ch)
            self.pos += 1
        raise JsonAnswerError("unterminated string")

    def _bare(self, stops: str) -> Any:
        start, text, n = self.pos, self.text, len(self.text)
        while self.pos < n and text[self.pos] not in stops:
            self.pos += 1
        raw = text[start : self.pos].strip()
        if not raw:
            raise JsonAnswerError(f"expected a value at {start}")
        return _scalar(raw)


def _scalar(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in _LITERALS:
        return _LITERALS[lowered]
    if len(raw) <= _MAX_NUMBER_CHARS and _NUMBER.fullmatch(raw):
        if _INTEGER.fullmatch(raw):
            return int(raw)  # exact: float() would round past 2**53
        number = float(raw)
        # 1e309 overflows to inf: a number no answer field can use, so it stays text.
        return number if math.isfinite(number) else raw
    return raw


def parse_lenient(text: str, start: int = 0) -> tuple[Any, int]:
    """Parse one lenient JSON value at `start`; returns (value, end). Raises JsonAnswerError."""
    parser = _Parser(text)
    parser.pos = start
    return parser.value(0), parser.pos


def extract_last_object(
    text: str, accept: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any] | None:
    """The last object in `text` (by opening brace) that parses and that `accept` approves.

    Bounded on any input (see the module docstring); returns None when nothing qualifies.
    Objects nested in a later object are candidates too, so {"answer": {"formula": ...}}
    yields the inner object when `accept` asks for a formula.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    window = text[-MAX_SCAN_CHARS:]
    pos = len(window)
    for _ in range(MAX_CANDIDATES):
        pos = window.rfind("{", 0, pos)
        if pos < 0:
            return None
        try:
            value, _end = parse_lenient(window, pos)
        except JsonAnswerError:
            continue
        if isinstance(value, dict) and (accept is None or accept(value)):
            return value
    return None
