"""Shared-prompt packing: rows that share a prompt (the samples of one GRPO group, all on the
same task) run that prompt through the model once.

A pack is one sequence: the prompt, then each row's response one after another. A 4D
attention mask lets every response token see the prompt and its own response's earlier tokens,
never another response; position ids restart at the prompt's length for each response. So each
response token has the same context and positions as in its own row, hence the same logits (up
to float rounding), and the prompt's gradient arrives summed over the group in one backward.

Cost: k rows on a prompt of P tokens with responses of T tokens train P + kT tokens instead of
k (P + T). GeneralPoints prompts are ~200 tokens and responses ~90: a group of 4 is ~2x fewer
tokens. The linear layers, which dominate a small model on a CPU, see the saving in full.
Attention with the 4D mask would compute the pack's whole (P + kT)^2 square and discard the
masked pairs; ``layout`` lets learner/packed_attention.py compute only the prompt's and each
response's own pairs instead (the mask stays for models that cannot use it).

Logits: the response tokens of a pack are scattered along it, so the model cannot keep "the
last W positions" of every row (the unpacked layout, learner/models.py). ``logit_index`` gives,
for each original row, the flat positions (pack x length) whose hidden states predict its
response, right-aligned in a window of W = T_max + 1 exactly like the unpacked layout: slot
W - t - 1 is the prompt's last token (it predicts the first response token), then the
response's tokens. Slots left of a row's window repeat the prompt's last position; their
log-probs fall under the zero masks of the padding, as in the unpacked layout.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from learner.batching import ModelBatch, TrainRow, collate
from learner.packed_attention import PackLayout, pack_layout


@dataclass
class PackedInputs:
    """The model inputs of a packed micro-batch. R packs of length L (right-padded)."""

    input_ids: Tensor  # (R, L) long, pad id after each pack's end
    attention_mask: Tensor  # (R, 1, L, L) bool, True = query may attend to key
    position_ids: Tensor  # (R, L) long
    logit_index: Tensor  # (B, W) long, flat positions in R x L (see module docstring)
    num_tokens: int  # real tokens over all packs: the D of 6ND FLOPs
    layout: PackLayout  # where prompts and responses lie, for attention without the mask


def group_by_prompt(prompts: list[list[int]]) -> list[list[int]]:
    """Indices of identical prompts, groups in order of first appearance, rows in order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(tuple(p), []).append(i)
    return list(groups.values())


def shares_prompts(rows: list[TrainRow]) -> bool:
    """Whether packing saves anything: two rows or more with the same prompt."""
    return len(group_by_prompt([r.prompt_ids for r in rows])) < len(rows)


def pack_attention_mask(segments: Tensor) -> Tensor:
    """(L,) segment ids -> (L, L) bool mask. 0 = prompt, j >= 1 = response j, -1 = padding.

    A query sees keys at or before it that are prompt or its own segment; a padding query sees
    only itself (a fully masked row would turn the softmax into NaN)."""
    n = segments.shape[0]
    pos = torch.arange(n)
    causal = pos[None, :] <= pos[:, None]
    visible = (segments[None, :] == 0) | (segments[None, :] == segments[:, None])
    mask = causal & visible & (segments[:, None] >= 0)
    mask[pos, pos] = True
    return mask


def pack_rows(prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> PackedInputs:
    """Pack rows with identical prompts (see the module docstring). Rows keep their order in
    ``logit_index``; a row whose prompt is unique becomes a pack of one."""
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"pack_rows: {len(prompts)} prompts for {len(responses)} responses")
    if any(not p for p in prompts):
        raise ValueError("pack_rows: every row needs a prompt of at least one token")
    groups = group_by_prompt(prompts)
    width = max(len(r) for r in responses) + 1
    lengths = [len(prompts[g[0]]) + sum(len(responses[i]) for i in g) for g in groups]
    big_l = max(lengths)
    input_ids = torch.full((len(groups), big_l), pad_id, dtype=torch.long)
    position_ids = torch.zeros((len(groups), big_l), dtype=torch.long)
    masks = torch.zeros((len(groups), 1, big_l, big_l), dtype=torch.bool)
    logit_index = torch.zeros((len(prompts), width), dtype=torch.long)
    spans: list[list[tuple[int, int]]] = []
    for r, group in enumerate(groups):
        prompt = prompts[group[0]]
        p = len(prompt)
        segments = torch.full((big_l,), -1, dtype=torch.long)
        input_ids[r, :p] = torch.tensor(prompt)
        position_ids[r, :p] = torch.arange(p)
        segments[:p] = 0
        start, last_prompt = p, r * big_l + p - 1
        spans.append([])
        for j, i in enumerate(group, start=1):
            t = len(responses[i])
            end = start + t
            spans[r].append((start, t))
            if t:
                input_ids[r, start:end] = torch.tensor(responses[i])
            position_ids[r, start:end] = torch.arange(p, p + t)
            segments[start:end] = j
            # Slot W - t - 1 predicts the first response token; then the response's own tokens.
            logit_index[i, :] = last_prompt
            logit_index[i, width - t :] = r * big_l + torch.arange(start, end)
            start = end
        masks[r, 0] = pack_attention_mask(segments)
    layout = pack_layout([len(prompts[g[0]]) for g in groups], spans, big_l)
    return PackedInputs(input_ids, masks, position_ids, logit_index, sum(lengths), layout)


def grouped_order(prompts: list[list[int]], generator: torch.Generator | None) -> list[int]:
    """Row order with identical prompts adjacent: groups shuffled by ``generator`` (None = in
    order of first appearance), rows in order inside each group. Micro-batches cut from this
    order keep a group's rows together, so packing finds them."""
    groups = group_by_prompt(prompts)
    if generator is not None:
        groups = [groups[k] for k in torch.randperm(len(groups), generator=generator).tolist()]
    return [i for g in groups for i in g]


def collate_packed(rows: list[TrainRow], pad_id: int) -> ModelBatch:
    """``collate`` for text rows, with the model inputs packed: the response side (ids, masks,
    behaviour log-probs, row weights) keeps the padded layout, so the loss code is unchanged."""
    batch = collate(rows, pad_id)
    packed = pack_rows([r.prompt_ids for r in rows], [r.response_ids for r in rows], pad_id)
    return dataclasses.replace(
        batch,
        input_ids=packed.input_ids,
        attention_mask=packed.attention_mask,
        position_ids=packed.position_ids,
        logit_index=packed.logit_index,
        packed_tokens=packed.num_tokens,
        pack_layout=packed.layout,
    )
