"""Headings, compass labels, relative turn labels and local geometry (pure functions).

Headings are degrees clockwise from north in [0, 360). The relative label of a turn follows the
paper, with the heading change wrapped to (-180, 180] first (the reference code does not wrap, so
a turn from 350 to 10 degrees came out as a 'left' there; here it is 'slightly right').
"""

from __future__ import annotations

import math

# The action spaces are the verifier's rules (verifier/ imports nothing from envs/).
from verifier.virl_rules import ABSOLUTE_DIRECTIONS

SHARP_TURN_DEG = 45.0
"""Heading changes beyond +-45 degrees are a full left/right; within, a 'slight' one."""
METERS_PER_DEG_LAT = 110_540.0
METERS_PER_DEG_LNG_AT_EQUATOR = 111_320.0


def wrap_angle(deg: float) -> float:
    """Wrap an angle to (-180, 180]; -180 maps to 180 so every turn has one label."""
    d = math.fmod(deg, 360.0)
    if d <= -180.0:
        d += 360.0
    elif d > 180.0:
        d -= 360.0
    return d


def normalize_heading(deg: float) -> float:
    """A heading in [0, 360)."""
    h = math.fmod(deg, 360.0)
    h = h + 360.0 if h < 0 else h
    return 0.0 if h >= 360.0 else h


def relative_label(from_heading: float, to_heading: float) -> str:
    """The relative action that turns from one heading to another.

    The study's thresholds: < -45 left, > 45 right, [-45, 0] slightly left (no change
    included: the study checks that range first), (0, 45] slightly right.
    """
    d = wrap_angle(to_heading - from_heading)
    if d < -SHARP_TURN_DEG:
        return "left"
    if d > SHARP_TURN_DEG:
        return "right"
    return "slightly left" if d <= 0 else "slightly right"


def compass_label(heading: float) -> str:
    """The nearest of the eight compass directions (sectors of 45 degrees centred on each)."""
    index = math.floor((normalize_heading(heading) + 22.5) / 45.0) % 8
    return ABSOLUTE_DIRECTIONS[index]


def compass_heading(label: str) -> float:
    """The heading of a compass label: north = 0, east = 90, ..."""
    return ABSOLUTE_DIRECTIONS.index(label) * 45.0


def side_index(agent_heading: float, target_bearing: float) -> int:
    """Which quarter around the agent a target lies in: 0 ahead, 1 right, 2 behind, 3 left.

    Quarters are half-open ([-45, 45) is ahead) so every target falls in exactly one of the four
    street views of the image observation.
    """
    d = normalize_heading(target_bearing - agent_heading + 45.0)
    return int(d // 90.0) % 4


SIDE_WORDS: tuple[str, ...] = ("ahead", "right", "behind", "left")


def side_word(agent_heading: float, target_bearing: float) -> str:
    """Where a target lies for an agent facing agent_heading: ahead/right/behind/left."""
    return SIDE_WORDS[side_index(agent_heading, target_bearing)]


def left_or_right(agent_heading: float, target_bearing: float) -> str:
    """'right' when the target is on the right half-plane of the agent, else 'left'."""
    return "right" if 0.0 <= wrap_angle(target_bearing - agent_heading) < 180.0 else "left"


def local_xy(origin: tuple[float, float], point: tuple[float, float]) -> tuple[float, float]:
    """East/north offset in metres of a (lat, lng) point from an origin (equirectangular)."""
    lat0, lng0 = origin
    lat, lng = point
    scale = METERS_PER_DEG_LNG_AT_EQUATOR * math.cos(math.radians(lat0))
    return (lng - lng0) * scale, (lat - lat0) * METERS_PER_DEG_LAT


def offset_latlng(
    origin: tuple[float, float], east_m: float, north_m: float
) -> tuple[float, float]:
    """The (lat, lng) at an east/north offset in metres from an origin."""
    lat0, lng0 = origin
    scale = METERS_PER_DEG_LNG_AT_EQUATOR * math.cos(math.radians(lat0))
    return lat0 + north_m / METERS_PER_DEG_LAT, lng0 + east_m / scale


def bearing(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Heading from a to b (both (lat, lng)) in [0, 360)."""
    east, north = local_xy(a, b)
    return normalize_heading(math.degrees(math.atan2(east, north)))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Approximate ground distance in metres (fine at street scale)."""
    east, north = local_xy(a, b)
    return math.hypot(east, north)
