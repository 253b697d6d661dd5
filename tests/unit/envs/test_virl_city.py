"""The synthetic city generator: determinism, VLN mini, visual styles, route invariants."""

import numpy as np
import pytest

from envs.virl.city import VLN_MINI_CITIES, generate_city, vln_mini_routes
from envs.virl.config import VirlConfig
from envs.virl.oracle import oracle_steps
from envs.virl.pools import eval_tasks, route_pool
from envs.virl.render import route_view
from envs.virl.styles import STYLES
from verifier.virl_rules import ABSOLUTE_DIRECTIONS, RELATIVE_DIRECTIONS


def test_generation_is_deterministic_for_a_seed():
    a = generate_city.__wrapped__("new_york", 7, 40)
    b = generate_city.__wrapped__("new_york", 7, 40)
    c = generate_city.__wrapped__("new_york", 8, 40)
    assert a == b  # a fresh generation, not the cache, gives the same city
    assert [r.to_dict() for r in a.routes] == [r.to_dict() for r in b.routes]
    assert a.routes != c.routes


def test_vln_mini_has_two_routes_in_each_of_nine_cities():
    routes = vln_mini_routes(1)
    assert len(routes) == 18
    assert len(VLN_MINI_CITIES) == 9
    assert [r.city for r in routes] == [c for c in VLN_MINI_CITIES for _ in range(2)]
    assert len({r.route_id for r in routes}) == 18
    assert {
        "milan",
        "new_delhi",
        "buenos_aires",
        "london",
        "hong_kong",
        "new_york",
        "melbourne",
        "lagos",
        "san_francisco",
    } == set(VLN_MINI_CITIES)


def test_routes_are_instructed_with_named_landmarks_and_both_direction_kinds():
    city = generate_city("new_york", 0, 60)
    for route in city.routes:
        assert route.milestones[0].point_index == 0 and route.milestones[0].action == "turn"
        assert route.milestones[-1].action == "stop"
        assert route.start_place.name in route.sentences[0]
        assert route.dest_place.name in route.sentences[-1]
        for m in route.milestones:
            names = [lm.name for lm in route.visible_landmarks(m.point_index)]
            assert m.landmark in names  # every milestone can be recognised where it is
            assert m.landmark in m.instruction
            if m.action == "turn":
                words = m.instruction.lower()
                assert any(f"turn {d} to face" in words for d in RELATIVE_DIRECTIONS)
                assert any(f"face {d}" in words for d in ABSOLUTE_DIRECTIONS)
        # Each landmark is observed at one point at most.
        seen = [lm.name for i in range(route.num_points) for lm in route.visible_landmarks(i)]
        assert len(seen) == len(set(seen))


def test_turn_instructions_match_the_oracle_actions():
    route = generate_city("new_york", 0, 60).routes[5]
    turns = [s for s in oracle_steps(route) if s.kind == "turn"]
    texts = [m.instruction for m in route.milestones if m.action == "turn"]
    for step, text in zip(turns, texts, strict=True):
        rel = step.action("relative")[len("turn_direction(") : -1]
        ab = step.action("absolute")[len("turn_direction(") : -1]
        assert f"turn {rel} to face {ab}" in text.lower()


def _mean_colour(city: str) -> np.ndarray:
    route = vln_mini_routes(1)[VLN_MINI_CITIES.index(city) * 2]
    views = [np.asarray(route_view(route, STYLES[city], 1, h, 96), float) for h in (0, 90, 180)]
    return np.mean([v.reshape(-1, 3).mean(0) for v in views], axis=0)


def test_city_styles_differ_visually():
    means = {c: _mean_colour(c) for c in VLN_MINI_CITIES}
    for a in VLN_MINI_CITIES:
        for b in VLN_MINI_CITIES:
            if a < b:
                assert np.abs(means[a] - means[b]).max() > 3.0, (a, b)


def test_views_are_deterministic_and_show_signs():
    route = generate_city("new_york", 0, 60).routes[0]
    style = STYLES["new_york"]
    a = np.asarray(route_view(route, style, 0, 10.0, 96))
    b = np.asarray(route_view(route, style, 0, 10.0, 96))
    assert a.shape == (96, 96, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    # The start landmark's sign appears in exactly the view that faces it: the sign colour.
    from envs.virl.directions import bearing

    toward = bearing(route.geocodes[0], route.start_place.latlng)
    facing = np.asarray(route_view(route, style, 0, toward, 96))
    away = np.asarray(route_view(route, style, 0, toward + 180.0, 96))
    sign = np.array(style.sign_bg)
    assert (np.abs(facing - sign).sum(-1) < 10).sum() > 30
    assert (np.abs(away - sign).sum(-1) < 10).sum() < (np.abs(facing - sign).sum(-1) < 10).sum()


def test_train_and_eval_pools_are_disjoint_and_seeded():
    train = route_pool(VirlConfig(split="train", num_routes=80, eval_fraction=0.1))
    held = route_pool(VirlConfig(split="eval", num_routes=80, eval_fraction=0.1))
    assert len(held) == 8 and len(train) == 72
    assert not {r.route_id for r in train} & {r.route_id for r in held}
    other = route_pool(VirlConfig(split="eval", num_routes=80, eval_fraction=0.1, split_seed=5))
    assert {r.route_id for r in other} != {r.route_id for r in held}
    tasks = eval_tasks({"split": "eval", "num_routes": 80, "eval_fraction": 0.1}, 5)
    assert tasks == eval_tasks(VirlConfig(split="eval", num_routes=80, eval_fraction=0.1), 5)
    assert [t["route_id"] for t in tasks] == [r.route_id for r in held[:5]]
    assert len(eval_tasks({"split": "vln_mini"})) == 18


def test_default_city_has_the_paper_sized_pool():
    city = generate_city("new_york", 0, 1000)
    assert len(city.routes) == 1000
    assert len({r.route_id for r in city.routes}) == 1000


@pytest.mark.parametrize("name", ["atlantis", ""])
def test_unknown_city_is_rejected(name):
    with pytest.raises(ValueError, match="city"):
        generate_city(name, 0, 2)
