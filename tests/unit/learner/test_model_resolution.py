"""model.name: assets, folders and Hugging Face ids from the local cache, checked before Ray.

The cache is a real huggingface_hub cache layout (models--org--name/snapshots/<rev>, refs/main)
built from the tiny model assets; nothing touches the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from cluster.cli import main
from cluster.config import load_experiment
from cluster.evaluate import check_model
from common.typed_config import ConfigError
from learner.assets import is_multimodal, prepare, resolve_model_path

ROOT = Path(__file__).resolve().parents[3]
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture()
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local HF cache holding tiny-lm as veriray-test/tiny-lm and tiny-vlm as .../tiny-vlm."""
    cache = tmp_path / "hub"
    for asset in ("tiny-lm", "tiny-vlm"):
        repo = cache / f"models--veriray-test--{asset}"
        shutil.copytree(prepare(asset), repo / "snapshots" / REVISION)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text(REVISION)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_hub_id_in_the_local_cache_resolves_offline(hub_cache: Path) -> None:
    path = resolve_model_path("veriray-test/tiny-lm")
    assert path == hub_cache / "models--veriray-test--tiny-lm" / "snapshots" / REVISION
    assert not is_multimodal(path)
    assert is_multimodal(resolve_model_path("veriray-test/tiny-vlm"))  # its vision_config


def test_a_hub_id_not_cached_says_how_to_get_it(hub_cache: Path) -> None:
    with pytest.raises(FileNotFoundError) as err:
        resolve_model_path("veriray-test/absent")
    message = str(err.value)
    assert "not in the local Hugging Face cache" in message and str(hub_cache) in message
    assert "huggingface-cli download veriray-test/absent" in message
    assert "model.download: true" in message
    with pytest.raises(FileNotFoundError, match="HF_HUB_OFFLINE=1 forbids downloading"):
        resolve_model_path("veriray-test/absent", download=True)


def test_check_model_settles_multimodal_and_names_the_field(hub_cache: Path) -> None:
    vlm = load_experiment(None, ["model.name=veriray-test/tiny-vlm"])
    assert vlm.model.multimodal is None
    assert check_model(vlm).model.multimodal is True  # detected from config.json
    text_only = load_experiment(
        None, ["model.name=veriray-test/tiny-vlm", "model.multimodal=false"]
    )
    assert check_model(text_only).model.multimodal is False  # the override wins
    assert check_model(load_experiment(None, [])).model.multimodal is False  # tiny-lm
    missing = load_experiment(None, ["model.name=veriray-test/absent"])
    with pytest.raises(ConfigError, match=r"^model\.name: model 'veriray-test/absent': not in"):
        check_model(missing)


def test_run_with_a_missing_model_fails_before_ray(
    hub_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "run",
            str(ROOT / "configs/cpu/quick.yaml"),
            "model.name=/no/such/model",
            f"output_dir={tmp_path}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "config error: model.name: model '/no/such/model': no such folder" in err
    assert not (tmp_path / "quick").exists()  # nothing started, nothing written
