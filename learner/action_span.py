"""Split a response's tokens into reasoning and answer, from the parsed text, not token ids.

The study weights the log-prob of reasoning tokens by a thought coefficient (0.5) and answer
tokens by 1. Both tasks end the response with a JSON object (GeneralPoints: cards, numbers and
formula; V-IRL: the action), with free reasoning before it. So:

* answer span  = the last top-level object in the text that parses as (lenient) JSON;
  an object that encloses it counts as the answer too ({"answer": {"formula": ...}});
* reasoning    = every token that ends at or before the span's start;
* answer       = tokens overlapping the span, and every token after it. The tail (closing code
  fence, end-of-turn token, a trailing remark) terminates the committed action, so it is
  weighted like the action rather than like thought; a token straddling the span's start
  (a BPE merge such as ' {"') belongs to the answer;
* no object    = the whole response is the action: every token is an answer token.

The scan reuses the verifier's bounded lenient parser (`verifier.json_answer`): only the last
MAX_SCAN_CHARS characters are read, at most MAX_CANDIDATES opening braces are tried, nesting
is capped, nothing is ever evaluated. Character offsets of tokens come from decoding prefixes
of the token ids, which works for any tokenizer (fast or slow, byte-level or SentencePiece).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from verifier.json_answer import MAX_CANDIDATES, MAX_SCAN_CHARS, JsonAnswerError, parse_lenient

Span = tuple[int, int]  # [start, end) character offsets
CONTEXT_TOKENS = 8  # tokens of left context when decoding one token: covers a 4-byte UTF-8
# character split over single bytes, and tokenizers that drop the first token's space
_REPLACEMENT = "\ufffd"  # what decoders emit for an incomplete UTF-8 sequence


class Decoder(Protocol):
    """The part of a (transformers) tokenizer `token_char_offsets` uses."""

    def batch_decode(self, sequences: list[list[int]], **kwargs: Any) -> list[str]: ...


def answer_char_span(
    text: str, accept: Callable[[dict[str, Any]], bool] | None = None
) -> Span | None:
    """[start, end) of the final top-level JSON answer object in ``text``, or None.

    Candidates are opening braces from the end backwards; the first that parses (and that
    ``accept`` approves, when given: pass the verifier's own test so the span is the object
    it graded) is the answer. Earlier braces whose object encloses it widen the span to the
    enclosing object; the first earlier object that ends before it (one in the reasoning)
    stops the scan.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    offset = max(0, len(text) - MAX_SCAN_CHARS)
    window = text[offset:]
    span: Span | None = None
    pos = len(window)
    for _ in range(MAX_CANDIDATES):
        pos = window.rfind("{", 0, pos)
        if pos < 0:
            break
        try:
            value, end = parse_lenient(window, pos)
        except JsonAnswerError:
            continue
        if span is None:
            if accept is None or (isinstance(value, dict) and accept(value)):
                span = (pos, end)
        elif end >= span[1]:
            span = (pos, end)  # encloses the answer: the container is the action
        else:
            break  # a separate, earlier object: reasoning from here on
    return None if span is None else (span[0] + offset, span[1] + offset)


