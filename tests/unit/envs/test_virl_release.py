"""The study's V-IRL release layout: routes, the pickled mapping, panoramas, whole episodes."""

import json
import os
import pickle

import numpy as np
import pytest

from envs.virl.config import VirlConfig
from envs.virl.env import VirlEnv
from envs.virl.oracle import oracle_steps
from envs.virl.pools import data_format, route_pool
from envs.virl.routes import RouteFormatError
from envs.virl.study_layout import load_study_routes, parse_milestone_info
from envs.virl.study_views import (
    PanoIndex,
    StudyViews,
    UnsafePickleError,
    load_gps_pano_mapping,
    perspective,
    study_yaw,
)
from tests.unit.envs.virl_release_fixture import (
    ROUTE_A,
    ROUTE_A_BLOCKS,
    ROUTE_B,
    SECTOR_COLORS,
    write_release,
)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("study_release") / "virl")


def _config(root, **overrides):
    base = {"data_dir": str(root), "eval_fraction": 0.5, "view_size": 64}
    return VirlConfig(**(base | overrides))


def test_milestone_info_blocks_are_read_as_the_study_reads_them():
    blocks = parse_milestone_info(ROUTE_A_BLOCKS)
    assert [b["to_next_intersection_heading"] for b in blocks] == [
        "10 (north)",
        "95 (east)",
        "182 (south)",
    ]
    assert blocks[0]["landmarks"] == "Joe's Pizza is on your left front"
    assert blocks[1]["landmarks"] == "Blue Bottle Cafe is on your right"  # unquoted
    assert "landmarks" not in blocks[2]


def test_routes_follow_the_data(release):
    a, b = load_study_routes(release / "route_infos.json", straight_line_length=2)
    assert a == load_study_routes(release / "route_infos.json")[0]  # random heading is seeded
    assert a.start_heading == int(a.start_heading) and 0 <= a.start_heading <= 359
    assert b.start_heading == 100.0
    # Start, then per segment one interpolated point and the point itself.
    assert a.num_points == 1 + 3 * 2 and b.num_points == 1 + 2 * 2
    steps = oracle_steps(b)
    assert [s.action("absolute") for s in steps] == [
        "turn_direction(west)",
        "forward()",
        "forward()",
        "turn_direction(southwest)",
        "forward()",
        "forward()",
        "stop()",
    ]
    # 100 -> 270 is +170 (right); 270 -> 225 is -45 (slightly left, the study's threshold).
    assert [s.action("relative") for s in steps if s.kind == "turn"] == [
        "turn_direction(right)",
        "turn_direction(slightly left)",
    ]
    assert [lm.name for lm in b.visible_landmarks(b.num_points - 1)] == ["Katz Deli"]
    assert b.intersections == (False, False, True, False, False)
    assert b.sentences == (
        "First, turn right to face west.",
        "Move forward until you reach next intersection.",
        "Turn slightly left to face southwest.",
        "Move forward until you reach destination where Katz Deli is on your right.",
    )
    assert b.sentences[steps[-1].sentence_index] == b.sentences[-1]  # stop shares the walk's
    longer = load_study_routes(release / "route_infos.json", straight_line_length=4)[1]
    assert sum(s.kind == "forward" for s in oracle_steps(longer)) == 2 * 4


def test_labels_come_from_the_data_not_from_the_degrees(tmp_path):
    route = json.loads(json.dumps(ROUTE_B))
    # 250 degrees is nearest to west, but the data says southwest: the data wins.
    route["milestone_info"] = route["milestone_info"].replace("270 (west)", "250 (southwest)")
    write_release(tmp_path / "d", [route, ROUTE_A])
    steps = oracle_steps(load_study_routes(tmp_path / "d" / "route_infos.json")[0])
    assert steps[0].action("absolute") == "turn_direction(southwest)"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda r: r["start_place"].pop("relocated_geocode"), "route 1: start_place: key"),
        (lambda r: r.pop("milestone_info"), "route 1: key 'milestone_info'"),
        (
            lambda r: r.update(milestone_info=r["milestone_info"].replace("(west)", "(up)")),
            "route 1: milestone_info block 0: key 'to_next_intersection_heading'",
        ),
        (
            lambda r: r["route_results"]["geocode_list"].pop(),
            "route 1: key 'milestone_info' has 2 blocks but route_results.geocode_list has 1",
        ),
        (lambda r: r["dest_place"].pop("name"), "route 1: dest_place: key 'name'"),
        (lambda r: r.update(init_heading="east"), "route 1: key 'init_heading'"),
    ],
)
def test_errors_name_the_file_route_and_key(tmp_path, edit, message):
    route = json.loads(json.dumps(ROUTE_B))
    edit(route)
    write_release(tmp_path / "d", [ROUTE_A, route], views=False)
    with pytest.raises(RouteFormatError) as err:
        load_study_routes(tmp_path / "d" / "route_infos.json")
    assert "route_infos.json: " in str(err.value) and message in str(err.value)


def test_format_is_detected_or_named(release, tmp_path):
    assert data_format(_config(release)) == "study"
    assert data_format(_config(release, data_format="study")) == "study"
    with pytest.raises(RouteFormatError, match=r"route_infos\.json: route 0"):
        route_pool(_config(release, data_format="project"))
    with pytest.raises(ValueError, match="data_format: 'json' is not one of"):
        _config(release, data_format="json")


def test_a_folder_too_small_for_the_train_split_fails_at_load(tmp_path):
    root = write_release(tmp_path / "one", [ROUTE_A])
    with pytest.raises(ValueError, match=r"1 route\(s\), too few to fill the 'train' split"):
        VirlEnv(_config(root, split="train"))
    assert len(route_pool(_config(root, split="eval"))) == 1


