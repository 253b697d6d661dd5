"""Route data model and a loader for this project's V-IRL layout.

(The study's own release layout is read by ``envs.virl.study_layout`` into the same Route
model; ``envs.virl.pools`` picks the reader.)

Layout of a data folder in this project's layout::

    route_infos.json        a JSON list of routes (schema below)
    gps_pano_mapping.json   {"<lat:.6f>,<lng:.6f>": "<pano_id>", ...}: one panorama per point
    street_views/           <pano_id>.jpg (or .png): 360-degree cylindrical panoramas whose
                            left edge faces north and whose columns turn clockwise

One route in route_infos.json::

    {"route_id": str, "city": str,
     "start_place": {"name": str, "lat": float, "lng": float},
     "dest_place":  {"name": str, "lat": float, "lng": float},
     "route_results": {
        "start_heading": float,                       # the agent's heading at point 0
        "landmark_list": [{"name", "lat", "lng"}, ...],  # every landmark seen along the route
        "geocode_list": [[lat, lng], ...],            # the points, start to destination
        "intersection_list": [bool, ...]},            # one flag per point
     "milestone_info": [                               # the turn points and the final stop
        {"point_index": int, "landmark": str, "action": "turn" | "stop",
         "heading": float | null,                     # heading after the turn (null for stop)
         "approach": str,                             # "move forward until ..." ("" at point 0)
         "instruction": str}, ...]}                   # the sentence executed at that point

A malformed file raises RouteFormatError naming the file, the route index and the key, and
saying what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from envs.virl.directions import distance_m

ROUTE_INFOS_FILE = "route_infos.json"
GPS_PANO_FILE = "gps_pano_mapping.json"
STREET_VIEW_DIR = "street_views"
PANORAMA_SUFFIXES: tuple[str, ...] = (".jpg", ".png")

VISIBILITY_RADIUS_M = 20.0
"""A landmark is observed at the route point nearest to it, if it stands within this distance of
it (the generator keeps landmarks 8 m from their node, points >= ~20 m apart)."""


class RouteFormatError(ValueError):
    """A route file does not follow the released layout."""


@dataclass(frozen=True)
class Place:
    """A named location: a start/destination place or a landmark."""

    name: str
    lat: float
    lng: float

    @property
    def latlng(self) -> tuple[float, float]:
        return (self.lat, self.lng)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "lat": self.lat, "lng": self.lng}


@dataclass(frozen=True)
class Milestone:
    """A point where the instructions ask for something other than walking on."""

    point_index: int
    landmark: str
    action: str
    """'turn' or 'stop'."""
    heading: float | None
    """Heading after the turn; None for the stop."""
    approach: str
    """The 'move forward until ...' sentence that leads here ('' for the first milestone)."""
    instruction: str
    """The sentence executed at this point ('Turn right to face east ...', 'Stop at ...'); ''
    for a stop that shares the sentence of the walk leading to it (study layout)."""
    label: str | None = None
    """The turn's compass label as written in the data (study layout); None: the nearest of
    the eight compass points to ``heading``."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "point_index": self.point_index,
            "landmark": self.landmark,
            "action": self.action,
            "heading": self.heading,
            "approach": self.approach,
            "instruction": self.instruction,
        }


@dataclass(frozen=True)
class Route:
    """One navigation route: the points to walk and the instructions that describe them."""

    route_id: str
    city: str
    start_place: Place
    dest_place: Place
    start_heading: float
    landmarks: tuple[Place, ...]
    geocodes: tuple[tuple[float, float], ...]
    intersections: tuple[bool, ...]
    milestones: tuple[Milestone, ...]
    headings: tuple[float, ...] | None = None
    """The agent's heading on reaching each point, from the data (study layout); None: the
    bearing of the street segment walked into it (start_heading at point 0)."""
    seen: tuple[tuple[str, ...], ...] | None = None
    """Names of the landmarks observed at each point, from the data (study layout); None: the
    nearest-point rule on coordinates."""
    notes: tuple[str, ...] | None = None
    """The data's observation sentence at each point ('X is on your left front'); None: the
    observation text is written from coordinates."""

    @property
    def num_points(self) -> int:
        return len(self.geocodes)

    @cached_property
    def _visible(self) -> tuple[tuple[Place, ...], ...]:
        # Nearest-point rule: each landmark is observed at one point at most, so "move forward
        # until you reach X" always names a single point of the route.
        if self.seen is not None:
            by_name = {lm.name: lm for lm in self.landmarks}
            return tuple(
                tuple(sorted((by_name[n] for n in names), key=lambda lm: lm.name))
                for names in self.seen
            )
        seen: list[list[Place]] = [[] for _ in self.geocodes]
        for lm in self.landmarks:
            dists = [distance_m(p, lm.latlng) for p in self.geocodes]
            nearest = min(range(len(dists)), key=dists.__getitem__)
            if dists[nearest] <= VISIBILITY_RADIUS_M:
                seen[nearest].append(lm)
        return tuple(tuple(sorted(v, key=lambda lm: lm.name)) for v in seen)

    def visible_landmarks(self, point_index: int) -> tuple[Place, ...]:
        """Landmarks observed at a point, sorted by name."""
        return self._visible[point_index]

    @property
    def sentences(self) -> tuple[str, ...]:
        """The instruction sentences in order (approach, then action, per milestone)."""
        out: list[str] = []
        for m in self.milestones:
            if m.approach:
                out.append(m.approach)
            if m.instruction:
                out.append(m.instruction)
        return tuple(out)

    @property
    def instruction_text(self) -> str:
        return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(self.sentences))

    def to_dict(self) -> dict[str, Any]:
        """This project's layout JSON object for this route (the per-point data of a route read
        from the study's layout is not part of it)."""
        return {
            "route_id": self.route_id,
            "city": self.city,
            "start_place": self.start_place.to_dict(),
            "dest_place": self.dest_place.to_dict(),
            "route_results": {
                "start_heading": self.start_heading,
                "landmark_list": [lm.to_dict() for lm in self.landmarks],
                "geocode_list": [[lat, lng] for lat, lng in self.geocodes],
                "intersection_list": list(self.intersections),
            },
            "milestone_info": [m.to_dict() for m in self.milestones],
        }


