"""Shared-prefix training: the rows of a micro-batch packed as one prefix tree, so every token
prefix that several rows share runs through the model once.

A training row is a token sequence (prompt + response). Rows of one micro-batch often share a
prefix: every GeneralPoints prompt starts with the same rules and answer format, a GRPO group's
samples share their whole prompt, and a later turn of an episode starts with the earlier turn's
prompt and response. The rows are merged into a trie of tokens and laid out as ONE sequence in
depth-first order (a parent before its children). A token's position id is its index in its
rows, and its attention sees exactly its ancestors in the tree, which are exactly the tokens
before it in each of its rows. So every token has the context and position it has in its own
row, hence the same hidden state (up to float rounding), and the hidden state of a shared token
serves every row through it: in the backward, its gradient arrives summed over those rows.

What a row needs from the packed sequence, by flat position:
- ``logit_index`` (B, W): the positions whose hidden states predict its response, right-aligned
  in a window of W = T_max + 1 exactly like the unpacked layout (learner/models.py): slot
  W - t - 1 is the prompt's last token (it predicts the first response token), then the
  response's tokens; slots left of a row's window repeat the prompt's last position (their
  log-probs fall under the zero masks of the padding, as in the unpacked layout);
- ``value_index`` (B,): the prompt's last token, where the study's value head reads V(s).

Attention (learner/packed_attention.py) does not compute the (N, N) square of the packed
sequence: it cuts the sequence into chunks of consecutive tokens of one tree path, and each
chunk's queries attend to the keys of that path only (``TreeLayout``). The 4D ancestor mask
(``ancestor_mask``) is the slow reference and the fallback for attention it cannot replace.

Cost: rows of P shared and T own tokens train P + sum(T) tokens instead of sum(P + T).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from learner.batching import ModelBatch, TrainRow, collate

# Queries per attention chunk: a long shared prefix is cut so that its chunks' key paths stay
# short (a chunk attends to its whole path, padded to the longest path of its bucket).
CHUNK_TOKENS = 64
# A bucket's chunks are padded to its longest key path; a new bucket starts when the next
# chunk's path is shorter than this share of the bucket's longest (bounds the padding waste).
BUCKET_FILL = 0.75


@dataclass
class PrefixTree:
    """R rows merged into one depth-first token sequence of N tokens."""

    tokens: list[int]  # (N,) token ids in depth-first order
    parent: list[int]  # (N,) flat index of each token's parent, -1 for a root
    depth: list[int]  # (N,) index of the token in its rows (its position id)
    paths: list[list[int]]  # per row, the flat index of each of its tokens, in order


def build_tree(rows: list[list[int]]) -> PrefixTree:
    """Merge token sequences into a trie and lay it out depth first (children in the order
    their first row reaches them). Identical rows share every token."""
    if not rows or any(not r for r in rows):
        raise ValueError("build_tree: every row needs at least one token")
    children: list[dict[int, int]] = [{}]  # trie node 0 = the virtual root, no token
    node_token: list[int] = [-1]
    ends: list[list[int]] = []  # per row, its trie nodes
    for row in rows:
        node, path = 0, []
        for tok in row:
            nxt = children[node].get(tok)
            if nxt is None:
                nxt = len(node_token)
                children[node][tok] = nxt
                children.append({})
                node_token.append(tok)
            node = nxt
            path.append(node)
        ends.append(path)
    flat_of = [-1] * len(node_token)
    tokens: list[int] = []
    parent: list[int] = []
    depth: list[int] = []
    # Iterative depth-first walk; reversed pushes keep children in insertion order.
    stack = [(child, -1, 0) for child in reversed(children[0].values())]
    while stack:
        node, parent_flat, d = stack.pop()
        flat_of[node] = len(tokens)
        tokens.append(node_token[node])
        parent.append(parent_flat)
        depth.append(d)
        stack.extend((c, flat_of[node], d + 1) for c in reversed(children[node].values()))
    paths = [[flat_of[n] for n in path] for path in ends]
    return PrefixTree(tokens, parent, depth, paths)


def ancestor_mask(tree: PrefixTree) -> Tensor:
    """(N, N) bool, True where query q may attend to key k: k is q or an ancestor of q."""
    n = len(tree.tokens)
    mask = torch.zeros((n, n), dtype=torch.bool)
    for path in tree.paths:  # a row's tokens see exactly the row's earlier tokens
        idx = torch.tensor(path)
        mask[idx[:, None], idx[None, :]] |= torch.ones(len(path), len(path)).tril().bool()
    return mask


@dataclass
class AttentionBucket:
    """Chunks of queries whose keys are their tree path, padded to the bucket's longest path."""

    query_index: Tensor  # (M, C) long, flat positions of each chunk's queries (padded slots
    # repeat the chunk's first query; their output is dropped)
    key_index: Tensor  # (M, K) long, flat positions of each chunk's path, root first (padded
    # slots repeat the root; the mask hides them)
    mask: Tensor  # (M, 1, C, K) bool, True = query may attend to key
    src: Tensor  # (n,) long, real query slots in the (M * C) layout
    dst: Tensor  # (n,) long, the same queries' flat positions


@dataclass
class TreeLayout:
    """Where the chunks of a packed prefix tree lie, for attention without the (N, N) mask."""

    buckets: list[AttentionBucket]

    def to(self, device: torch.device | str) -> TreeLayout:
        """The layout with its tensors on ``device`` (once per forward, not once per layer)."""
        moved = []
        for b in self.buckets:
            values = {f.name: getattr(b, f.name).to(device) for f in fields(b)}
            moved.append(AttentionBucket(**values))
        return TreeLayout(moved)


