"""configs/paper/*.yaml: the study's four settings load and keep the paper's hyperparameters.

Each file is loaded with cluster.config.load_experiment as `veriray submit` loads it; the model
path is never touched (the weights live on the cluster's shared storage). The asserted values
are the facts in /work/shared/PAPER.md; a failure here means an edit moved a config away from
the study (or the study's fact was changed on purpose: update PAPER_FACTS with a reason).
"""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from cluster.cli import main
from cluster.config import ExperimentConfig, load_experiment
from common.typed_config import ConfigError

ROOT = Path(__file__).resolve().parents[3]
PAPER = ROOT / "configs" / "paper"
BACKBONE = "Llama-3.2-11B-Vision-Instruct"
# Parameters, counted on the meta device (evaluation/flops.py): the whole VLM, and its text path
# as learner.assets.mllama_text writes it (32 self-attention layers, Llama-3.1-8B shaped).
N_PARAMS = {"image": 10.67e9, "text": 8.03e9}
GPUS_PER_NODE = 8
GPU_MEMORY_GB = 80
TRANSITIONS_PER_UPDATE = 2048
GP_TURNS_PER_EPISODE = 4  # from the SFT init; the configs' comments give the arithmetic

# setting -> (family, observation mode, SFT lr, VIter, eval episodes)
PAPER_FACTS = {
    "gp-l": ("generalpoints", "text", 1e-6, 5, 234),
    "gp-vl": ("generalpoints", "image", 5e-7, 5, 234),
    "virl-l": ("virl", "text", 1e-6, 2, 48),
    "virl-vl": ("virl", "image", 5e-7, 2, 48),
}


def _load(setting: str, overrides: list[str] | None = None) -> ExperimentConfig:
    return load_experiment(PAPER / f"{setting}.yaml", overrides)


def test_the_four_settings_are_shipped() -> None:
    assert sorted(p.stem for p in PAPER.glob("*.yaml")) == sorted(PAPER_FACTS)


@pytest.mark.parametrize("setting", sorted(PAPER_FACTS))
def test_task_backbone_and_sft_warm_start(setting: str) -> None:
    family, mode, sft_lr, viter, _ = PAPER_FACTS[setting]
    cfg = _load(setting)
    # Text settings train and serve the text path of the same checkpoint (converted offline).
    folder = BACKBONE if mode == "image" else BACKBONE + "-text"
    assert Path(cfg.model.name).name == folder and Path(cfg.model.name).is_absolute()
    assert cfg.model.multimodal == (mode == "image")
    assert cfg.task.family == family
    task = cfg.task.active
    assert task.observation_mode == mode and task.split == "train"
    if family == "generalpoints":
        assert (task.num_cards, task.target, task.target_mode) == (4, 24, "fixed")
        assert task.face_card_rule == "ten" and task.suit_color == "black"
        assert task.viter == viter
    else:
        assert task.city == "new_york" and task.action_space == "absolute"
        assert task.tries_per_point == viter
    assert cfg.sft.enabled and cfg.sft.warmup_epochs == 1 and not cfg.sft.thought
    assert cfg.sft.lr == pytest.approx(sft_lr)
    assert cfg.sft.branch_compute == "match_rl"  # the SFT arm at the RL arm's compute


@pytest.mark.parametrize("setting", sorted(PAPER_FACTS))
def test_ppo_hyperparameters(setting: str) -> None:
    cfg = _load(setting)
    ppo = cfg.learner.ppo
    assert (ppo.policy_loss, ppo.advantage, cfg.learner.critic) == ("ppo_turn", "gae", "shared")
    assert ppo.clip_eps == pytest.approx(0.1)
    assert ppo.epochs == 4
    assert ppo.gamma == pytest.approx(0.9) and ppo.lam == pytest.approx(0.95)
    assert ppo.thought_coef == pytest.approx(0.5)
    assert ppo.kl_coef == 0
    # One temperature everywhere: sampling, the learner's log-probs, evaluation.
    assert cfg.rollout.temperature == ppo.temperature == cfg.evaluation.temperature == 0.2
    assert cfg.rollout.max_new_tokens == 512
    assert cfg.rl.enabled and cfg.rl.mode == "on_policy" and cfg.buffer.max_staleness == 0
    assert 15 <= cfg.rl.updates <= 20
    assert cfg.rl.samples_per_task == 1


