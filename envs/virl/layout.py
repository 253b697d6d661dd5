"""Write a synthetic city in this project's V-IRL data layout (a loader test fixture, a demo).

``save_released_layout(city, dir)`` writes route_infos.json, gps_pano_mapping.json and one
360-degree panorama per route point under street_views/, which load_released_layout reads
back; an environment given ``data_dir`` then serves crops of these panoramas.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from envs.virl.city import City, stable_seed
from envs.virl.render import render_panorama
from envs.virl.routes import GPS_PANO_FILE, ROUTE_INFOS_FILE, STREET_VIEW_DIR, Route, gps_key
from envs.virl.styles import STYLES


def save_released_layout(
    city: City | Sequence[Route], root: str | Path, view_size: int = 128
) -> Path:
    """Write a city's routes (or any routes of known cities) in the released layout."""
    routes = tuple(city.routes if isinstance(city, City) else city)
    root = Path(root)
    views = root / STREET_VIEW_DIR
    views.mkdir(parents=True, exist_ok=True)
    (root / ROUTE_INFOS_FILE).write_text(
        json.dumps([r.to_dict() for r in routes], indent=1), encoding="utf-8"
    )
    mapping: dict[str, str] = {}
    for route in routes:
        for i, point in enumerate(route.geocodes):
            key = gps_key(point)
            if key in mapping:
                continue  # routes share intersections; one panorama per place
            pano_id = f"pano_{stable_seed(route.city, key):08x}"
            mapping[key] = pano_id
            pano = render_panorama(route, STYLES[route.city], i, view_size)
            pano.save(views / f"{pano_id}.png")
    (root / GPS_PANO_FILE).write_text(json.dumps(mapping, indent=1), encoding="utf-8")
    return root
