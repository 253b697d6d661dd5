"""Shared-prefix packing: the tree, its ancestor mask against a slow reference, the logit and
value indices, and the sort that forms micro-batches."""

from __future__ import annotations

import torch

from learner.batching import TrainRow
from learner.prefix_tree import (
    ancestor_mask,
    build_tree,
    collate_shared,
    pack_tree,
    shared_prefix_order,
    tree_layout,
)


def _reference_mask(rows: list[list[int]], tree) -> torch.Tensor:
    """q may see k iff k lies on q's chain of parents (q included)."""
    n = len(tree.tokens)
    out = torch.zeros((n, n), dtype=torch.bool)
    for q in range(n):
        k = q
        while k >= 0:
            out[q, k] = True
            k = tree.parent[k]
    return out


ROWS = {
    "shared prompt, ragged responses": [[1, 2, 3, 4, 5], [1, 2, 3, 6], [1, 2, 3, 6, 7, 8]],
    "nothing shared": [[1, 2], [3, 4, 5], [6]],
    "a row inside another (turn 1 in turn 2)": [[1, 2, 3], [1, 2, 3, 4, 5, 6], [1, 9]],
    "identical rows": [[4, 5, 6], [4, 5, 6], [4, 5, 7]],
}


def test_tree_layout_of_a_small_case() -> None:
    tree = build_tree(ROWS["shared prompt, ragged responses"])
    # Depth first, children in the order rows reach them: 1 2 3 | 4 5 | 6 | 7 8
    assert tree.tokens == [1, 2, 3, 4, 5, 6, 7, 8]
    assert tree.parent == [-1, 0, 1, 2, 3, 2, 5, 6]
    assert tree.depth == [0, 1, 2, 3, 4, 3, 4, 5]
    assert tree.paths == [[0, 1, 2, 3, 4], [0, 1, 2, 5], [0, 1, 2, 5, 6, 7]]


def test_every_row_reads_back_from_its_path() -> None:
    for rows in ROWS.values():
        tree = build_tree(rows)
        for row, path in zip(rows, tree.paths, strict=True):
            assert [tree.tokens[i] for i in path] == row
            assert [tree.depth[i] for i in path] == list(range(len(row)))
        # each distinct prefix once: the tree holds as many tokens as the trie has nodes
        prefixes = {tuple(r[: k + 1]) for r in rows for k in range(len(r))}
        assert len(tree.tokens) == len(prefixes)


def test_ancestor_mask_matches_reference() -> None:
    for rows in ROWS.values():
        tree = build_tree(rows)
        assert torch.equal(ancestor_mask(tree), _reference_mask(rows, tree))


def test_layout_covers_every_token_once_with_its_path() -> None:
    gen = torch.Generator().manual_seed(0)
    prompt = torch.randint(1, 50, (150,), generator=gen).tolist()
    rows = [prompt + torch.randint(1, 50, (t,), generator=gen).tolist() for t in (5, 90, 30)]
    tree = build_tree(rows)
    layout = tree_layout(tree, chunk_tokens=16)
    dst = torch.cat([b.dst for b in layout.buckets])
    assert sorted(dst.tolist()) == list(range(len(tree.tokens)))
    reference = _reference_mask(rows, tree)
    for b in layout.buckets:
        m, c = b.query_index.shape
        queries = b.query_index.flatten().index_select(0, b.src)
        assert torch.equal(queries, b.dst)  # src slot -> the query it computes
        for i in range(m):
            for j in range(c):
                if (i * c + j) not in set(b.src.tolist()):
                    continue
                q = int(b.query_index[i, j])
                keys = range(b.mask.shape[-1])
                seen = {int(b.key_index[i, k]) for k in keys if b.mask[i, 0, j, k]}
                assert seen == set(torch.nonzero(reference[q]).flatten().tolist())


def test_logit_and_value_index() -> None:
    prompts = [[1, 2, 3], [1, 2, 3], [7, 8]]
    responses = [[4, 5], [6, 6, 6], [9]]
    packed = pack_tree(prompts, responses)
    # Tree: 1 2 3 | 4 5 | 6 6 6 and 7 8 | 9
    assert packed.input_ids.tolist() == [[1, 2, 3, 4, 5, 6, 6, 6, 7, 8, 9]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 4, 3, 4, 5, 0, 1, 2]]
    assert packed.num_tokens == 11
    # W = 4; each row's window ends with [last prompt token, its response tokens].
    assert packed.logit_index.tolist() == [[2, 2, 3, 4], [2, 5, 6, 7], [9, 9, 9, 10]]
    assert packed.value_index.tolist() == [2, 2, 9]


def test_collate_shared_keeps_the_response_side_padded() -> None:
    rows = [
        TrainRow([1, 2, 3], [4, 5], [True, True], [False, False]),
        TrainRow([1, 2], [9], [True], [False]),
    ]
    batch = collate_shared(rows, pad_id=0)
    assert batch.response_ids.tolist() == [[4, 5], [0, 9]]
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5, 9]]  # 9 hangs off the shared 1 2
    assert batch.processed_tokens == 6
    assert batch.value_index.tolist() == [2, 1]


def test_shared_prefix_order_puts_sharing_rows_together() -> None:
    rows = [[5, 1], [1, 2, 3], [5, 1, 2], [1, 2, 9], [7]]
    order = shared_prefix_order(rows)
    assert order == [1, 3, 0, 2, 4]
