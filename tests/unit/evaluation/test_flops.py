"""Compute accounting: 6ND / 2ND by hand, checkpoint round trip, N from the config alone."""

from __future__ import annotations

import pytest

from evaluation.flops import COMPUTE_FILE, ComputeMeter, count_parameters, turn_tokens
from tests.unit.evaluation.episodes import turn


def test_training_and_inference_flops_by_hand() -> None:
    meter = ComputeMeter(n_params=1000)
    assert meter.add_training_tokens(50) == 6 * 1000 * 50
    assert meter.add_inference_tokens(200) == 2 * 1000 * 200
    meter.add_training_tokens(10)
    assert meter.add_eval_tokens(7) == 2 * 1000 * 7
    assert meter.train_flops == 6 * 1000 * 60
    assert meter.inference_flops == 2 * 1000 * 200
    # evaluation is reported but never moves the training compute axis
    assert meter.total_flops == 6 * 1000 * 60 + 2 * 1000 * 200
    assert meter.total_gflops == meter.total_flops / 1e9
    assert meter.eval_flops == 2 * 1000 * 7
    with pytest.raises(ValueError, match="token count"):
        meter.add_training_tokens(-1)
    with pytest.raises(ValueError, match="n_params"):
        ComputeMeter(0)


def test_learner_forward_only_passes_count_2nd_on_the_training_axis() -> None:
    meter = ComputeMeter(n_params=1000, train_tokens=50)
    assert meter.add_forward_tokens(30) == 2 * 1000 * 30
    assert meter.train_flops == 6 * 1000 * 50 + 2 * 1000 * 30
    assert meter.total_flops == meter.train_flops  # no rollout yet
    assert ComputeMeter.from_dict(meter.to_dict()).forward_tokens == 30


def test_turn_tokens_count_prompt_and_response() -> None:
    turns = [turn(True, prompt_len=12, response_len=3), turn(False, prompt_len=20, response_len=5)]
    assert turn_tokens(turns) == 12 + 3 + 20 + 5


def test_meter_round_trips_through_a_checkpoint_dir(tmp_path) -> None:
    meter = ComputeMeter(123, train_tokens=4, forward_tokens=3, rollout_tokens=5, eval_tokens=6)
    assert meter.save(tmp_path) == tmp_path / COMPUTE_FILE
    loaded = ComputeMeter.load(tmp_path)
    want = 6 * 123 * 4 + 2 * 123 * 3 + 2 * 123 * 5
    assert loaded == meter and loaded.to_dict()["total_flops"] == want
    assert ComputeMeter.load_or_none(tmp_path / "missing") is None


@pytest.mark.parametrize("asset", ["tiny-lm", "tiny-vlm"])
def test_parameter_count_matches_the_loaded_model(asset: str) -> None:
    import transformers

    from learner.assets import prepare

    path = prepare(asset)
    loader = (
        transformers.AutoModelForImageTextToText
        if asset == "tiny-vlm"
        else transformers.AutoModelForCausalLM
    )
    model = loader.from_pretrained(path)
    assert count_parameters(path) == sum(p.numel() for p in model.parameters())
    if asset == "tiny-vlm":  # the vision tower and projector are part of N
        assert count_parameters(path) > count_parameters(prepare("tiny-lm"))
