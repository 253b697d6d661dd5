"""Typed configuration of the V-IRL navigation task (imports nothing heavy, loads anywhere).

A variant of the task is data, not a subclass: the city and route split pick the visual domain
(train on ``new_york``, test on ``vln_mini``), the action space picks the rule (``absolute`` is the
training rule, ``relative`` the out-of-distribution one) and the observation mode picks V-IRL-L
(``text``) or V-IRL-VL (``image``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

# The rules the verifier scores with are defined beside it (verifier/ imports nothing from envs/).
from verifier.virl_rules import DEFAULT_MAX_RESPONSE_CHARS, SCORINGS, VirlRewards

CITY_NAMES: tuple[str, ...] = (
    "new_york",
    "milan",
    "new_delhi",
    "buenos_aires",
    "london",
    "hong_kong",
    "melbourne",
    "lagos",
    "san_francisco",
)
"""Every city the synthetic generator knows; the last eight plus new_york make VLN mini."""

SPLITS: tuple[str, ...] = ("train", "eval", "vln_mini", "all")
ACTION_SPACES: tuple[str, ...] = ("absolute", "relative")
OBSERVATION_MODES: tuple[str, ...] = ("text", "image")
DATA_FORMATS: tuple[str, ...] = ("auto", "study", "project")


@dataclass
class VirlConfig:
    """Everything that defines one V-IRL task variant."""

    city: str = "new_york"
    """Synthetic city for the train/eval splits (ignored by vln_mini, which spans nine cities)."""
    split: str = "train"
    """Route pool: 'train' and 'eval' are a seeded disjoint split of the city's routes;
    'vln_mini' is the synthetic 18-route OOD benchmark (2 routes in each of 9 cities); 'all'
    is every route (a benchmark folder such as the study's VLN mini)."""
    action_space: str = "absolute"
    """'absolute' = turn_direction(north|...|northwest) (training rule); 'relative' =
    turn_direction(left|right|slightly left|slightly right) (OOD rule)."""
    observation_mode: str = "text"
    """'text': landmarks and the intersection flag as text (V-IRL-L); 'image': a 2x2 grid of
    street views, landmarks must be read from the signs (V-IRL-VL)."""
    tries_per_point: int = 2
    """Verification budget: tries allowed at each point before the route fails."""
    scoring: str = "study"
    """'study': a try succeeds when its action is right, whatever the observation says (the
    study's rule). 'strict': the observation must also name exactly the landmarks in view (a
    wrong one costs rewards.wrong_observation)."""
    rewards: VirlRewards = field(default_factory=VirlRewards)
    """Reward table (a dict is accepted and converted)."""
    view_size: int = 224
    """Side in pixels of one street view; the image observation is a (2S, 2S, 3) grid."""
    city_seed: int = 0
    """Seed of the synthetic training city (street graph, landmarks, routes)."""
    split_seed: int = 0
    """Seed of the train/eval permutation of the city's routes."""
    vln_mini_seed: int = 1
    """Seed of the nine VLN-mini cities (distinct from city_seed so its New York map differs)."""
    num_routes: int = 1000
    """Routes generated in the training city (the paper's release has 1,000 NYC routes)."""
    eval_fraction: float = 0.05
    """Share of the city's routes held out for the 'eval' split (never in 'train')."""
    data_dir: str | None = None
    """A folder of routes (route_infos.json) in the study's release layout or this project's;
    when set, routes and street views come from it instead of the synthetic generator."""
    data_format: str = "auto"
    """Layout of data_dir's route_infos.json: 'study' ([routes, count], milestone_info text,
    street views from gps_pano_mapping.pkl and equirectangular panoramas), 'project' (a list
    of route objects, gps_pano_mapping.json, street_views/), or 'auto' (detected from the
    file's top level)."""
    panorama_dir: str | None = None
    """Study layout: the folder of <pano_id>.jpg + <pano_id>.metadata.json panoramas (image
    mode only). None: data_dir/panoramas if that folder exists, else data_dir itself."""
    vln_mini_dir: str | None = None
    """With data_dir: a second folder in the study's layout holding its VLN-mini routes (and
    their panoramas in <dir>/panoramas or <dir>); the image-mode visual OOD suite plays all of
    them. Without it, that suite is left out (the synthetic VLN mini is no visual shift from
    released street views)."""
    straight_line_length: int = 2
    """Study layout: forward() steps walked between two consecutive route points (the study's
    straight_line_length; the points in between are interpolated)."""
    max_response_chars: int = DEFAULT_MAX_RESPONSE_CHARS
    """Responses are cut to this many characters before parsing (bounded verifier cost)."""

    def __post_init__(self) -> None:
        if isinstance(self.rewards, dict):
            self.rewards = VirlRewards(**self.rewards)
        _check_choice("city", self.city, CITY_NAMES)
        _check_choice("split", self.split, SPLITS)
        _check_choice("action_space", self.action_space, ACTION_SPACES)
        _check_choice("observation_mode", self.observation_mode, OBSERVATION_MODES)
        _check_int_range("tries_per_point", self.tries_per_point, 1, 100)
        _check_choice("scoring", self.scoring, SCORINGS)
        _check_choice("data_format", self.data_format, DATA_FORMATS)
        _check_int_range("straight_line_length", self.straight_line_length, 1, 100)
        if self.panorama_dir is not None and not isinstance(self.panorama_dir, str):
            raise ValueError(f"panorama_dir: {self.panorama_dir!r} must be a path string or null")
        _check_int_range("view_size", self.view_size, 32, 2048)
        _check_int_range("num_routes", self.num_routes, 2, 100_000)
        _check_int_range("max_response_chars", self.max_response_chars, 256, 1_000_000)
        for name in ("city_seed", "split_seed", "vln_mini_seed"):
            _check_int_range(name, getattr(self, name), 0, 2**32 - 1)
        if not isinstance(self.eval_fraction, int | float) or not 0.0 < self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction: {self.eval_fraction!r} must be in (0, 1)")
        if self.data_dir is not None and self.split == "vln_mini":
            raise ValueError(
                "split: 'vln_mini' is synthetic only; with data_dir use one of ['train', 'eval']"
            )

    @classmethod
    def from_any(cls, config: VirlConfig | dict[str, Any] | None) -> VirlConfig:
        """Accept a config, a plain dict of field values (unknown keys are an error) or None."""
        if config is None:
            return cls()
        if isinstance(config, cls):
            return config
        if isinstance(config, dict):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(config) - known)
            if unknown:
                raise ValueError(f"{unknown[0]}: unknown VirlConfig field; known: {sorted(known)}")
            return cls(**config)
        raise TypeError(f"config: expected VirlConfig, dict or None, got {type(config).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {list(allowed)}")


def _check_int_range(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: {value!r} must be an integer in [{low}, {high}]")
