"""Policy + value model for any Hugging Face causal LM or LLaVA-style VLM.

The study's critic is a small MLP on the hidden state of the *last prompt token*, sharing the
policy's backbone: one forward pass gives the response log-probs and V(s) of the turn's state
(the conversation so far). ``critic="separate"`` runs a second copy of the backbone for the
value (twice the memory and compute: CPU-STUDY.md measured ~1.8x the update time), and
``critic="none"`` drops the value model (GRPO/RLOO).

Sequences are LEFT-padded (see learner/batching.py): every row ends at position L-1, so the
logits of all response tokens lie in the last T_max + 1 positions and the model's own
``logits_to_keep`` computes only those (no (B, L, V) tensor for long prompts), through the
model's own head (any logit scaling or soft-capping a family applies stays in). Position ids
are passed explicitly (0 at each row's first real token) so that log-probs equal an inference
engine's, which never sees the padding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

Critic = Literal["shared", "separate", "none"]
VALUE_INIT_STD = 1e-3  # a near-zero first value estimate: early advantages are the rewards


def is_multimodal(model_path: str | Path) -> bool:
    """True for an image-text checkpoint (its config has a vision tower)."""
    from transformers import AutoConfig

    return getattr(AutoConfig.from_pretrained(model_path), "vision_config", None) is not None


def load_hf_model(model_path: str | Path, dtype: torch.dtype) -> nn.Module:
    """AutoModelForImageTextToText for VLMs (LLaVA), AutoModelForCausalLM otherwise."""
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    cls = AutoModelForImageTextToText if is_multimodal(model_path) else AutoModelForCausalLM
    return cls.from_pretrained(model_path, dtype=dtype)


def hidden_size(model: nn.Module) -> int:
    cfg = model.config
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    return int(text_cfg.hidden_size)


class ValueHead(nn.Module):
    """V(s) from one hidden state: Linear -> tanh -> Linear. (B, H) -> (B,)."""

    def __init__(self, hidden: int, width: int) -> None:
        super().__init__()
        self.fc = nn.Linear(hidden, width)
        self.out = nn.Linear(width, 1)
        nn.init.normal_(self.out.weight, std=VALUE_INIT_STD)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: Tensor) -> Tensor:
        return self.out(torch.tanh(self.fc(h))).squeeze(-1)


class PolicyWithValue(nn.Module):
    """``policy`` (the HF model rollout serves) + optional value head (+ separate critic)."""

    def __init__(
        self, policy: nn.Module, value_head: ValueHead | None, critic: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.policy = policy
        self.value_head = value_head
        self.critic = critic  # None = the value head reads the policy's hidden states
        self.autocast_bf16 = False  # set by the learner (LearnerConfig.autocast_bf16)

    @classmethod
    def from_pretrained(
        cls,
        model_path: str | Path,
        dtype: torch.dtype = torch.float32,
        critic: Critic = "shared",
        value_head_hidden: int = 0,
    ) -> PolicyWithValue:
        """Load the policy (and a critic backbone when separate) with a fresh value head.

        A training checkpoint restores the head and critic (learner/checkpoint.py)."""
        policy = load_hf_model(model_path, dtype)
        if critic == "none":
            return cls(policy, None)
        critic_model = load_hf_model(model_path, dtype) if critic == "separate" else None
        h = hidden_size(policy)
        head = ValueHead(h, value_head_hidden or h).to(dtype)
        return cls(policy, head, critic_model)

    @property
    def multimodal(self) -> bool:
        return getattr(self.policy.config, "vision_config", None) is not None

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        num_logits: int,
        value_index: Tensor | None = None,
        pixel_values: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits of the last ``num_logits`` positions and the value at ``value_index``.

        input_ids, attention_mask, position_ids (B, L) long, left-padded; value_index (B,)
        long, the last prompt token of each row (None = no value); pixel_values (N_img, 3, H,
        W) float for the rows whose ids hold image tokens (pre-expanded, as vLLM tokenises).
        Returns (logits (B, num_logits, V), values (B,) float32 or None).
        """
        want_value = value_index is not None and self.value_head is not None
        inputs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "position_ids": position_ids,
            "use_cache": False,
        }
        if pixel_values is not None:
            inputs["pixel_values"] = pixel_values
        # bf16 matmuls over fp32 master weights: ~2.5x faster on CPUs with AVX512-BF16/AMX.
        mixed = torch.autocast(input_ids.device.type, torch.bfloat16, enabled=self.autocast_bf16)
        with mixed:
            out = self.policy(
                **inputs,
                logits_to_keep=num_logits,
                output_hidden_states=want_value and self.critic is None,
            )
            if not want_value:
                return out.logits.float(), None
            if self.critic is None:
                hidden = out.hidden_states[-1]  # (B, L, H)
            else:
                hidden = self.critic(**inputs, logits_to_keep=1, output_hidden_states=True)
                hidden = hidden.hidden_states[-1]
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            h = hidden[rows, value_index]  # (B, H) state = the conversation up to the response
            return out.logits.float(), self.value_head(h).float()
