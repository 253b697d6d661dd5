"""Route pools (train / eval / vln_mini), street-view sources, and evaluation task lists.

The train/eval split is a seeded permutation of the city's routes, so the held-out routes are
never trained on and are the same in every process. Views come from the synthetic renderer, or
from panoramas when the config names a data folder (the study's release layout or this
project's; ``data_format`` names it or it is detected). A data folder whose routes cannot fill
the requested split is refused when the pool is built, not at the first reset.
"""

from __future__ import annotations

import json
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
from envs.virl.routes import (
    ROUTE_INFOS_FILE,
    ReleasedDataset,
    Route,
    RouteFormatError,
    load_released_layout,
)
from envs.virl.study_layout import is_study_layout, load_study_routes
from envs.virl.study_views import StudyViews
from envs.virl.styles import STYLES

PANORAMA_CACHE_SIZE = 64


@lru_cache(maxsize=4)
def _dataset(root: str) -> ReleasedDataset:
    return load_released_layout(root)


@lru_cache(maxsize=4)
def _study_routes(root: str, straight_line_length: int) -> tuple[Route, ...]:
    return load_study_routes(Path(root) / ROUTE_INFOS_FILE, straight_line_length)


def data_format(config: VirlConfig) -> str:
    """'study' or 'project': the config's data_format, or detected from route_infos.json."""
    if config.data_format != "auto":
        return config.data_format
    assert config.data_dir is not None
    return _detect(str(Path(config.data_dir).resolve()))


@lru_cache(maxsize=16)
def _detect(root: str) -> str:
    path = Path(root) / ROUTE_INFOS_FILE
    if not path.is_file():
        raise RouteFormatError(f"{path}: file not found (data_dir must hold route_infos.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RouteFormatError(f"{path}: not valid JSON ({err})") from err
    return "study" if is_study_layout(data) else "project"


def _data_routes(config: VirlConfig) -> tuple[Route, ...]:
    assert config.data_dir is not None
    root = str(Path(config.data_dir).resolve())
    if data_format(config) == "study":
        return _study_routes(root, config.straight_line_length)
    return _dataset(root).routes


def split_routes(
    routes: tuple[Route, ...], split: str, seed: int, eval_fraction: float
) -> tuple[Route, ...]:
    """The train or eval part of a route list (disjoint, seeded, in original order), or all."""
    if split == "all":
        return routes
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
        routes = _data_routes(config)
    else:
        routes = generate_city(config.city, config.city_seed, config.num_routes).routes
    pool = split_routes(routes, config.split, config.split_seed, config.eval_fraction)
    if not pool:
        field, where = (
            ("data_dir", config.data_dir)
            if config.data_dir is not None
            else ("num_routes", f"city {config.city!r}")
        )
        raise ValueError(
            f"{field}: {where} has {len(routes)} route(s), too few to fill the "
            f"{config.split!r} split with eval_fraction={config.eval_fraction} (the eval split "
            f"takes at least one route); give it at least 2 routes"
        )
    return pool


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
        self.dataset: ReleasedDataset | None = None
        self.study: StudyViews | None = None
        if config.data_dir is not None:
            root = str(Path(config.data_dir).resolve())
            if data_format(config) == "project":
                self.dataset = _dataset(root)
            elif config.observation_mode == "image":  # text mode needs no panoramas
                self.study = StudyViews(root, config.panorama_dir, config.view_size)
        self._panos: OrderedDict[str, Image.Image] = OrderedDict()

    def view(self, route: Route, point_index: int, heading: float) -> Image.Image:
        if self.study is not None:
            return self.study.view(route.geocodes[point_index], heading)
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