# ---------------------------------------------------------------- parsing with clear errors


def _get(obj: Any, key: str, kind: type | tuple[type, ...], expected: str, where: str) -> Any:
    if not isinstance(obj, dict):
        raise RouteFormatError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        raise RouteFormatError(f"{where}: missing key '{key}' (expected {expected})")
    value = obj[key]
    # bool is an int in Python; a flag where a number belongs is a format error all the same.
    bad_bool = isinstance(value, bool) and bool not in _as_tuple(kind)
    if bad_bool or not isinstance(value, kind):
        raise RouteFormatError(
            f"{where}: key '{key}' is {type(value).__name__} {_short(value)} (expected {expected})"
        )
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _place(obj: Any, where: str) -> Place:
    name = _get(obj, "name", str, "a non-empty string", where)
    if not name.strip():
        raise RouteFormatError(f"{where}: key 'name' is empty (expected a non-empty string)")
    lat = _get(obj, "lat", (int, float), "a latitude in degrees", where)
    lng = _get(obj, "lng", (int, float), "a longitude in degrees", where)
    return Place(name, float(lat), float(lng))


def _latlng(item: Any, where: str) -> tuple[float, float]:
    ok = (
        isinstance(item, list)
        and len(item) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in item)
    )
    if not ok:
        raise RouteFormatError(f"{where}: {_short(item)} is not a [lat, lng] pair of numbers")
    return float(item[0]), float(item[1])


def _milestone(obj: Any, where: str, num_points: int, names: set[str]) -> Milestone:
    index = _get(obj, "point_index", int, f"a point index in [0, {num_points})", where)
    if not 0 <= index < num_points:
        raise RouteFormatError(
            f"{where}: key 'point_index' is {index} (expected a point index in [0, {num_points}))"
        )
    landmark = _get(obj, "landmark", str, "a name from route_results.landmark_list", where)
    if landmark not in names:
        raise RouteFormatError(
            f"{where}: key 'landmark' {landmark!r} is not in route_results.landmark_list"
        )
    action = _get(obj, "action", str, "'turn' or 'stop'", where)
    if action not in ("turn", "stop"):
        raise RouteFormatError(f"{where}: key 'action' is {action!r} (expected 'turn' or 'stop')")
    heading = _get(obj, "heading", (int, float, type(None)), "a heading in degrees or null", where)
    approach = _get(obj, "approach", str, "a sentence ('' for the first milestone)", where)
    instruction = _get(obj, "instruction", str, "a sentence", where)
    if action == "turn" and heading is None:
        raise RouteFormatError(f"{where}: key 'heading' is null (expected a number for a turn)")
    return Milestone(
        index, landmark, action, None if heading is None else float(heading), approach, instruction
    )


