"""rollout.top_k / min_p / stop: checked at load, carried into every engine request."""

from __future__ import annotations

import pytest

from cluster.config import load_experiment
from common.typed_config import ConfigError
from rollout.engine import Sampling


def test_sampling_knobs_reach_the_engine_request() -> None:
    cfg = load_experiment(None, ["rollout.top_k=20", "rollout.min_p=0.05", "rollout.stop=[END]"])
    sampling = Sampling.from_config(cfg.rollout)
    assert (sampling.top_k, sampling.min_p, sampling.stop) == (20, 0.05, ["END"])
    off = Sampling.from_config(load_experiment(None, []).rollout)
    assert (off.top_k, off.min_p, off.stop) == (0, 0.0, [])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("rollout.top_k=-1", r"rollout\.top_k: must be >= 0 \(0 = off\)"),
        ("rollout.min_p=1", r"rollout\.min_p: must be in \[0, 1\)"),
        ("rollout.stop=['']", r"rollout\.stop: an empty string would stop every response"),
        ("rollout.stop=END", r"rollout\.stop: expected a list"),
    ],
)
def test_bad_sampling_knobs_name_the_field(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"^{message}"):
        load_experiment(None, [override])