def _chunks(tree: PrefixTree, chunk_tokens: int) -> list[tuple[int, int, int]]:
    """(start, end, row) of runs of consecutive flat positions along one tree path (each token's
    parent is the one before it), at most ``chunk_tokens`` long; ``row`` passes through them."""
    owner = [0] * len(tree.tokens)
    for r, path in enumerate(tree.paths):
        for flat in path:
            owner[flat] = r
    out, start = [], 0
    for t in range(1, len(tree.tokens) + 1):
        if t == len(tree.tokens) or tree.parent[t] != t - 1 or t - start >= chunk_tokens:
            out.append((start, t, owner[t - 1]))
            start = t
    return out


def tree_layout(
    tree: PrefixTree, chunk_tokens: int = CHUNK_TOKENS, bucket_fill: float = BUCKET_FILL
) -> TreeLayout:
    """The attention chunks of ``tree``, in buckets of similar path length (see module doc)."""
    chunks = _chunks(tree, chunk_tokens)
    # (key path length, start, end, row), longest path first
    keyed = sorted(((tree.depth[e - 1] + 1, s, e, r) for s, e, r in chunks), key=lambda c: -c[0])
    groups: list[list[tuple[int, int, int, int]]] = []
    for chunk in keyed:
        if groups and chunk[0] >= bucket_fill * groups[-1][0][0]:
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
    buckets = []
    for group in groups:
        k_max = group[0][0]
        c_max = max(e - s for _, s, e, _ in group)
        m = len(group)
        query_index = torch.zeros((m, c_max), dtype=torch.long)
        key_index = torch.zeros((m, k_max), dtype=torch.long)
        mask = torch.zeros((m, 1, c_max, k_max), dtype=torch.bool)
        src, dst = [], []
        for i, (k, s, e, r) in enumerate(group):
            c = e - s
            query_index[i, :c] = torch.arange(s, e)
            query_index[i, c:] = s
            path = tree.paths[r][:k]
            key_index[i, :k] = torch.tensor(path)
            key_index[i, k:] = path[0]
            # Query j of the chunk stands at depth k - c + j and sees path slots 0 .. that depth.
            q_depth = torch.arange(k - c, k)[:, None]
            mask[i, 0, :c, :k] = torch.arange(k)[None, :] <= q_depth
            mask[i, 0, c:, 0] = True  # padded queries see the root (no all-masked softmax row)
            src.append(i * c_max + torch.arange(c))
            dst.append(torch.arange(s, e))
        bucket = AttentionBucket(query_index, key_index, mask, torch.cat(src), torch.cat(dst))
        buckets.append(bucket)
    return TreeLayout(buckets)


@dataclass
class PackedTree:
    """The model inputs of a micro-batch packed as one prefix tree (N tokens, B rows)."""

    input_ids: Tensor  # (1, N) long
    position_ids: Tensor  # (1, N) long, each token's index in its rows
    attention_mask: Tensor  # (1, 1, N, N) bool ancestor mask (fallback attention)
    logit_index: Tensor  # (B, W) long, flat positions of each row's logits (module doc)
    value_index: Tensor  # (B,) long, flat position of each row's last prompt token
    num_tokens: int  # N: the tokens the model computes (the D of 6ND FLOPs)
    layout: TreeLayout  # chunks for attention that skips the masked pairs


def pack_tree(prompts: list[list[int]], responses: list[list[int]]) -> PackedTree:
    """Pack rows (prompt + response each) into one prefix tree; rows keep their order in
    ``logit_index`` and ``value_index``."""
    if len(prompts) != len(responses) or not prompts:
        raise ValueError(f"pack_tree: {len(prompts)} prompts for {len(responses)} responses")
    if any(not p for p in prompts):
        raise ValueError("pack_tree: every row needs a prompt of at least one token")
    tree = build_tree([p + r for p, r in zip(prompts, responses, strict=True)])
    width = max(len(r) for r in responses) + 1
    logit_index = torch.zeros((len(prompts), width), dtype=torch.long)
    value_index = torch.zeros(len(prompts), dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        path = tree.paths[i]
        last_prompt = path[len(p) - 1]
        value_index[i] = last_prompt
        logit_index[i, :] = last_prompt
        if r:
            logit_index[i, width - len(r) :] = torch.tensor(path[len(p) :])
    return PackedTree(
        input_ids=torch.tensor([tree.tokens]),
        position_ids=torch.tensor([tree.depth]),
        attention_mask=ancestor_mask(tree)[None, None],
        logit_index=logit_index,
        value_index=value_index,
        num_tokens=len(tree.tokens),
        layout=tree_layout(tree),
    )


def shared_prefix_order(rows: list[list[int]]) -> list[int]:
    """Row indices sorted by their tokens, so that rows sharing longer prefixes are adjacent
    and micro-batches cut from this order share the most (ties keep the given order)."""
    return sorted(range(len(rows)), key=lambda i: rows[i])


def collate_shared(rows: list[TrainRow], pad_id: int) -> ModelBatch:
    """``collate`` for text rows, with the model inputs packed as one prefix tree: the response
    side (ids, masks, behaviour log-probs, row weights) keeps the padded layout, so the loss
    code is unchanged."""
    batch = collate(rows, pad_id)
    packed = pack_tree([r.prompt_ids for r in rows], [r.response_ids for r in rows])
    return dataclasses.replace(
        batch,
        input_ids=packed.input_ids,
        attention_mask=packed.attention_mask,
        position_ids=packed.position_ids,
        value_index=packed.value_index,
        logit_index=packed.logit_index,
        packed_tokens=packed.num_tokens,
        pack_layout=packed.layout,
    )
