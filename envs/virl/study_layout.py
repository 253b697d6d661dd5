"""Routes in the study's release layout (``route_infos.json`` as the study's code reads it).

Top level: ``[routes, route_count]``. Of each route object only these keys are read::

    start_place.relocated_geocode   [lat, lng] of the start
    init_heading                    optional degrees; missing or 0 = a random heading
    dest_place                      {"name", "geocode": [lat, lng]}: the goal
    route_results.landmark_list     [{"name", ...}, ...]; the destination is added as the last
    route_results.geocode_list      [[lat, lng], ...]: the points after the start
    milestone_info                  ONE string of loose "{ ... }" blocks, one per point before
                                    the destination, each a few "key": "value" lines

Two keys of a block matter: ``landmarks`` ("X is on your left front"; missing = "No landmark
nearby") and ``to_next_intersection_heading`` ("297 (northwest)": degrees, then the compass
label). The walk is the study's: at every point before the destination the agent turns to the
block's label (the label is taken from the data, never recomputed), then walks
``straight_line_length`` forward() steps to the next point through interpolated points, and
stops at the destination. A relative turn is named from the change between the previous
heading and the block's degrees with the study's thresholds (``directions.relative_label``).

A malformed file raises RouteFormatError naming the file, the route index and the key.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

from envs.virl.city import stable_seed
from envs.virl.directions import relative_label
from envs.virl.routes import Milestone, Place, Route, RouteFormatError
from verifier.virl import mentioned_landmarks
from verifier.virl_rules import ABSOLUTE_DIRECTIONS

NO_LANDMARK = "No landmark nearby"
"""The study's text for a block without a ``landmarks`` line."""
START_NOTE = "No landmarks nearby"
"""What the study observes at the start and between points."""
STUDY_CITY = "release"
"""City name given to routes read from a release folder (the layout has none)."""


def is_study_layout(data: Any) -> bool:
    """The study's top level is [list of routes, count]; this project's is a list of objects."""
    return (
        isinstance(data, list)
        and len(data) == 2
        and isinstance(data[0], list)
        and isinstance(data[1], int)
        and not isinstance(data[1], bool)
    )


def parse_milestone_info(text: str) -> list[dict[str, str]]:
    """The loose ``{ ... }`` blocks of a milestone_info string, as the study reads them.

    Blocks end at '}'; each line is ``key: value`` split at the first colon, with trailing
    commas and surrounding quotes dropped. Lines without a colon and empty blocks are skipped.
    """
    blocks: list[dict[str, str]] = []
    for raw in text.split("}"):
        body = raw.strip().lstrip("{").strip()
        block: dict[str, str] = {}
        for line in body.splitlines():
            line = line.strip().rstrip(",")
            key, colon, value = line.partition(":")
            if colon:
                block[key.strip().strip("\"'")] = value.strip().strip("\"'")
        if block:
            blocks.append(block)
    return blocks


