"""Street views of the synthetic cities (Pillow), the 2x2 observation grid and panoramas.

A view is a 90-degree one-point-perspective picture at a point and heading: sky, ground, the
street ahead (or a facade where no street continues), building walls on both sides with gaps
for cross streets at intersections, city-specific street furniture, and a sign with the
landmark's name for every landmark whose bearing falls in the view. Views are deterministic for
(route point, heading) and styled per city.
"""

from __future__ import annotations

import math
import random
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from envs.virl.city import stable_seed
from envs.virl.directions import bearing, side_index, wrap_angle
from envs.virl.routes import Route
from envs.virl.styles import RGB, CityStyle

FOV_DEG = 90.0
HORIZON = 0.48
"""Horizon height as a share of the view (from the top)."""
ROAD_TOLERANCE_DEG = 30.0
"""A street counts as 'ahead' (or to a side) when within this angle of the view direction."""
GRID_OFFSETS: tuple[tuple[str, float], ...] = (
    ("front", 0.0),
    ("right", 90.0),
    ("back", 180.0),
    ("left", 270.0),
)
"""Grid panes in reading order (top-left, top-right, bottom-left, bottom-right)."""

FontT = ImageFont.FreeTypeFont | ImageFont.ImageFont


@lru_cache(maxsize=64)
def _font(size: int) -> FontT:
    return ImageFont.load_default(size=size)


