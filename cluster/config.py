"""The experiment config: one section per component, loaded from YAML plus overrides.

``load_experiment("configs/cpu/quick.yaml", ["learner.lr=1e-6"])`` returns a checked
ExperimentConfig or raises ConfigError naming the dotted field. This module and the component
configs it composes import no torch, ray or vllm, so configs load and validate anywhere.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cluster.ray_config import RayConfig
from cluster.stages_config import BaselinesConfig, RLStageConfig, SFTStageConfig, StudyConfig
from cluster.task_config import TaskConfig
from cluster.tracking import DEFAULT_TRACKING, TRACKER_NAMES
from common.placement_config import PlacementConfig
from common.typed_config import RUN_NAME, ConfigError, check, load, load_yaml, to_dict
from evaluation.config import TUNING_SUITES, EvaluationConfig
from learner.config import LearnerConfig
from rollout.buffer_config import ReplayBufferConfig
from rollout.config import RolloutConfig

CONFIG_FILE = "config.yaml"
"""The resolved experiment config, saved in every run folder and checkpoint: `veriray eval`
and `veriray compare` read it back, so a checkpoint is evaluated on the task it was trained on."""


@dataclass
class ModelConfig:
    """The policy model."""

    name: str = "tiny-lm"
    """A model asset (tiny-lm, tiny-vlm, smollm2-135m; see `veriray models list`), a path
    to a Hugging Face checkpoint folder, or a Hugging Face model id (org/name) already in the
    local Hugging Face cache (HF_HOME). Checked before Ray starts."""
    download: bool = False
    """Let a Hugging Face model id missing from the local cache be downloaded (needs the
    network and HF_HUB_OFFLINE unset). Off: nothing is ever fetched."""
    multimodal: bool | None = None
    """Whether image observations are passed to the model. null: detected from the model's
    config.json (a vision tower, vision_config, means a vision-language model); true/false
    overrides it (false plays a VLM on text only)."""
    chat_template: str | None = None
    """The chat template (Jinja) every conversation is formatted with, in rollouts, SFT data
    and evaluation, instead of the model's own: the template text, or the path of a .jinja
    file. null: the model's. Checkpoints trained with it keep it."""
    system_prompt: str | None = None
    """A system message put first in every conversation that has none of its own (a task's
    own, e.g. task.dataset.system_prompt, is kept). null: none added."""

    def chat_template_text(self) -> str | None:
        """chat_template, read from its file when it names one."""
        value = self.chat_template
        if value is not None and value.endswith(".jinja"):
            path = Path(value).expanduser()
            check(path.is_file(), "model.chat_template", f"{value}: no such .jinja file")
            return path.read_text()
        return value


