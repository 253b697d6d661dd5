"""Route pools (train / eval / vln_mini), street-view sources, and evaluation task lists.

The train/eval split is a seeded permutation of the city's routes, so the held-out routes are
never trained on and are the same in every process. Views come from the synthetic renderer, or
from panoramas when the config names a data folder in the released layout.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image

from envs.virl.city import generate_city, stable_seed, vln_mini_routes
from envs.virl.config import VirlConfig
from envs.virl.render import crop_panorama, route_view
from envs.virl.routes import ReleasedDataset, Route, load_released_layout
from envs.virl.styles import STYLES

PANORAMA_CACHE_SIZE = 64


@lru_cache(maxsize=4)
def _dataset(root: str) -> ReleasedDataset:
    return load_released_layout(root)


def split_routes(
    routes: tuple[Route, ...], split: str, seed: int, eval_fraction: float
) -> tuple[Route, ...]:
    """The train or eval part of a route list (disjoint, seeded, in original order)."""
    order = list(range(len(routes)))
    random.Random(stable_seed("split", seed)).shuffle(order)
    n_eval = max(1, math.ceil(len(routes) * eval_fraction))
    chosen = set(order[:n_eval]) if split == "eval" else set(order[n_eval:])
    return tuple(r for i, r in enumerate(routes) if i in chosen)


def route_pool(config: VirlConfig) -> tuple[Route, ...]:
    """The routes an environment with this config draws from."""
    if config.split == "vln_mini":
        return vln_mini_routes(config.vln_mini_seed)
    if config.data_dir is not None:
        routes = _dataset(str(Path(config.data_dir).resolve())).routes
    else:
        routes = generate_city(config.city, config.city_seed, config.num_routes).routes
    return split_routes(routes, config.split, config.split_seed, config.eval_fraction)


def eval_tasks(config: VirlConfig | dict[str, Any] | None, n: int | None = None) -> list[dict]:
    """Reset options for the first n routes of the config's pool (all when n is None).

    Each item can be passed as ``env.reset(options=item)``; the list is the same everywhere.
    """
    cfg = VirlConfig.from_any(config)
    pool = route_pool(cfg)
    count = len(pool) if n is None else min(n, len(pool))
    return [{"route_index": i, "route_id": pool[i].route_id} for i in range(count)]


class ViewSource:
    """Street views for route points: synthetic renders, or crops of released panoramas."""

    def __init__(self, config: VirlConfig) -> None:
        self.size = config.view_size
        self.dataset = (
            None if config.data_dir is None else _dataset(str(Path(config.data_dir).resolve()))
        )
        self._panos: OrderedDict[str, Image.Image] = OrderedDict()

    def view(self, route: Route, point_index: int, heading: float) -> Image.Image:
        if self.dataset is None:
            return route_view(route, STYLES[route.city], point_index, heading, self.size)
        return crop_panorama(self._panorama(route.geocodes[point_index]), heading, self.size)

    def _panorama(self, latlng: tuple[float, float]) -> Image.Image:
        assert self.dataset is not None
        pano_id = self.dataset.pano_id(latlng)
        if pano_id in self._panos:
            self._panos.move_to_end(pano_id)
            return self._panos[pano_id]
        with Image.open(self.dataset.panorama_path(pano_id)) as img:
            pano = img.convert("RGB")
        self._panos[pano_id] = pano
        if len(self._panos) > PANORAMA_CACHE_SIZE:
            self._panos.popitem(last=False)
        return pano
