"""The released layout: writer/loader round trip, clear errors on malformed files, data_dir env."""

import json
import shutil

import numpy as np
import pytest

from envs.virl.city import generate_city
from envs.virl.config import VirlConfig
from envs.virl.env import VirlEnv
from envs.virl.layout import save_released_layout
from envs.virl.oracle import expert_answer
from envs.virl.render import crop_panorama, render_panorama, route_view
from envs.virl.routes import (
    GPS_PANO_FILE,
    ROUTE_INFOS_FILE,
    STREET_VIEW_DIR,
    RouteFormatError,
    load_released_layout,
    load_routes,
)
from envs.virl.styles import STYLES


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    city = generate_city("new_york", 0, 12)
    root = tmp_path_factory.mktemp("virl_release")
    save_released_layout(city.routes[:4], root, view_size=48)
    return city, root


def test_round_trip_gives_equal_routes(layout):
    city, root = layout
    data = load_released_layout(root)
    assert data.routes == city.routes[:4]
    for route in data.routes:
        for point in route.geocodes:
            assert data.panorama_path(data.pano_id(point)).is_file()


def test_panorama_crops_reproduce_the_views():
    route = generate_city("new_york", 0, 12).routes[0]
    style = STYLES["new_york"]
    pano = render_panorama(route, style, 0, 64)
    assert pano.size == (256, 64)
    for heading in (45.0, 135.0, 225.0, 315.0):
        crop = np.asarray(crop_panorama(pano, heading, 64))
        assert np.array_equal(crop, np.asarray(route_view(route, style, 0, heading, 64)))


def test_env_runs_on_a_data_folder(layout):
    _, root = layout
    for mode in ("text", "image"):
        env = VirlEnv(
            VirlConfig(
                data_dir=str(root),
                split="train",
                eval_fraction=0.25,
                observation_mode=mode,
                view_size=48,
            )
        )
        obs, info = env.reset(options={"route_index": 0})
        total, done = 0.0, False
        while not done:
            step = env.oracle[info["task_state"]["step_index"]]
            obs, reward, done, _, info = env.step(expert_answer(env.route, step, "absolute"))
            total += reward
        assert info["metrics"]["route_success"]
        if mode == "image":
            assert obs["image"].shape == (96, 96, 3)


def _write_broken(tmp_path, layout, mutate):
    _, root = layout
    target = tmp_path / "broken"
    shutil.copytree(root, target)
    routes = json.loads((target / ROUTE_INFOS_FILE).read_text())
    mutate(routes)
    (target / ROUTE_INFOS_FILE).write_text(json.dumps(routes))
    return target


@pytest.mark.parametrize(
    ("mutate", "pieces"),
    [
        (lambda r: r[2].pop("start_place"), ["route 2", "missing key 'start_place'", "expected"]),
        (
            lambda r: r[1]["route_results"].pop("geocode_list"),
            ["route 1", "route_results", "missing key 'geocode_list'", "[lat, lng] pairs"],
        ),
        (
            lambda r: r[0]["route_results"]["landmark_list"][0].pop("lat"),
            ["route 0", "landmark_list[0]", "missing key 'lat'", "latitude"],
        ),
        (
            lambda r: r[3]["route_results"]["geocode_list"].__setitem__(1, [1.0]),
            ["route 3", "geocode_list[1]", "[lat, lng] pair"],
        ),
        (
            lambda r: r[1].__setitem__("milestone_info", "turn left"),
            ["route 1", "'milestone_info'", "str", "list of milestone objects"],
        ),
        (
            lambda r: r[2]["milestone_info"][0].__setitem__("action", "jump"),
            ["route 2", "milestone_info[0]", "'jump'", "'turn' or 'stop'"],
        ),
        (
            lambda r: r[0]["milestone_info"][0].__setitem__("landmark", "Nowhere Cafe"),
            ["route 0", "milestone_info[0]", "Nowhere Cafe", "landmark_list"],
        ),
        (
            lambda r: r[0]["route_results"]["intersection_list"].pop(),
            ["route 0", "intersection_list", "one per geocode"],
        ),
        (
            lambda r: r[1]["route_results"].__setitem__("start_heading", True),
            ["route 1", "'start_heading'", "bool", "heading in degrees"],
        ),
        (lambda r: r[3]["milestone_info"].pop(), ["route 3", "'stop' milestone"]),
        (lambda r: r[2].__setitem__("route_id", r[0]["route_id"]), ["route 2", "repeated"]),
    ],
)
def test_malformed_route_file_names_file_route_and_key(tmp_path, layout, mutate, pieces):
    target = _write_broken(tmp_path, layout, mutate)
    with pytest.raises(RouteFormatError) as err:
        load_released_layout(target)
    message = str(err.value)
    assert ROUTE_INFOS_FILE in message
    for piece in pieces:
        assert piece in message, message


def test_not_a_list_and_not_json(tmp_path):
    path = tmp_path / ROUTE_INFOS_FILE
    path.write_text('{"route_id": 1}')
    with pytest.raises(RouteFormatError, match="expected a JSON list of routes"):
        load_routes(path)
    path.write_text("[{,")
    with pytest.raises(RouteFormatError, match="not valid JSON"):
        load_routes(path)
    with pytest.raises(RouteFormatError, match="file not found"):
        load_routes(tmp_path / "missing.json")


def test_missing_panorama_mapping_and_image(tmp_path, layout):
    _, root = layout
    target = tmp_path / "no_pano"
    shutil.copytree(root, target)
    mapping = json.loads((target / GPS_PANO_FILE).read_text())
    first_key = sorted(mapping)[0]
    del mapping[first_key]
    (target / GPS_PANO_FILE).write_text(json.dumps(mapping))
    with pytest.raises(RouteFormatError, match="has no panorama entry"):
        load_released_layout(target)
    shutil.copytree(root, tmp_path / "no_image")
    victim = next((tmp_path / "no_image" / STREET_VIEW_DIR).iterdir())
    victim.unlink()
    with pytest.raises(FileNotFoundError, match=victim.stem):
        load_released_layout(tmp_path / "no_image")