def route_from_dict(obj: Any, where: str) -> Route:
    """Parse one route object; ``where`` (e.g. 'route_infos.json: route 3') prefixes errors."""
    route_id = _get(obj, "route_id", str, "a route id string", where)
    city = _get(obj, "city", str, "a city name", where)
    start = _place(_get(obj, "start_place", dict, "a place object", where), f"{where}: start_place")
    dest = _place(_get(obj, "dest_place", dict, "a place object", where), f"{where}: dest_place")
    results = _get(obj, "route_results", dict, "an object with the route's points", where)
    rwhere = f"{where}: route_results"
    start_heading = _get(results, "start_heading", (int, float), "a heading in degrees", rwhere)
    raw_landmarks = _get(results, "landmark_list", list, "a list of place objects", rwhere)
    landmarks = tuple(
        _place(p, f"{rwhere}: landmark_list[{i}]") for i, p in enumerate(raw_landmarks)
    )
    raw_geo = _get(results, "geocode_list", list, "a list of [lat, lng] pairs", rwhere)
    if len(raw_geo) < 2:
        raise RouteFormatError(
            f"{rwhere}: key 'geocode_list' has {len(raw_geo)} points (expected >= 2)"
        )
    geocodes = tuple(_latlng(p, f"{rwhere}: geocode_list[{i}]") for i, p in enumerate(raw_geo))
    flags = _get(results, "intersection_list", list, "one bool per geocode", rwhere)
    if len(flags) != len(geocodes) or not all(isinstance(f, bool) for f in flags):
        raise RouteFormatError(
            f"{rwhere}: key 'intersection_list' must hold {len(geocodes)} bools (one per geocode)"
        )
    names = {lm.name for lm in landmarks}
    raw_ms = _get(obj, "milestone_info", list, "a list of milestone objects", where)
    milestones = tuple(
        _milestone(m, f"{where}: milestone_info[{i}]", len(geocodes), names)
        for i, m in enumerate(raw_ms)
    )
    if not milestones or milestones[-1].action != "stop":
        raise RouteFormatError(f"{where}: key 'milestone_info' must end with a 'stop' milestone")
    if milestones[-1].point_index != len(geocodes) - 1:
        raise RouteFormatError(
            f"{where}: milestone_info: the 'stop' milestone must be at the last point "
            f"({len(geocodes) - 1}), got {milestones[-1].point_index}"
        )
    return Route(
        route_id,
        city,
        start,
        dest,
        float(start_heading),
        landmarks,
        geocodes,
        tuple(flags),
        milestones,
    )


# ---------------------------------------------------------------- the released layout


def gps_key(latlng: tuple[float, float]) -> str:
    """The key of a point in gps_pano_mapping.json."""
    return f"{latlng[0]:.6f},{latlng[1]:.6f}"


@dataclass(frozen=True)
class ReleasedDataset:
    """Routes plus the panorama of every point, read from a folder in the released layout."""

    root: Path
    routes: tuple[Route, ...]
    gps_to_pano: dict[str, str]

    def pano_id(self, latlng: tuple[float, float]) -> str:
        return self.gps_to_pano[gps_key(latlng)]

    def panorama_path(self, pano_id: str) -> Path:
        for suffix in PANORAMA_SUFFIXES:
            path = self.root / STREET_VIEW_DIR / f"{pano_id}{suffix}"
            if path.is_file():
                return path
        raise FileNotFoundError(
            f"{self.root / STREET_VIEW_DIR}: no panorama '{pano_id}' with a suffix in "
            f"{list(PANORAMA_SUFFIXES)}"
        )


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise RouteFormatError(f"{path}: file not found (expected the released V-IRL layout)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RouteFormatError(f"{path}: not valid JSON ({err})") from err


def load_routes(path: str | Path) -> tuple[Route, ...]:
    """Read route_infos.json (a JSON list of routes)."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, list):
        raise RouteFormatError(f"{path}: expected a JSON list of routes, got {type(data).__name__}")
    routes = tuple(route_from_dict(r, f"{path}: route {i}") for i, r in enumerate(data))
    seen: set[str] = set()
    for i, r in enumerate(routes):
        if r.route_id in seen:
            raise RouteFormatError(f"{path}: route {i}: key 'route_id' {r.route_id!r} is repeated")
        seen.add(r.route_id)
    return routes


def load_released_layout(root: str | Path) -> ReleasedDataset:
    """Read and check a data folder: every point must map to a panorama file that exists."""
    root = Path(root)
    routes = load_routes(root / ROUTE_INFOS_FILE)
    mapping_path = root / GPS_PANO_FILE
    mapping = _read_json(mapping_path)
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise RouteFormatError(
            f"{mapping_path}: expected an object of 'lat,lng' -> pano id strings"
        )
    views = root / STREET_VIEW_DIR
    if not views.is_dir():
        raise RouteFormatError(f"{views}: folder not found (expected <pano_id>.jpg panoramas)")
    dataset = ReleasedDataset(root, routes, dict(mapping))
    for i, route in enumerate(routes):
        for j, point in enumerate(route.geocodes):
            key = gps_key(point)
            if key not in mapping:
                raise RouteFormatError(
                    f"{mapping_path}: route {i}: geocode_list[{j}] {key} has no panorama entry"
                )
            dataset.panorama_path(mapping[key])
    return dataset