@dataclass
class ExperimentConfig:
    """One experiment: model, task, cluster, rollout and learner settings."""

    name: str = "experiment"
    """Run name; outputs go to <output_dir>/<name>."""
    seed: int = 0
    """Global seed (task dealing, sampling, init)."""
    output_dir: str = "runs"
    """Folder for run outputs (reports, checkpoints, trajectories)."""
    episodes: int = 400
    """Cap on distinct held-out prompts per evaluation suite, unless evaluation.episodes sets
    it: each prompt is played once; a suite with more plays a fixed seeded sample of this many
    (at least ~300 keeps a suite's Wilson interval within about +-6 points)."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The policy model."""
    task: TaskConfig = field(default_factory=TaskConfig)
    """The task."""
    ray: RayConfig = field(default_factory=RayConfig)
    """The Ray cluster."""
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """Rollout workers and engines."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """DeepSpeed learner group."""
    placement: PlacementConfig = field(default_factory=PlacementConfig)
    """How each role's placement groups are packed and pinned to nodes."""
    sft: SFTStageConfig = field(default_factory=SFTStageConfig)
    """The SFT warm start (and the continued-SFT arm)."""
    rl: RLStageConfig = field(default_factory=RLStageConfig)
    """The RL stage."""
    buffer: ReplayBufferConfig = field(default_factory=ReplayBufferConfig)
    """The replay buffer between rollout and learner."""
    tracking: list[str] = field(default_factory=lambda: list(DEFAULT_TRACKING))
    """Where metrics and samples tables go besides the Ray dashboard, any of: tensorboard
    (<run_dir>/tensorboard), jsonl (<run_dir>/metrics.jsonl), wandb (always offline, under
    <run_dir>/wandb; `wandb sync` uploads it later) and mlflow (a local file store,
    <run_dir>/mlruns). [] = the dashboard only."""
    samples_per_step: int = 8
    """Rows of the samples table (prompt, response, reward, verdict) sent to the trackers per
    RL update and per suite at each evaluation point, and kept in samples.parquet for each
    update (evaluation points keep all of theirs there). 0 = none."""
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    """Held-out ID/OOD evaluation (suites, episodes, sampling, schedule, VIter sweep)."""
    study: StudyConfig = field(default_factory=StudyConfig)
    """The study design fixed before the run: training seeds and the primary endpoint."""
    baseline: BaselinesConfig = field(default_factory=BaselinesConfig)
    """Reference policies without a language model (`veriray baseline rllib`)."""

    def __post_init__(self) -> None:
        check(
            RUN_NAME.fullmatch(self.name) is not None,
            "name",
            f"{self.name!r} is not a plain run name: use letters, digits, '-', '_' and '.' "
            "(1-100 characters, not '.' or '..', no path separators); it names the run's "
            "output folder",
        )
        check(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        unknown = [t for t in self.tracking if t not in TRACKER_NAMES]
        check(not unknown, "tracking", f"{unknown} unknown; choose from {list(TRACKER_NAMES)}")
        check(
            len(set(self.tracking)) == len(self.tracking),
            "tracking",
            f"names a tracker twice: {self.tracking}",
        )
        check(self.samples_per_step >= 0, "samples_per_step", "must be >= 0")
        check(
            not self.learner.lora.enabled or self.rollout.weight_sync == "shm",
            "learner.lora.enabled",
            "the NCCL weight broadcast sends the policy's own parameters, not merged LoRA "
            "weights; use rollout.weight_sync: shm with LoRA",
        )
        self._check_task()
        eval_tokens = self.evaluation.max_new_tokens
        check(
            eval_tokens is None or eval_tokens < self.rollout.max_model_len,
            "evaluation.max_new_tokens",
            f"must be < rollout.max_model_len={self.rollout.max_model_len}",
        )
        check(
            self.rl.mode == "async" or self.buffer.max_staleness == 0,
            "buffer.max_staleness",
            "must be 0 with rl.mode on_policy (strict on-policy PPO); use rl.mode async",
        )
        check(
            self.rl.mode == "on_policy" or not self.rollout.enable_sleep_mode,
            "rollout.enable_sleep_mode",
            "colocated engines sleep while the learner trains, so the next batch cannot play "
            "meanwhile: use rl.mode on_policy",
        )
        check(
            self.rl.mode == "on_policy" or self.buffer.max_staleness >= 1,
            "buffer.max_staleness",
            "must be >= 1 with rl.mode async (the next batch is generated while training)",
        )
        check(
            not self.learner.ppo.dynamic_sampling or self.rl.samples_per_task > 1,
            "learner.ppo.dynamic_sampling",
            "needs rl.samples_per_task > 1: it drops groups of equal rewards, and a group of "
            "one is never informative",
        )
        check(
            not (self.sft.enabled and self.sft.branch_compute == "match_rl") or self.rl.enabled,
            "sft.branch_compute",
            "'match_rl' gives the SFT arm the RL arm's compute, so it needs rl.enabled: true; "
            "use 'steps' with sft.branch_steps for an SFT-only run",
        )
        sampled = self.rollout.temperature
        check(
            sampled == 0 or self.learner.ppo.temperature == sampled,
            "learner.ppo.temperature",
            f"must equal rollout.temperature={sampled} (the learner scores the distribution "
            f"the rollouts sampled from), got {self.learner.ppo.temperature}",
        )

    def _check_task(self) -> None:
        """What only the task family knows: its suites, its budget, whether it has SFT
        examples."""
        spec, task = self.task.spec, self.task.active_dict()
        suites = list(spec.suites(task))
        unknown = [s for s in self.evaluation.suites if s not in suites]
        check(
            not unknown,
            "evaluation.suites",
            f"{unknown} not defined for task family {spec.name} with this config; it has {suites}",
        )
        defaults = [s for s in suites if s not in TUNING_SUITES]
        check(
            bool(self.evaluation.suites) or self.study.primary_suite in defaults,
            "study.primary_suite",
            f"{self.study.primary_suite!r} is not among the suites task family {spec.name} "
            f"evaluates ({defaults}); name one of them",
        )
        check(
            not self.evaluation.viter_sweep or spec.budget_field is not None,
            "evaluation.viter_sweep",
            f"task family {spec.name} has no verification budget to sweep; leave it empty",
        )
        if self.sft.enabled:
            reason = (
                "it supplies no expert examples"
                if spec.sft_examples is None
                else spec.sft_unavailable(self.task.train_dict())
            )
            check(
                reason is None,
                "sft.enabled",
                f"task family {spec.name} cannot give SFT examples: {reason}; set "
                "sft.enabled: false (RL from the base model)",
            )

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    @property
    def training_seeds(self) -> list[int]:
        """The arms' training seeds: seed, seed + 1, ... (study.seeds of them)."""
        return list(range(self.seed, self.seed + self.study.seeds))

    def arm_config(self, seed: int) -> ExperimentConfig:
        """This experiment as one training seed's arms see it: the seed fields set to
        ``seed`` (the warm start keeps the experiment's own sft.seed)."""
        return dataclasses.replace(
            self,
            seed=seed,
            learner=dataclasses.replace(self.learner, seed=seed),
            rollout=dataclasses.replace(self.rollout, seed=seed),
        )

    def arm_dir(self, seed: int) -> Path:
        """Where one seed's arms keep their checkpoints and exports (the run folder itself
        when there is one seed, as before seeds shared a run)."""
        return self.run_dir if self.study.seeds == 1 else self.run_dir / f"seed-{seed}"


def load_experiment(
    path: str | Path | None = None, overrides: list[str] | None = None
) -> ExperimentConfig:
    """Load and check an experiment config (YAML file and/or dotted overrides)."""
    return load(ExperimentConfig, path, overrides)


def config_data(cfg: ExperimentConfig) -> dict[str, Any]:
    """The resolved config as plain data, as `veriray config show` prints it: the task section
    keeps only the active family (the others were checked, but play no part in the run)."""
    data = to_dict(cfg)
    data["task"] = {k: v for k, v in data["task"].items() if k in ("family", cfg.task.family)}
    return data


def save_config(cfg: ExperimentConfig, folder: Path) -> Path:
    """Write ``cfg`` resolved into ``folder``/config.yaml (loadable with load_experiment)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CONFIG_FILE
    path.write_text(yaml.safe_dump(config_data(cfg), sort_keys=False))
    return path


def find_saved_config(path: str | Path, levels: int = 4) -> Path | None:
    """The config.yaml a run saved for ``path``: a checkpoint's own, else its run folder's
    (``run/checkpoints/update-N``, ``run/seed-S/checkpoints/update-N``, their ``hf/`` inside).
    None for a model that no run produced (an asset name, a plain HF folder)."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        return None
    folder = folder.resolve()
    for candidate in [folder, *folder.parents][: levels + 1]:
        saved = candidate / CONFIG_FILE
        # A run's config always has a task section; any other config.yaml is not ours.
        if saved.is_file() and "task" in load_yaml(saved):
            return saved
    return None


def describe_task(cfg: ExperimentConfig) -> str:
    """One line naming the task a run or an evaluation plays, e.g. ``generalpoints
    (num_cards=2, target_mode=one_op, ...)``: the fields that differ from the family's
    defaults."""
    active = cfg.task.active
    try:
        defaults = type(active)()
    except (TypeError, ValueError):  # a family with required fields: show them all
        defaults = None
    changed = [
        f"{f.name}={getattr(active, f.name)!r}"
        for f in dataclasses.fields(active)
        if defaults is None or getattr(active, f.name) != getattr(defaults, f.name)
    ]
    return f"{cfg.task.family} ({', '.join(changed) or 'its defaults'})"


def run_task(run_dir: str | Path) -> str:
    """The task a run folder played: its saved config, else its report's description."""
    saved = find_saved_config(run_dir, levels=0)
    if saved is not None:
        try:
            return describe_task(load_experiment(saved))
        except ConfigError:  # e.g. a dataset task whose files stayed on another machine
            pass
    report = Path(run_dir) / "report.json"
    meta = json.loads(report.read_text()) if report.is_file() else {}
    return f"{meta.get('task', 'unknown')} {meta.get('task_config', '(no saved config)')}"


def load_for_model(
    model: str, config: str | Path | None, overrides: list[str]
) -> tuple[ExperimentConfig, str]:
    """The experiment to evaluate ``model`` in: ``config`` when given, else the config its run
    saved (see find_saved_config), else the defaults. Returns (config, where it came from)."""
    if config is not None:
        return load_experiment(config, overrides), str(config)
    saved = find_saved_config(model)
    if saved is not None:
        return load_experiment(saved, overrides), str(saved)
    try:
        return load_experiment(None, overrides), "defaults (no --config, no saved config.yaml)"
    except ConfigError as err:
        raise ConfigError(f"{err} (no --config given and {model} has no saved config)") from err