def token_masks_from_offsets(
    offsets: Sequence[tuple[int, int]], span: Span | None
) -> tuple[Tensor, Tensor]:
    """(answer_mask (T,) bool, reasoning_mask (T,) bool) from per-token character offsets.

    ``offsets`` are [start, end) pairs, T of them, as fast tokenizers return with
    ``return_offsets_mapping=True`` or `token_char_offsets` computes. Every token is in
    exactly one mask. Without a span all tokens are answer tokens.
    """
    n = len(offsets)
    if span is None:
        return torch.ones(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    start = span[0]
    # A token is reasoning iff it ends at or before the span's start (a zero-width token there,
    # e.g. an undecodable partial byte, goes with the reasoning it follows).
    reasoning = torch.tensor([end <= start for _, end in offsets], dtype=torch.bool)
    return ~reasoning, reasoning


def token_char_offsets(
    tokenizer: Decoder, token_ids: Sequence[int]
) -> tuple[str, list[tuple[int, int]]]:
    """(text, offsets): the decoded response and each token's [start, end) within it.

    Offsets are non-decreasing and tile [0, len(text)]; special tokens are skipped (zero
    width), as are tokens that only start a character another token completes (byte-level
    BPE splitting UTF-8: the completing token gets the character). Fast path: each token's
    text is what it adds to a short window of the tokens before it (linear cost). The pieces
    must add up to the full decode; if a tokenizer rewrites text across windows they do not,
    and the exact path (decode every prefix, quadratic) runs instead.
    """
    ids = [int(t) for t in token_ids]
    if not ids:
        return "", []
    text = _decode_all(tokenizer, [ids])[0]
    ends = _windowed_ends(tokenizer, ids, text)
    if ends is None:
        ends = _prefix_ends(tokenizer, ids, text)
    starts = [0, *ends[:-1]]
    return text, list(zip(starts, ends, strict=True))


def _decode_all(tokenizer: Decoder, sequences: list[list[int]]) -> list[str]:
    return tokenizer.batch_decode(
        sequences, skip_special_tokens=True, clean_up_tokenization_spaces=False
    )


def _complete(s: str) -> str:
    """Drop a trailing replacement char: the window ends inside a multi-byte character."""
    return s.rstrip(_REPLACEMENT)


def _windowed_ends(tokenizer: Decoder, ids: list[int], text: str) -> list[int] | None:
    """End offset of each token from windowed decodes, or None if they do not add up."""
    first = [max(0, i - CONTEXT_TOKENS) for i in range(len(ids))]
    with_token = _decode_all(tokenizer, [ids[f : i + 1] for i, f in enumerate(first)])
    without = _decode_all(tokenizer, [ids[f:i] for i, f in enumerate(first)])
    pieces = []
    for cur, prev in zip(with_token, without, strict=True):
        cur, prev = _complete(cur), _complete(prev)
        if not cur.startswith(prev):
            return None
        pieces.append(cur[len(prev) :])
    if "".join(pieces) != text:
        return None
    ends, pos = [], 0
    for piece in pieces:
        pos += len(piece)
        ends.append(pos)
    return ends


def _prefix_ends(tokenizer: Decoder, ids: list[int], text: str) -> list[int]:
    """End offset of each token as the agreement of decode(ids[:i+1]) with the full text."""
    ends, prev = [], 0
    for prefix in _decode_all(tokenizer, [ids[: i + 1] for i in range(len(ids))]):
        # A prefix ending in half a character decodes to U+FFFD there: agreement stops before.
        agree = len(prefix) if text.startswith(prefix) else _common_prefix_len(prefix, text)
        prev = max(prev, agree)
        ends.append(prev)
    ends[-1] = len(text)
    return ends


def _common_prefix_len(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def response_masks(
    tokenizer: Decoder,
    response_text: str,
    response_token_ids: Sequence[int],
    accept: Callable[[dict[str, Any]], bool] | None = None,
) -> tuple[Tensor, Tensor]:
    """(answer_mask (T,) bool, reasoning_mask (T,) bool) for one response's T tokens.

    The span is looked up in ``response_text`` (what the verifier graded) and used as is when
    the decoded token ids agree with it up to the span's end (they may differ after it: an
    engine that trims a stop string from the text). If they disagree earlier, the span is
    looked up again in the decoded text, which is what the token offsets refer to.
    """
    decoded, offsets = token_char_offsets(tokenizer, response_token_ids)
    span = answer_char_span(response_text, accept)
    if span is not None and decoded[: span[1]] != response_text[: span[1]]:
        span = answer_char_span(decoded, accept)
    return token_masks_from_offsets(offsets, span)