def _lerp(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _shade(c: RGB, f: float) -> RGB:
    return tuple(max(0, min(255, int(v * f))) for v in c)  # type: ignore[return-value]


def _base(style: CityStyle, size: int) -> Image.Image:
    """Sky gradient above the horizon, flat ground below (numpy: one pass, no per-row draws)."""
    h = int(size * HORIZON)
    t = np.linspace(0.0, 1.0, h)[:, None]
    top, bottom = np.array(style.sky[0], float), np.array(style.sky[1], float)
    sky = top[None, :] * (1 - t) + bottom[None, :] * t
    arr = np.empty((size, size, 3), np.uint8)
    arr[:h] = sky[:, None, :].astype(np.uint8)
    arr[h:] = np.array(style.ground, np.uint8)
    return Image.fromarray(arr, "RGB")


def _wall_y(x: float, size: int, near_top: float) -> tuple[float, float]:
    """Top and bottom of a side wall at column x (perspective: shrinks towards the centre)."""
    depth = abs(size / 2 - x) / (size / 2)  # 1 at the image edge, 0 at the vanishing point
    horizon = size * HORIZON
    return horizon - near_top * size * depth, horizon + 0.42 * size * depth


def _draw_roof(
    draw: ImageDraw.ImageDraw, style: CityStyle, x0: float, x1: float, top: float, color: RGB
) -> None:
    w = x1 - x0
    roof = _shade(color, 0.7)
    if style.roof == "pitched":
        draw.polygon([(x0, top), ((x0 + x1) / 2, top - 0.35 * w), (x1, top)], fill=roof)
    elif style.roof == "dome":
        draw.pieslice(
            [x0 + 0.1 * w, top - 0.4 * w, x1 - 0.1 * w, top + 0.4 * w],
            180,
            360,
            fill=(236, 226, 205),
        )
    elif style.roof == "stepped":
        draw.rectangle([x0 + 0.2 * w, top - 0.25 * w, x1 - 0.2 * w, top], fill=roof)
    elif style.roof == "tower":
        draw.line([((x0 + x1) / 2, top), ((x0 + x1) / 2, top - 0.6 * w)], fill=roof, width=2)


def _draw_wall(
    draw: ImageDraw.ImageDraw,
    style: CityStyle,
    rng: random.Random,
    size: int,
    left: bool,
    gap: bool,
) -> None:
    """One side of the street: buildings from the image edge to near the vanishing point."""
    edge, stop = (0.0, size * 0.44) if left else (float(size), size * 0.56)
    x = edge
    k = 0
    while (x < stop) if left else (x > stop):
        depth = abs(size / 2 - x) / (size / 2)
        width = max(4.0, size * (0.10 + 0.12 * rng.random()) * depth)
        nx = x + width if left else x - width
        x0, x1 = (x, nx) if left else (nx, x)
        if gap and k == 1:
            # A cross street: leave the wall open and let the road run out to the side.
            road_top, road_bot = _wall_y(x0 if left else x1, size, 0.0)[1], size * 0.96
            draw.polygon(
                [(x0, road_top), (x1, road_top), (x1, road_bot), (x0, road_bot)], fill=style.road
            )
        else:
            color = rng.choice(style.buildings)
            height = rng.uniform(*style.height_range)
            t0, b0 = _wall_y(x0, size, height)
            t1, b1 = _wall_y(x1, size, height)
            draw.polygon([(x0, t0), (x1, t1), (x1, b1), (x0, b0)], fill=color)
            _draw_roof(draw, style, x0, x1, min(t0, t1), color)
            for row in range(1, 6):
                fy = row / 6.5
                for col in (0.25, 0.6):
                    wx = x0 + (x1 - x0) * col
                    ty = t0 + (t1 - t0) * col
                    by = b0 + (b1 - b0) * col
                    wy = ty + (by - ty) * fy * 0.8
                    ws = max(1.0, (x1 - x0) * 0.15)
                    draw.rectangle([wx, wy, wx + ws, wy + ws * 1.3], fill=style.window)
        x = nx
        k += 1


def _draw_road(draw: ImageDraw.ImageDraw, style: CityStyle, size: int, ahead: bool) -> None:
    vx, vy = size / 2, size * HORIZON
    if ahead:
        draw.polygon(
            [(size * 0.08, size), (vx - 2, vy), (vx + 2, vy), (size * 0.92, size)], fill=style.road
        )
        for k in range(6):
            t0, t1 = 1 - k / 6, 1 - (k + 0.5) / 6
            draw.line(
                [(vx, vy + (size - vy) * t0), (vx, vy + (size - vy) * t1)],
                fill=style.road_mark,
                width=max(1, int(3 * t0)),
            )
    else:
        far = size * (HORIZON + 0.12)
        draw.polygon(
            [(size * 0.08, size), (size * 0.32, far), (size * 0.68, far), (size * 0.92, size)],
            fill=style.road,
        )
        # No street ahead: a building closes the view.
        wall = _shade(style.buildings[0], 0.85)
        draw.rectangle([size * 0.28, size * 0.18, size * 0.72, far], fill=wall)
        for r in range(3):
            for c in range(4):
                x = size * (0.31 + 0.1 * c)
                y = size * (0.22 + 0.1 * r)
                draw.rectangle([x, y, x + size * 0.05, y + size * 0.06], fill=style.window)


def _draw_extra(draw: ImageDraw.ImageDraw, style: CityStyle, size: int, rng: random.Random) -> None:
    hz = size * HORIZON
    if style.extra == "hills":
        draw.polygon(
            [
                (0, hz),
                (size * 0.3, hz - size * 0.12),
                (size * 0.6, hz - size * 0.05),
                (size, hz - size * 0.15),
                (size, hz),
                (0, hz),
            ],
            fill=(120, 140, 110),
        )
    for side in (0.04, 0.96):
        x = size * side
        if style.extra in ("trees", "palms"):
            trunk = (110, 80, 50)
            draw.rectangle([x - 2, size * 0.62, x + 2, size * 0.85], fill=trunk)
            if style.extra == "trees":
                draw.ellipse(
                    [x - size * 0.07, size * 0.48, x + size * 0.07, size * 0.66], fill=(58, 120, 60)
                )
            else:
                for ang in range(0, 360, 60):
                    dx = math.cos(math.radians(ang)) * size * 0.08
                    dy = math.sin(math.radians(ang)) * size * 0.03
                    draw.line(
                        [(x, size * 0.62), (x + dx, size * 0.62 + dy)], fill=(40, 140, 70), width=3
                    )
        elif style.extra == "lamps":
            draw.line([(x, size * 0.55), (x, size * 0.9)], fill=(40, 40, 40), width=2)
            draw.ellipse([x - 4, size * 0.53, x + 4, size * 0.57], fill=(250, 230, 150))


def _wrap_name(name: str, banner: bool) -> list[str]:
    words = name.split()
    if banner:
        return words
    if len(name) <= 12 or len(words) == 1:
        return [name]
    cut = max(range(1, len(words)), key=lambda k: -abs(len(" ".join(words[:k])) - len(name) / 2))
    return [" ".join(words[:cut]), " ".join(words[cut:])]


def _draw_sign(
    draw: ImageDraw.ImageDraw, style: CityStyle, size: int, name: str, x: float, y: float
) -> float:
    """A sign with the landmark's name centred near column x; returns its bottom edge."""
    lines = _wrap_name(name, style.sign_shape == "banner")
    font = _font(max(8, size // 16))
    boxes = [draw.textbbox((0, 0), line, font=font) for line in lines]
    line_h = max(b[3] - b[1] for b in boxes) + 2
    w = max(b[2] - b[0] for b in boxes) + 8
    h = line_h * len(lines) + 6
    x0 = min(max(2.0, x - w / 2), size - w - 2)
    box = [x0, y, x0 + w, y + h]
    if style.sign_shape == "round":
        draw.rounded_rectangle(box, radius=h / 3, fill=style.sign_bg, outline=style.sign_fg)
    else:
        draw.rectangle(box, fill=style.sign_bg, outline=_shade(style.sign_bg, 0.5), width=2)
    for k, (line, b) in enumerate(zip(lines, boxes, strict=True)):
        draw.text(
            (x0 + (w - (b[2] - b[0])) / 2 - b[0], y + 3 + k * line_h - b[1]),
            line,
            fill=style.sign_fg,
            font=font,
        )
    return y + h


def render_view(
    style: CityStyle,
    size: int,
    seed: int,
    road_ahead: bool,
    gaps: tuple[bool, bool],
    signs: tuple[tuple[str, float], ...],
) -> Image.Image:
    """Draw one view. signs: (name, bearing relative to the view centre in [-45, 45))."""
    rng = random.Random(seed)
    img = _base(style, size)
    draw = ImageDraw.Draw(img)
    if style.extra == "hills":  # hills sit behind the buildings, the rest in front
        _draw_extra(draw, style, size, rng)
    _draw_road(draw, style, size, road_ahead)
    _draw_wall(draw, style, rng, size, left=True, gap=gaps[0])
    _draw_wall(draw, style, rng, size, left=False, gap=gaps[1])
    if style.extra != "hills":
        _draw_extra(draw, style, size, rng)
    y = size * 0.2
    for name, rel in sorted(signs, key=lambda s: s[1]):
        x = size / 2 + math.tan(math.radians(rel)) * size / 2
        y = _draw_sign(draw, style, size, name, x, y) + 3
    if style.extra == "haze":
        img = Image.blend(img, Image.new("RGB", img.size, (235, 220, 190)), 0.18)
    return img


def _near(bearings: list[float], heading: float) -> bool:
    return any(abs(wrap_angle(b - heading)) < ROAD_TOLERANCE_DEG for b in bearings)


def route_view(
    route: Route, style: CityStyle, point_index: int, heading: float, size: int
) -> Image.Image:
    """The view at a route point facing `heading`, with signs for the landmarks seen there."""
    here = route.geocodes[point_index]
    roads = [
        bearing(here, route.geocodes[j])
        for j in (point_index - 1, point_index + 1)
        if 0 <= j < route.num_points
    ]
    if route.intersections[point_index]:
        roads += [(b + d) % 360 for b in roads for d in (90.0, 270.0)]
    signs = []
    for lm in route.visible_landmarks(point_index):
        b = bearing(here, lm.latlng)
        if side_index(heading, b) == 0:
            signs.append((lm.name, wrap_angle(b - heading)))
    seed = stable_seed(route.city, f"{here[0]:.6f}", f"{here[1]:.6f}", round(heading))
    return render_view(
        style,
        size,
        seed,
        _near(roads, heading),
        (_near(roads, heading - 90.0), _near(roads, heading + 90.0)),
        tuple(signs),
    )


def grid_headings(heading: float) -> tuple[tuple[str, float], ...]:
    """(label, absolute heading) of each grid pane in reading order."""
    return tuple((label, (heading + off) % 360.0) for label, off in GRID_OFFSETS)


def compose_grid(views: list[Image.Image]) -> np.ndarray:
    """Four equal square views -> a (2S, 2S, 3) uint8 array in reading order."""
    s = views[0].size[0]
    grid = Image.new("RGB", (2 * s, 2 * s))
    for k, view in enumerate(views):
        grid.paste(view, ((k % 2) * s, (k // 2) * s))
    return np.asarray(grid, dtype=np.uint8).copy()


def render_panorama(route: Route, style: CityStyle, point_index: int, size: int) -> Image.Image:
    """A 360-degree strip (4S x S) whose left edge faces north: views at 45, 135, 225, 315."""
    pano = Image.new("RGB", (4 * size, size))
    for k in range(4):
        pano.paste(route_view(route, style, point_index, 45.0 + 90.0 * k, size), (k * size, 0))
    return pano


def crop_panorama(pano: Image.Image, heading: float, size: int) -> Image.Image:
    """The 90-degree view centred on `heading` from a north-left panorama, resized to size."""
    w = pano.size[0]
    quarter = w // 4
    start = round((heading % 360.0) / 360.0 * w - quarter / 2) % w
    strip = np.asarray(pano)
    cols = np.arange(start, start + quarter) % w
    view = Image.fromarray(strip[:, cols], "RGB")
    return view if view.size == (size, size) else view.resize((size, size))
