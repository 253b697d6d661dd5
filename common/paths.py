"""Where veriray keeps its local state: model assets, Ray's auth token, op builds, runs.

Everything lives under one project-local cache (``.cache/`` beside the packages, or
``$VERIRAY_CACHE``) so that nothing depends on files left in the home directory.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the top-level packages (the repo, or a job's working dir)."""


def cache_dir() -> Path:
    """The project-local cache (``$VERIRAY_CACHE`` or ``<project>/.cache``), created on use."""
    path = Path(os.environ.get("VERIRAY_CACHE") or PROJECT_ROOT / ".cache")
    path.mkdir(parents=True, exist_ok=True)
    return path


def models_dir() -> Path:
    """Prepared model checkpoints (Hugging Face format), one folder per asset name."""
    return cache_dir() / "models"


def torch_extensions_dir() -> Path:
    """DeepSpeed/torch JIT op builds: built once here, never in a random home directory."""
    return cache_dir() / "torch_extensions"


def set_build_env() -> None:
    """Point JIT op builds and HF caches at the project cache; keep the hub offline."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(torch_extensions_dir()))
    os.environ.setdefault("HF_HOME", str(cache_dir() / "hf"))
    # Nothing may download weights or data from a hub at run time.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
