"""The weight-sync file (learner/engine_weights.py): valid safetensors, rewritten in place while
the layout holds, loadable as the policy it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM

from learner.assets import prepare
from learner.engine_weights import (
    WEIGHTS_FILE,
    engine_tensors,
    safetensors_header,
    write_engine_weights,
    write_safetensors_in_place,
)


def _tensors(seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "b.half": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "a.weight": torch.randn(4, 7, generator=g),
        "c.ids": torch.arange(5, dtype=torch.int64) * seed,
        "d.scalar": torch.tensor(float(seed)),
    }


def test_file_reads_back_with_the_safetensors_library(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    assert write_safetensors_in_place(_tensors(1), path) is False  # new file
    loaded = load_file(str(path))
    assert loaded.keys() == _tensors(1).keys()
    for name, t in _tensors(1).items():
        assert loaded[name].dtype == t.dtype and torch.equal(loaded[name], t)


def test_header_matches_the_reference_writer_layout(tmp_path: Path) -> None:
    # The library's own file of the same tensors describes the same dtypes and shapes.
    ref = tmp_path / "ref.safetensors"
    save_file(_tensors(2), str(ref))
    raw = ref.read_bytes()
    ref_header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    head, offsets = safetensors_header(_tensors(2))
    ours = json.loads(head[8:])
    for name in _tensors(2):
        assert ours[name]["dtype"] == ref_header[name]["dtype"]
        assert ours[name]["shape"] == ref_header[name]["shape"]
        assert offsets[name] % _tensors(2)[name].element_size() == 0  # aligned


def test_same_layout_is_rewritten_in_place(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    write_safetensors_in_place(_tensors(1), path)
    inode = path.stat().st_ino
    assert write_safetensors_in_place(_tensors(2), path) is True
    assert path.stat().st_ino == inode  # same file, pages kept
    loaded = load_file(str(path))
    assert all(torch.equal(loaded[k], v) for k, v in _tensors(2).items())


def test_changed_layout_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    write_safetensors_in_place(_tensors(1), path)
    other = _tensors(1) | {"a.weight": torch.zeros(2, 7)}
    assert write_safetensors_in_place(other, path) is False
    assert load_file(str(path))["a.weight"].shape == (2, 7)
    assert not path.with_name(path.name + ".tmp").exists()


def test_unsupported_dtype_names_the_tensor(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'flags'"):
        write_safetensors_in_place({"flags": torch.zeros(3, dtype=torch.bool)}, tmp_path / "x")


def test_tied_head_is_written_out() -> None:
    policy = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm"))
    tensors = engine_tensors(policy)
    assert tensors is not None
    if policy.config.tie_word_embeddings:
        assert torch.equal(tensors["lm_head.weight"], tensors["model.embed_tokens.weight"])
    assert "lm_head.weight" in tensors


def test_vision_language_policies_take_the_full_hf_path() -> None:
    from transformers import AutoModelForImageTextToText

    policy = AutoModelForImageTextToText.from_pretrained(prepare("tiny-vlm"))
    assert engine_tensors(policy) is None
    assert write_engine_weights(policy, Path("/nonexistent/never-written")) is None


def test_folder_loads_as_the_same_policy_twice(tmp_path: Path) -> None:
    torch.manual_seed(0)
    policy = AutoModelForCausalLM.from_pretrained(prepare("tiny-lm")).eval()
    x = torch.tensor([[1, 5, 9, 12, 3]])
    for step in range(2):  # the second write goes in place
        with torch.no_grad():
            for p in policy.parameters():
                p.add_(0.01 * torch.randn_like(p))
        files = write_engine_weights(policy, tmp_path)
        assert files == [str(tmp_path / WEIGHTS_FILE)]
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
        with torch.no_grad():
            want, got = policy(x).logits, reloaded(x).logits
        assert torch.allclose(want, got, atol=1e-6), f"write {step}"
