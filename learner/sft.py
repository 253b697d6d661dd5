"""SFT stage: expert conversations (learner/sft_data.py Parquet) -> token rows with the loss on
assistant tokens only -> optimizer steps in the LearnerGroup -> a HF checkpoint the RL stage
(and vLLM) loads.

Assistant spans come from the chat template itself, not from token ids: the text of
messages[:i] rendered with the generation prompt is a prefix of messages[:i+1] rendered, and
the difference is assistant i's turn (content + end-of-turn marker). Trailing whitespace the
template adds after the end-of-turn marker is not trained (the engine stops at the marker).
Tokens are marked by their character offsets, so any fast tokenizer works.

Images: the prompt is tokenised like the rollout engine does it, then each image placeholder
token is expanded to the processor's number of image tokens (vLLM's prompt_token_ids are
expanded the same way), so SFT and RL rows look alike to the model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from learner.batching import TrainRow
from learner.sft_data import read_sft_parquet


def assistant_char_spans(
    chat: Any, messages: list[dict[str, Any]]
) -> tuple[str, list[tuple[int, int]]]:
    """(rendered conversation, [start, end) of every assistant turn in it)."""
    text = chat.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = chat.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        through = chat.apply_chat_template(messages[: i + 1], tokenize=False)
        if not (text.startswith(through) and through.startswith(before)):
            raise ValueError("chat template: rendering is not prefix-stable; cannot find turns")
        spans.append((len(before), len(through.rstrip())))
    return text, spans


def tokenize_conversation(
    tokenizer: Any,
    chat: Any,
    messages: list[dict[str, Any]],
    image_token_id: int | None = None,
    image_seq_len: int = 0,
) -> tuple[list[int], list[bool]]:
    """(token ids (L,), loss mask (L,): True on assistant tokens) of one conversation.

    Each ``image_token_id`` is expanded to ``image_seq_len`` copies (never trained).
    """
    text, spans = assistant_char_spans(chat, messages)
    enc = tokenizer(text, return_offsets_mapping=True)
    ids: list[int] = []
    mask: list[bool] = []
    for tok, (s, e) in zip(enc["input_ids"], enc["offset_mapping"], strict=True):
        trained = e > s and any(s < b and e > a for a, b in spans)
        if image_token_id is not None and tok == image_token_id:
            ids.extend([tok] * image_seq_len)
            mask.extend([False] * image_seq_len)
        else:
            ids.append(tok)
            mask.append(trained)
    return ids, mask


def as_train_row(ids: list[int], mask: list[bool], image_ref: str | None = None) -> TrainRow:
    """A conversation as a TrainRow: the first token is the 'prompt', the rest is scored."""
    if len(ids) < 2:
        raise ValueError("a conversation needs at least two tokens")
    n = len(ids) - 1
    return TrainRow(
        prompt_ids=ids[:1],
        response_ids=ids[1:],
        answer_mask=mask[1:],
        reasoning_mask=[False] * n,
        image_ref=image_ref,
        sampled=False,  # image placeholders in response_ids are the image's
    )


def image_seq_len(processor: Any) -> int:
    """Image tokens one image expands to, measured by running the processor once."""
    from PIL import Image

    size = processor.image_processor.crop_size or processor.image_processor.size
    side = int(size.get("height", size.get("shortest_edge", 224)))
    enc = processor(text=[processor.image_token], images=[Image.new("RGB", (side, side))])
    token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    return sum(1 for t in enc["input_ids"][0] if t == token_id)


def load_sft_rows(path: str | Path, model_path: str | Path, max_len: int = 0) -> list[TrainRow]:
    """Tokenised rows of an SFT Parquet for a model; rows over ``max_len`` tokens dropped."""
    from transformers import AutoProcessor, AutoTokenizer

    from learner.models import is_multimodal

    multimodal = is_multimodal(model_path)
    chat = (AutoProcessor if multimodal else AutoTokenizer).from_pretrained(model_path)
    tokenizer = chat.tokenizer if multimodal else chat
    image_id, image_len = None, 0
    if multimodal:
        image_id = tokenizer.convert_tokens_to_ids(chat.image_token)
        image_len = image_seq_len(chat)
    rows = []
    for r in read_sft_parquet(path):
        messages = r["messages"] if multimodal else _strip_images(r["messages"])
        ids, mask = tokenize_conversation(tokenizer, chat, messages, image_id, image_len)
        if max_len and len(ids) > max_len:
            continue
        rows.append(as_train_row(ids, mask, r["image_ref"] if multimodal else None))
    return rows


def _strip_images(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        c = m["content"]
        text = c if isinstance(c, str) else "".join(p.get("text", "") for p in c)
        out.append({"role": m["role"], "content": text})
    return out


def run_sft(
    group: Any,
    rows: list[TrainRow],
    epochs: int,
    out_dir: str | Path,
    seed: int = 0,
    image_dir: str | None = None,
    log: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``epochs`` passes over ``rows`` (reshuffled each epoch, full steps of
    rows_per_step; the last partial step is padded), then export the policy to ``out_dir``."""
    step_rows = group.cfg.rows_per_step
    rng = random.Random(seed)
    history = []
    for _ in range(epochs):
        order = list(range(len(rows)))
        rng.shuffle(order)
        for s in range(0, len(order), step_rows):
            metrics = group.sft_step([rows[i] for i in order[s : s + step_rows]], image_dir)
            history.append(metrics)
            if log is not None:
                log(metrics)
    group.export_policy(str(out_dir))
    return history
