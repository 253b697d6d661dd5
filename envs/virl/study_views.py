"""Street views from the study's release: the GPS -> panorama mapping and perspective crops.

Files (the study's layout)::

    gps_pano_mapping.pkl        a pickle of {(lat, lng): pano_id}
    <panorama dir>/<id>.jpg     equirectangular panoramas (2:1)
    <panorama dir>/<id>.metadata.json   at least {"rotation": degrees}

The pickle comes from a user's folder, so it is read with an unpickler that resolves no global
at all: only the opcodes of plain containers, numbers and strings can run, and a pickle that
names any class or function (the way a pickle runs code) is refused with UnsafePickleError.

A point not in the mapping takes the panorama of the nearest mapped point. The view at heading
h is a perspective crop (90 degrees wide, pitch 0) looking at panorama yaw
``u = ((h - 180) mod 360 + rotation) mod 360``, the study's convention, where yaw 0 is the
panorama's centre column and yaw grows to the right (the convention of py360convert's e2p,
which the study calls; the projection here is the same pinhole model written in numpy).
"""

from __future__ import annotations

import io
import json
import math
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from envs.virl.directions import local_xy
from envs.virl.routes import RouteFormatError

GPS_PANO_PICKLE = "gps_pano_mapping.pkl"
PANORAMA_SUBDIR = "panoramas"
VIEW_FOV_DEG = 90.0
VIEW_PITCH_DEG = 0.0
PANORAMA_CACHE_SIZE = 16
MAX_PANO_WIDTH_PER_VIEW = 8
"""Panoramas are shrunk on load to at most 8x the view side in width: a 90-degree view spans a
quarter of the width, so 8x keeps twice the view's resolution and bounds the cache's memory."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global (a class or a function): refused, nothing is run."""


