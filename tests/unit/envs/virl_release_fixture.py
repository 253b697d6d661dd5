"""A tiny folder in the study's V-IRL release layout, written for tests.

Two routes (route_infos.json as ``[routes, count]`` with milestone_info strings in the study's
loose format), a pickled GPS -> panorama mapping of the route points, and one synthetic
equirectangular panorama per mapped point drawn with Pillow: eight 45-degree colour sectors,
so a test can tell which direction a view looks at.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from PIL import Image, ImageDraw

SECTOR_COLORS: tuple[tuple[int, int, int], ...] = (
    (230, 30, 30),
    (30, 200, 30),
    (30, 30, 230),
    (230, 230, 30),
    (230, 30, 230),
    (30, 230, 230),
    (250, 150, 30),
    (120, 60, 200),
)
"""Colour of panorama sector k, which spans yaw-from-left-edge [45k, 45k + 45) degrees."""
PANO_SIZE = (256, 128)

ROUTE_A_BLOCKS = """{
"intersection_idx": "1",
"landmarks": "Joe's Pizza is on your left front",
"distance": "80 meters",
"human_heading": "head north",
"to_next_intersection_heading": "10 (north)",
}
{
intersection_idx: 2,
landmarks: Blue Bottle Cafe is on your right,
to_next_intersection_heading: 95 (east),
}
{
"intersection_idx": "3",
"to_next_intersection_heading": "182 (south)"
}"""
"""Three blocks: a landmark, unquoted keys and values, a block without 'landmarks'."""

ROUTE_B_BLOCKS = """{"landmarks": "No landmark nearby",
"to_next_intersection_heading": "270 (west)",}
{"landmarks": "Katz Deli is on your right",
"to_next_intersection_heading": "225 (southwest)",}"""


def _route(start, points, blocks, dest_name, landmarks, init_heading=None) -> dict:
    route = {
        "start_place": {"name": "start", "relocated_geocode": list(start)},
        "dest_place": {"name": dest_name, "geocode": list(points[-1])},
        "route_results": {
            "landmark_list": [{"name": n, "place_id": f"id-{n}"} for n in landmarks],
            "geocode_list": [list(p) for p in points],
            "polyline": "ignored",
        },
        "milestone_info": blocks,
        "extra": "ignored",
    }
    if init_heading is not None:
        route["init_heading"] = init_heading
    return route


ROUTE_A = _route(
    (40.7500, -73.9900),
    [(40.7508, -73.9899), (40.7509, -73.9888), (40.7500, -73.9887)],
    ROUTE_A_BLOCKS,
    "Katz Deli",
    ["Joe's Pizza", "Blue Bottle Cafe"],
    init_heading=0,  # 0 = pick a random heading
)
ROUTE_B = _route(
    (40.7600, -73.9800),
    [(40.7600, -73.9810), (40.7594, -73.9817)],
    ROUTE_B_BLOCKS,
    "Central Park",
    ["Katz Deli"],
    init_heading=100,
)


def draw_panorama(path: Path, label: str) -> None:
    """An equirectangular test panorama: 8 colour sectors and a small label."""
    w, h = PANO_SIZE
    img = Image.new("RGB", PANO_SIZE)
    draw = ImageDraw.Draw(img)
    for k, color in enumerate(SECTOR_COLORS):
        draw.rectangle([k * w // 8, 0, (k + 1) * w // 8 - 1, h - 1], fill=color)
    draw.text((4, 4), label, fill=(0, 0, 0))
    img.save(path, quality=95)


def write_release(
    root: Path, routes: list[dict] | None = None, rotation: float = 30.0, views: bool = True
) -> Path:
    """Write route_infos.json and (with views) gps_pano_mapping.pkl and panoramas/ under root."""
    routes = [ROUTE_A, ROUTE_B] if routes is None else routes
    root.mkdir(parents=True, exist_ok=True)
    (root / "route_infos.json").write_text(json.dumps([routes, len(routes)]), encoding="utf-8")
    if not views:
        return root
    panos = root / "panoramas"
    panos.mkdir(exist_ok=True)
    mapping: dict[tuple[float, float], str] = {}
    for r in routes:
        points = [r["start_place"]["relocated_geocode"], *r["route_results"]["geocode_list"]]
        for lat, lng in points:
            pano_id = f"pano{len(mapping):03d}"
            mapping[(float(lat), float(lng))] = pano_id
            draw_panorama(panos / f"{pano_id}.jpg", pano_id)
            meta = {"rotation": rotation, "pano_id": pano_id}
            (panos / f"{pano_id}.metadata.json").write_text(json.dumps(meta), encoding="utf-8")
    (root / "gps_pano_mapping.pkl").write_bytes(pickle.dumps(mapping))
    return root