def test_mapping_lookup_falls_back_to_the_nearest_point(release):
    mapping = load_gps_pano_mapping(release / "gps_pano_mapping.pkl")
    index = PanoIndex(mapping)
    (lat, lng), pano = next(iter(mapping.items()))
    assert index.pano_id((lat, lng)) == pano
    assert index.pano_id((lat + 0.00002, lng - 0.00002)) == pano  # ~3 m away


class _Exploit:
    """Unpickling this would call os.system (the way a pickle runs code)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    root = write_release(tmp_path / "d")
    marker = tmp_path / "pwned"
    (root / "gps_pano_mapping.pkl").write_bytes(pickle.dumps({(40.75, -73.99): _Exploit(marker)}))
    with pytest.raises(UnsafePickleError, match=r"gps_pano_mapping.pkl: refused: .*system"):
        load_gps_pano_mapping(root / "gps_pano_mapping.pkl")
    with pytest.raises(UnsafePickleError):
        VirlEnv(_config(root, observation_mode="image"))
    assert not marker.exists()
    VirlEnv(_config(root))  # text mode reads no panoramas and no mapping


def test_a_mapping_of_the_wrong_shape_is_an_error(tmp_path):
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"40.1,-73.2": "p"}))
    with pytest.raises(RouteFormatError, match="not \\(lat, lng\\) -> pano id"):
        load_gps_pano_mapping(path)
    path.write_bytes(b"not a pickle")
    with pytest.raises(RouteFormatError, match="not a readable pickle"):
        load_gps_pano_mapping(path)


def _sector_color(rotation, heading):
    """Expected colour at the centre of a view: the sector the study's yaw falls in."""
    yaw_from_left = (study_yaw(heading, rotation) + 180.0) % 360.0
    return np.array(SECTOR_COLORS[int(yaw_from_left // 45)])


# With rotation 30, these headings look at the middle of a sector ((h + 30) mod 45 = 22.5).
@pytest.mark.parametrize("heading", [37.5, 82.5, 217.5, 307.5])
def test_views_follow_the_study_heading_convention(release, heading):
    views = StudyViews(release, None, 32)
    view = np.asarray(views.view(tuple(ROUTE_B["start_place"]["relocated_geocode"]), heading))
    assert view.shape == (32, 32, 3)
    centre = view[14:18, 14:18].reshape(-1, 3).mean(axis=0)
    assert np.abs(centre - _sector_color(30.0, heading)).max() < 40


def test_perspective_centre_column_is_yaw_zero():
    pano = np.zeros((64, 128, 3), np.uint8)
    pano[:, 60:68] = 255  # a white band at the panorama's centre
    assert perspective(pano, 0.0, 16)[8, 8].min() > 200
    assert perspective(pano, 90.0, 16)[8, 8].max() < 50


@pytest.mark.parametrize("mode", ["text", "image"])
@pytest.mark.parametrize("action_space", ["absolute", "relative"])
def test_the_oracle_plays_whole_episodes(release, mode, action_space):
    for split in ("train", "eval"):
        env = VirlEnv(
            _config(release, split=split, observation_mode=mode, action_space=action_space)
        )
        obs, info = env.reset(options={"route_index": 0})
        rewards, done = [], False
        while not done:
            if mode == "image":
                assert obs["image"].shape == (128, 128, 3)
                assert env.observation_space.contains(obs)
            obs, reward, done, _, info = env.step(env.expert_answer())
            rewards.append(reward)
        assert rewards == [1.0] * len(env.oracle)
        m = info["metrics"]
        assert m["route_success"] and m["step_accuracy"] == 1.0
        assert m["steps_total"] == len(env.oracle)
        if mode == "image":
            assert m["landmarks_correct"] == m["landmarks_checked"] == len(env.oracle)


def test_image_observation_is_the_grid_of_study_views(release):
    env = VirlEnv(_config(release, split="train", observation_mode="image"))
    obs, _ = env.reset(options={"route_index": 0})
    step = env.oracle[0]
    views = StudyViews(release, None, 64)
    point = env.route.geocodes[step.point_index]
    panes = [obs["image"][:64, :64], obs["image"][:64, 64:], obs["image"][64:, :64]]
    for pane, offset in zip(panes, (0.0, 90.0, 180.0), strict=True):
        expected = np.asarray(views.view(point, (step.heading + offset) % 360.0))
        assert np.array_equal(pane, expected)


def test_suites_on_released_data(release, tmp_path):
    from envs.families import config_dict, family

    vln = write_release(tmp_path / "vln_mini", [ROUTE_B, ROUTE_A, ROUTE_B])
    base = config_dict(_config(release, observation_mode="image"))
    suites = family("virl").suites(base)
    assert list(suites) == ["in_distribution", "ood_rule"]  # no VLN-mini folder given
    suites = family("virl").suites(base | {"vln_mini_dir": str(vln)})
    visual = suites["ood_visual"]
    assert visual["data_dir"] == str(vln) and visual["split"] == "all"
    tasks = family("virl").eval_reset_options(visual, None, 0)
    assert len(tasks) == 3
    env = VirlEnv(visual)
    obs, _ = env.reset(options=tasks[2])
    assert obs["image"].shape == (128, 128, 3)


def test_a_project_layout_folder_too_small_fails_at_load_too(tmp_path):
    from envs.virl.city import generate_city
    from envs.virl.layout import save_released_layout

    root = save_released_layout(generate_city("new_york", 0, 12).routes[:1], tmp_path / "p", 32)
    with pytest.raises(ValueError, match=r"data_dir: .* 1 route\(s\), too few"):
        VirlEnv(VirlConfig(data_dir=str(root), split="train"))
    assert data_format(VirlConfig(data_dir=str(root))) == "project"