class _PlainUnpickler(pickle.Unpickler):
    """Resolves no global and no persistent id, so loading can build only plain data."""

    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(
            f"refused: the pickle names {module}.{name}; only plain dicts, tuples, lists, "
            f"numbers and strings are allowed (loading it could run code)"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses persistent ids")


def load_gps_pano_mapping(path: str | Path) -> dict[tuple[float, float], str]:
    """Read gps_pano_mapping.pkl safely; errors name the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise RouteFormatError(f"{path}: file not found (expected a pickle of (lat, lng) -> id)")
    try:
        data = _PlainUnpickler(io.BytesIO(path.read_bytes())).load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: {err}") from None
    except Exception as err:  # a corrupt pickle can raise nearly anything; none of it ran code
        raise RouteFormatError(
            f"{path}: not a readable pickle ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(data, dict) or not data:
        raise RouteFormatError(f"{path}: expected a non-empty dict of (lat, lng) -> pano id")
    out: dict[tuple[float, float], str] = {}
    for key, value in data.items():
        if not (_is_pair(key) and isinstance(value, str)):
            raise RouteFormatError(
                f"{path}: entry {key!r:.60} -> {value!r:.40} is not (lat, lng) -> pano id string"
            )
        out[(float(key[0]), float(key[1]))] = value
    return out


def _is_pair(key: Any) -> bool:
    return (
        isinstance(key, tuple | list)
        and len(key) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in key)
    )


class PanoIndex:
    """(lat, lng) -> panorama id: the exact entry, else the nearest mapped point."""

    def __init__(self, mapping: dict[tuple[float, float], str]) -> None:
        self.mapping = mapping
        self._points = list(mapping)
        self._lat = np.array([p[0] for p in self._points])
        self._lng = np.array([p[1] for p in self._points])

    def pano_id(self, latlng: tuple[float, float]) -> str:
        if latlng in self.mapping:
            return self.mapping[latlng]
        # Metres east/north at the query's latitude: exact enough to rank street-scale points.
        east, north = local_xy(latlng, (self._lat, self._lng))  # type: ignore[arg-type]
        return self.mapping[self._points[int(np.argmin(east * east + north * north))]]


def study_yaw(heading: float, rotation: float) -> float:
    """The panorama yaw the study crops for a view at `heading` (degrees, [0, 360))."""
    return ((heading - 180.0) % 360.0 + rotation) % 360.0


def perspective(
    pano: np.ndarray,
    yaw_deg: float,
    size: int,
    fov_deg: float = VIEW_FOV_DEG,
    pitch_deg: float = 0.0,
) -> np.ndarray:
    """A size x size pinhole view of an equirectangular (H, W, 3) panorama, bilinear.

    yaw 0 looks at the centre column, positive yaw to the right; pitch positive looks up.
    """
    h, w = pano.shape[:2]
    t = math.tan(math.radians(fov_deg) / 2)
    grid = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1
    x, y = np.meshgrid(grid * t, -grid * t)
    p = math.radians(pitch_deg)
    y2 = y * math.cos(p) + math.sin(p)
    z2 = -y * math.sin(p) + math.cos(p)
    lon = math.radians(yaw_deg) + np.arctan2(x, z2)
    lat = np.arctan2(y2, np.hypot(x, z2))
    col = ((lon / (2 * math.pi) + 0.5) % 1.0) * w - 0.5
    row = np.clip((0.5 - lat / math.pi) * h - 0.5, 0, h - 1)
    c0 = np.floor(col)
    r0 = np.floor(row)
    fc = (col - c0)[..., None]
    fr = (row - r0)[..., None]
    c0 = c0.astype(np.int64) % w
    c1 = (c0 + 1) % w
    r0 = r0.astype(np.int64)
    r1 = np.minimum(r0 + 1, h - 1)
    img = pano.astype(np.float32)
    top = img[r0, c0] * (1 - fc) + img[r0, c1] * fc
    bottom = img[r1, c0] * (1 - fc) + img[r1, c1] * fc
    return np.clip(top * (1 - fr) + bottom * fr + 0.5, 0, 255).astype(np.uint8)


def panorama_dir(data_dir: str | Path, configured: str | None) -> Path:
    """The configured panorama folder, else data_dir/panoramas if present, else data_dir."""
    if configured is not None:
        return Path(configured)
    sub = Path(data_dir) / PANORAMA_SUBDIR
    return sub if sub.is_dir() else Path(data_dir)


class StudyViews:
    """Perspective views at route points from the study's panoramas (cached per panorama)."""

    def __init__(self, data_dir: str | Path, pano_dir: str | None, size: int) -> None:
        self.index = PanoIndex(load_gps_pano_mapping(Path(data_dir) / GPS_PANO_PICKLE))
        self.folder = panorama_dir(data_dir, pano_dir)
        if not self.folder.is_dir():
            raise RouteFormatError(f"{self.folder}: panorama folder not found")
        self.size = size
        self._cache: OrderedDict[str, tuple[np.ndarray, float]] = OrderedDict()

    def view(self, latlng: tuple[float, float], heading: float) -> Image.Image:
        pano, rotation = self._panorama(self.index.pano_id(latlng))
        yaw = study_yaw(heading, rotation)
        return Image.fromarray(perspective(pano, yaw, self.size, pitch_deg=VIEW_PITCH_DEG), "RGB")

    def _panorama(self, pano_id: str) -> tuple[np.ndarray, float]:
        if pano_id in self._cache:
            self._cache.move_to_end(pano_id)
            return self._cache[pano_id]
        entry = (self._read_image(pano_id), self._read_rotation(pano_id))
        self._cache[pano_id] = entry
        if len(self._cache) > PANORAMA_CACHE_SIZE:
            self._cache.popitem(last=False)
        return entry

    def _read_image(self, pano_id: str) -> np.ndarray:
        path = self.folder / f"{pano_id}.jpg"
        if not path.is_file():
            raise RouteFormatError(f"{path}: panorama not found (mapped from the route's points)")
        with Image.open(path) as img:
            pano = img.convert("RGB")
        limit = MAX_PANO_WIDTH_PER_VIEW * self.size
        if pano.width > limit:
            pano = pano.resize((limit, max(1, round(pano.height * limit / pano.width))))
        return np.asarray(pano, dtype=np.uint8)

    def _read_rotation(self, pano_id: str) -> float:
        path = self.folder / f"{pano_id}.metadata.json"
        if not path.is_file():
            raise RouteFormatError(f"{path}: panorama metadata not found (expected 'rotation')")
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RouteFormatError(f"{path}: not valid JSON ({err})") from err
        rotation = meta.get("rotation") if isinstance(meta, dict) else None
        if isinstance(rotation, bool) or not isinstance(rotation, int | float):
            raise RouteFormatError(f"{path}: key 'rotation' missing or not a number (degrees)")
        return float(rotation)