@pytest.mark.parametrize("setting", sorted(PAPER_FACTS))
def test_evaluation_episodes(setting: str) -> None:
    cfg = _load(setting)
    episodes = PAPER_FACTS[setting][4]
    assert cfg.evaluation.episodes == cfg.episodes == episodes
    assert cfg.evaluation.suites == []  # all of the family's suites (OOD visual in image mode)


@pytest.mark.parametrize("setting", ["gp-l", "gp-vl"])
def test_gp_episodes_per_update_give_about_2048_transitions(setting: str) -> None:
    cfg = _load(setting)
    episodes, viter = cfg.rl.episodes_per_update, cfg.task.generalpoints.viter
    assert episodes <= TRANSITIONS_PER_UPDATE <= episodes * viter  # 1 to VIter turns each
    assert episodes * GP_TURNS_PER_EPISODE == pytest.approx(TRANSITIONS_PER_UPDATE, rel=0.2)


@pytest.mark.parametrize("setting", ["virl-l", "virl-vl"])
def test_virl_episodes_per_update_give_about_2048_transitions(setting: str) -> None:
    from envs.virl.oracle import oracle_steps
    from envs.virl.pools import route_pool

    cfg = _load(setting)
    # A V-IRL episode is at least one turn per expert step of its route (more with retries).
    steps = statistics.mean(len(oracle_steps(r)) for r in route_pool(cfg.task.virl))
    turns = cfg.rl.episodes_per_update * steps
    assert turns == pytest.approx(TRANSITIONS_PER_UPDATE, rel=0.2)


@pytest.mark.parametrize("setting", sorted(PAPER_FACTS))
def test_one_node_of_8_gpus(setting: str) -> None:
    cfg = _load(setting)
    mode = PAPER_FACTS[setting][1]
    r, lrn = cfg.rollout, cfg.learner
    assert lrn.num_ranks * lrn.gpus_per_rank + r.num_workers * r.gpus_per_worker == GPUS_PER_NODE
    assert r.gpus_per_worker == int(r.gpus_per_worker) >= r.tensor_parallel_size
    assert r.dtype == lrn.dtype == "bfloat16"
    # ZeRO-3 shards bf16 weights + grads and fp32 Adam state (16 bytes/param) over the ranks;
    # leave at least a quarter of the GPU for activations and the gathered export.
    assert lrn.zero_stage == 3
    if not lrn.offload_optimizer:
        assert 16 * N_PARAMS[mode] / lrn.num_ranks / 1e9 <= 0.75 * GPU_MEMORY_GB
    # vLLM >= 0.11 does not serve Mllama: image settings need the HF engine; text settings
    # serve the converted text path with vLLM. Weights arrive through /dev/shm either way (the
    # controller builds no NCCL transport), so every role shares one node.
    assert r.backend == ("hf" if mode == "image" else "vllm")
    assert r.weight_sync == "shm"
    assert Path(cfg.output_dir).is_absolute()  # on shared storage, not the job's working dir


def test_rollout_and_learner_temperatures_must_agree() -> None:
    with pytest.raises(ConfigError, match=r"learner\.ppo\.temperature"):
        _load("gp-l", ["rollout.temperature=0.7"])


def test_model_path_is_a_dotted_override(capsys: pytest.CaptureFixture[str]) -> None:
    path = "/mnt/shared/models/" + BACKBONE
    assert main(["config", "show", str(PAPER / "gp-l.yaml"), f"model.name={path}"]) == 0
    out = capsys.readouterr().out
    assert f"name: {path}" in out and "temperature: 0.2" in out