def _heading_of(block: dict[str, str], where: str) -> tuple[float, str]:
    """(degrees, compass label) of a block's to_next_intersection_heading."""
    key = "to_next_intersection_heading"
    raw = block.get(key)
    if raw is None:
        raise RouteFormatError(f"{where}: missing key '{key}' (expected e.g. '297 (northwest)')")
    degrees, _, rest = raw.partition("(")
    label = rest.partition(")")[0].strip().lower()
    try:
        value = float(degrees.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or label not in ABSOLUTE_DIRECTIONS:
        raise RouteFormatError(
            f"{where}: key '{key}' is {raw!r} (expected degrees then a compass label in "
            f"parentheses, e.g. '297 (northwest)')"
        )
    return value, label


def _pair(value: Any, where: str, key: str) -> tuple[float, float]:
    ok = (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not ok:
        raise RouteFormatError(f"{where}: key '{key}' is {value!r:.60} (expected [lat, lng])")
    return float(value[0]), float(value[1])


def _obj(value: Any, where: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise RouteFormatError(f"{where}: missing key '{key}' or not an object")
    return value


def _named_place(obj: Any, where: str) -> Place:
    name = obj.get("name") if isinstance(obj, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise RouteFormatError(f"{where}: key 'name' missing or empty (expected a place name)")
    geo = obj.get("geocode")
    lat, lng = _pair(geo, where, "geocode") if geo is not None else (math.nan, math.nan)
    return Place(name, lat, lng)


def _start_heading(route: dict[str, Any], index: int, where: str) -> float:
    """init_heading, or the study's random heading (an integer in [0, 359]) when missing or 0;
    seeded by the route index so every process draws the same one."""
    raw = route.get("init_heading", 0)
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        raise RouteFormatError(f"{where}: key 'init_heading' is {raw!r} (expected degrees)")
    if raw == 0:
        return float(random.Random(stable_seed("init_heading", index)).randint(0, 359))
    return float(raw)


def _mentioned(text: str, names: list[str]) -> tuple[str, ...]:
    # The verifier's own matcher, so the expert's landmarks are the ones the verifier reads.
    return tuple(sorted(mentioned_landmarks(text, names)))


def _turn_sentence(k: int, last: bool, relative: str, label: str) -> str:
    first = "First, turn" if k == 0 and not last else "Turn"
    return f"{first} {relative} to face {label}."


def _walk_sentence(last: bool, landmark: str) -> str:
    if last:
        return f"Move forward until you reach destination where {landmark}."
    if landmark == NO_LANDMARK:
        return "Move forward until you reach next intersection."
    return f"Move forward until you reach next intersection where {landmark}."


def _interpolate(
    a: tuple[float, float], b: tuple[float, float], steps: int
) -> list[tuple[float, float]]:
    """The points strictly between a and b that split it into `steps` equal legs."""
    return [
        (a[0] + (b[0] - a[0]) * i / steps, a[1] + (b[1] - a[1]) * i / steps)
        for i in range(1, steps)
    ]


def study_route(obj: Any, index: int, where: str, straight_line_length: int) -> Route:
    """One route object of the study's layout as a Route walked the study's way."""
    if not isinstance(obj, dict):
        raise RouteFormatError(f"{where}: expected a route object, got {type(obj).__name__}")
    start = _obj(obj.get("start_place"), where, "start_place")
    start_point = _pair(
        start.get("relocated_geocode"), f"{where}: start_place", "relocated_geocode"
    )
    dest = _named_place(_obj(obj.get("dest_place"), where, "dest_place"), f"{where}: dest_place")
    results = _obj(obj.get("route_results"), where, "route_results")
    rwhere = f"{where}: route_results"
    raw_landmarks = results.get("landmark_list")
    if not isinstance(raw_landmarks, list):
        raise RouteFormatError(f"{rwhere}: key 'landmark_list' missing or not a list")
    places = [_named_place(p, f"{rwhere}: landmark_list[{i}]") for i, p in enumerate(raw_landmarks)]
    landmarks = tuple({p.name: p for p in [*places, dest]}.values())
    raw_geo = results.get("geocode_list")
    if not isinstance(raw_geo, list) or not raw_geo:
        raise RouteFormatError(f"{rwhere}: key 'geocode_list' missing or empty")
    points = [start_point] + [_pair(p, rwhere, f"geocode_list[{i}]") for i, p in enumerate(raw_geo)]
    text = obj.get("milestone_info")
    if not isinstance(text, str):
        raise RouteFormatError(f"{where}: key 'milestone_info' missing or not a string")
    blocks = parse_milestone_info(text)
    if len(blocks) != len(raw_geo):
        raise RouteFormatError(
            f"{where}: key 'milestone_info' has {len(blocks)} blocks but "
            f"route_results.geocode_list has {len(raw_geo)} points (expected one block per point "
            f"after the start)"
        )
    heading = _start_heading(obj, index, where)
    return _walk(index, points, blocks, (landmarks, dest), heading, where, straight_line_length)


def _walk(
    index: int,
    points: list[tuple[float, float]],
    blocks: list[dict[str, str]],
    places: tuple[tuple[Place, ...], Place],
    start_heading: float,
    where: str,
    legs: int,
) -> Route:
    """Densify the points and attach the turns, sentences and observations of every block."""
    landmarks, dest = places
    names = [lm.name for lm in landmarks]
    geocodes = [points[0]]
    headings = [start_heading]
    seen: list[tuple[str, ...]] = [()]
    notes = [START_NOTE]
    flags = [False]
    milestones: list[Milestone] = []
    previous = start_heading
    last_block = len(blocks) - 1
    walk_sentence = ""
    for k, block in enumerate(blocks):
        degrees, label = _heading_of(block, f"{where}: milestone_info block {k}")
        landmark = block.get("landmarks", NO_LANDMARK)
        turn = _turn_sentence(k, k == last_block, relative_label(previous, degrees), label)
        milestones.append(
            Milestone(len(geocodes) - 1, "", "turn", degrees, walk_sentence, turn, label)
        )
        walk_sentence = _walk_sentence(k == last_block, landmark)
        # The legs to the next point: interpolated points, then the point itself.
        inner = _interpolate(points[k], points[k + 1], legs)
        geocodes += [*inner, points[k + 1]]
        headings += [degrees] * (len(inner) + 1)
        seen += [()] * len(inner) + [_mentioned(landmark, names)]
        notes += [START_NOTE] * len(inner) + [landmark]
        flags += [False] * len(inner) + [k != last_block]
        previous = degrees
    milestones.append(Milestone(len(geocodes) - 1, "", "stop", None, walk_sentence, ""))
    return Route(
        route_id=f"route-{index:04d}",
        city=STUDY_CITY,
        start_place=Place("start", *points[0]),
        dest_place=dest,
        start_heading=start_heading,
        landmarks=landmarks,
        geocodes=tuple(geocodes),
        intersections=tuple(flags),
        milestones=tuple(milestones),
        headings=tuple(headings),
        seen=tuple(seen),
        notes=tuple(notes),
    )


def load_study_routes(path: str | Path, straight_line_length: int = 2) -> tuple[Route, ...]:
    """Read a route_infos.json in the study's layout."""
    path = Path(path)
    if not path.is_file():
        raise RouteFormatError(f"{path}: file not found (expected route_infos.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise RouteFormatError(f"{path}: not valid JSON ({err})") from err
    if not is_study_layout(data):
        raise RouteFormatError(
            f"{path}: expected the study's top level [routes, route_count] (a list of route "
            f"objects and an int), got {type(data).__name__}"
        )
    return tuple(
        study_route(obj, i, f"{path}: route {i}", straight_line_length)
        for i, obj in enumerate(data[0])
    )
