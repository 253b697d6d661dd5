"""Compute accounting on the study's axis: training 6*N*D, inference 2*N*D FLOPs.

N is the policy's parameter count (the whole model: language backbone, embeddings counted once
when tied, and for VLMs the vision tower and projector). D is tokens the model computes:

- training: every token the learner runs forward and backward, 6ND. Rows of a micro-batch that
  share a token prefix compute it once (learner/prefix_tree.py), so D counts the shared prefix
  once: what the model computes, not the sum of the rows' lengths;
- learner forward-only passes (PPO's old log-probs and values before an update), 2ND: part of
  the training compute, since the update needs them;
- rollout inference: every turn's prompt tokens plus its sampled tokens. The prompt ids vLLM
  returns already hold the image placeholder expanded to the vision tower's patch count, so
  image tokens are included without special handling (the vision tower's own pixel work is
  approximated by its share of N, as in the study's 2ND).

Evaluation episodes are counted separately (``eval_tokens``) and are NOT on the training
compute axis, so adding evaluation points never moves a curve to the right.

A meter travels with every checkpoint as ``compute.json`` (``save`` / ``load``), so a run
resumed from a checkpoint continues the same axis.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

COMPUTE_FILE = "compute.json"
GIGA = 1e9


def count_parameters(model_path: str | Path) -> int:
    """Parameters of a Hugging Face model folder, without loading (or allocating) weights.

    The model is built from its config on the meta device, so this takes seconds even for
    an 11B model. Shared (tied) tensors are counted once, like the engine holds them.
    """
    import torch
    import transformers

    config = transformers.AutoConfig.from_pretrained(str(model_path))
    with torch.device("meta"):
        if hasattr(config, "vision_config"):
            model = transformers.AutoModelForImageTextToText.from_config(config)
        else:
            model = transformers.AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def turn_tokens(turns: Iterable[Any]) -> int:
    """Prompt + response tokens of TurnRecords (the D of one forward pass over them)."""
    return sum(len(t.prompt_token_ids) + len(t.response_token_ids) for t in turns)


@dataclass
class ComputeMeter:
    """Running FLOP counter of one run."""

    n_params: int
    """N: parameters of the policy."""
    train_tokens: int = 0
    """Tokens trained on (forward + backward, shared prefixes once), over SFT and RL updates."""
    forward_tokens: int = 0
    """Tokens of the learner's forward-only passes (PPO's old log-probs / values), 2ND each."""
    rollout_tokens: int = 0
    """Tokens processed by the rollout engines during training (prompt + sampled)."""
    eval_tokens: int = 0
    """Tokens processed by evaluation episodes (kept off the training compute axis)."""

    def __post_init__(self) -> None:
        if self.n_params < 1:
            raise ValueError(f"n_params: must be >= 1, got {self.n_params}")

    @classmethod
    def for_model(cls, model_path: str | Path) -> ComputeMeter:
        return cls(count_parameters(model_path))

    def add_training_tokens(self, d: int) -> float:
        """Count D trained tokens; return the FLOPs they cost (6ND)."""
        self.train_tokens += _tokens(d)
        return 6.0 * self.n_params * d

    def add_forward_tokens(self, d: int) -> float:
        """Count D tokens of a learner forward-only pass; return the FLOPs they cost (2ND)."""
        self.forward_tokens += _tokens(d)
        return 2.0 * self.n_params * d

    def add_inference_tokens(self, d: int) -> float:
        """Count D rollout tokens (prompt + sampled, image tokens included); return 2ND."""
        self.rollout_tokens += _tokens(d)
        return 2.0 * self.n_params * d

    def add_eval_tokens(self, d: int) -> float:
        """Count D evaluation tokens (reported, not on the training axis); return 2ND."""
        self.eval_tokens += _tokens(d)
        return 2.0 * self.n_params * d

    @property
    def train_flops(self) -> float:
        """Learner compute: backward passes 6ND plus forward-only passes 2ND."""
        return 6.0 * self.n_params * self.train_tokens + 2.0 * self.n_params * self.forward_tokens

    @property
    def inference_flops(self) -> float:
        return 2.0 * self.n_params * self.rollout_tokens

    @property
    def eval_flops(self) -> float:
        return 2.0 * self.n_params * self.eval_tokens

    @property
    def total_flops(self) -> float:
        """The study's training compute: updates (6ND) plus the rollouts that fed them (2ND)."""
        return self.train_flops + self.inference_flops

    @property
    def total_gflops(self) -> float:
        return self.total_flops / GIGA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "train_flops": self.train_flops,
            "inference_flops": self.inference_flops,
            "eval_flops": self.eval_flops,
            "total_flops": self.total_flops,
            "total_gflops": self.total_gflops,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComputeMeter:
        """Inverse of to_dict (derived FLOP fields are recomputed, not trusted)."""
        return cls(
            int(data["n_params"]),
            int(data.get("train_tokens", 0)),
            int(data.get("forward_tokens", 0)),
            int(data.get("rollout_tokens", 0)),
            int(data.get("eval_tokens", 0)),
        )

    def save(self, directory: str | Path) -> Path:
        """Write ``compute.json`` into a checkpoint directory."""
        path = Path(directory) / COMPUTE_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> ComputeMeter:
        return cls.from_dict(json.loads((Path(directory) / COMPUTE_FILE).read_text()))

    @classmethod
    def load_or_none(cls, directory: str | Path) -> ComputeMeter | None:
        path = Path(directory) / COMPUTE_FILE
        return cls.load(directory) if path.is_file() else None


def _tokens(d: int) -> int:
    if d < 0:
        raise ValueError(f"token count must be >= 0, got {d}")
    return int(d)
