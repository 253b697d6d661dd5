"""Heading arithmetic: wrapping, relative turn labels at their edges, compass sectors."""

import pytest

from envs.virl.directions import (
    bearing,
    compass_label,
    distance_m,
    left_or_right,
    offset_latlng,
    relative_label,
    side_index,
    wrap_angle,
)


@pytest.mark.parametrize(
    ("deg", "wrapped"),
    [
        (0, 0),
        (180, 180),
        (-180, 180),
        (540, 180),
        (-540, 180),
        (190, -170),
        (-190, 170),
        (360, 0),
        (-45, -45),
        (45, 45),
        (350 - 10, -20),
        (10 - 350, 20),
        (720.5, 0.5),
    ],
)
def test_wrap_angle_range_is_minus_180_exclusive(deg, wrapped):
    assert wrap_angle(deg) == pytest.approx(wrapped)
    assert -180 < wrap_angle(deg) <= 180


@pytest.mark.parametrize(
    ("start", "end", "label"),
    [
        (0, 315, "slightly left"),  # exactly -45 is still slight
        (0, 314.9, "left"),
        (0, 0, "slightly left"),  # no change: the study checks [-45, 0] first
        (0, 45, "slightly right"),  # exactly 45 is still slight
        (0, 45.1, "right"),
        (0, 180, "right"),  # a U-turn wraps to +180
        (90, 270, "right"),
        (270, 90, "right"),  # -180 wraps to +180: also right
        (0, 359, "slightly left"),
        (350, 10, "slightly right"),  # the reference code called this a left (no wrap)
        (10, 350, "slightly left"),
        (0, 90, "right"),
        (0, 270, "left"),
        (180, 90, "left"),
    ],
)
def test_relative_label_edges(start, end, label):
    assert relative_label(start, end) == label


@pytest.mark.parametrize(
    ("heading", "label"),
    [
        (0, "north"),
        (22.4, "north"),
        (22.5, "northeast"),
        (359, "north"),
        (337.4, "northwest"),
        (90, "east"),
        (135, "southeast"),
        (180, "south"),
        (225, "southwest"),
        (270, "west"),
        (-90, "west"),
        (405, "northeast"),
    ],
)
def test_compass_label_sectors(heading, label):
    assert compass_label(heading) == label


def test_bearing_and_distance_on_a_local_offset():
    origin = (40.75, -73.99)
    north = offset_latlng(origin, 0.0, 100.0)
    east = offset_latlng(origin, 100.0, 0.0)
    assert bearing(origin, north) == pytest.approx(0.0, abs=1e-6)
    assert bearing(origin, east) == pytest.approx(90.0, abs=1e-6)
    assert bearing(east, origin) == pytest.approx(270.0, abs=1e-6)
    assert distance_m(origin, north) == pytest.approx(100.0, rel=1e-6)


def test_side_quarters_are_half_open_and_cover_the_circle():
    assert [side_index(0, b) for b in (0, 44.9, 45, 134.9, 135, 224.9, 225, 314.9, 315)] == [
        0,
        0,
        1,
        1,
        2,
        2,
        3,
        3,
        0,
    ]
    assert left_or_right(0, 30) == "right"
    assert left_or_right(0, 330) == "left"
    assert left_or_right(90, 180) == "right"
