"""Policy + value model for any Hugging Face causal LM, LLaVA-style VLM or Llama-3.2-Vision.

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

Images reach the model in one of two ways, both as the processor prepares them for one row
(``image_tensors`` + ``row_image_inputs``; learner/batching.py stacks them):
- LLaVA-style: the ids hold the image's expanded placeholder tokens and ``pixel_values``
  (N_img, 3, H, W) cover the rows that have an image. The image features go only where the
  engine put the image (``placeholder_mask``: the prompt, not a sampled response): a response
  may hold the image token too (a policy can sample any id of its vocabulary; the tiny VLM's
  ``<image>`` is id 3 of 635), and the engine embedded that one as text. The HF model would
  take every image token id for a placeholder and refuse the batch ("Image features and
  image tokens do not match"), so this module merges the features itself.
- Cross-attention (Mllama, Llama-3.2-Vision): the ids hold ONE ``<|image|>`` token per image;
  next to ``pixel_values`` (B, I, tiles, 3, H, W) the model takes ``aspect_ratio_ids`` (B, I),
  ``aspect_ratio_mask`` (B, I, tiles) and a ``cross_attention_mask`` (B, L, I, tiles) saying
  which tiles each token attends to (every token from its image's ``<|image|>`` on, by the
  processor's own rule), left-padded like the ids.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn

from learner import packed_attention

if TYPE_CHECKING:  # annotations only: models.py loads without the batching stack
    from learner.prefix_tree import TreeLayout

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


def image_tensors(processor: Any, image: Any) -> dict[str, Any]:
    """The image processor's tensors for one image, each with a leading axis of 1.

    LLaVA-style: pixel_values (1, 3, H, W). Mllama: pixel_values (1, 1, tiles, 3, H, W),
    aspect_ratio_ids (1, 1), aspect_ratio_mask (1, 1, tiles), and num_tiles [[n]] (a list, kept
    for ``row_image_inputs``)."""
    out = processor.image_processor(images=[image], return_tensors="pt")
    return dict(out.items())


def row_image_inputs(processor: Any, tensors: dict[str, Any], ids: list[int]) -> dict[str, Tensor]:
    """The forward's image inputs for one row whose tokens are ``ids`` (L,), leading axis 1.

    ``tensors`` come from ``image_tensors``. LLaVA-style: just pixel_values. Mllama (the image
    processor reports num_tiles): also the row's cross_attention_mask (1, L, I, tiles), built
    from the ids exactly as the processor builds it for a prompt; a generating engine extends
    it over the response the same way (the last position's mask repeats).
    """
    if "num_tiles" not in tensors:
        return {"pixel_values": tensors["pixel_values"]}
    from transformers.models.mllama.processing_mllama import (
        convert_sparse_cross_attention_mask_to_dense,
        get_cross_attention_token_mask,
    )

    spans = get_cross_attention_token_mask(ids, processor.image_token_id)
    mask = convert_sparse_cross_attention_mask_to_dense(
        [spans], tensors["num_tiles"], processor.image_processor.max_image_tiles, len(ids)
    )
    out = {k: v for k, v in tensors.items() if k != "num_tiles"}
    out["cross_attention_mask"] = torch.from_numpy(mask)
    return out


def rows_image_inputs(
    processor: Any, rows: list[Any], image_dir: str | Path | None
) -> list[dict[str, Tensor] | None]:
    """Per TrainRow its forward's image inputs (``row_image_inputs``), None for text rows.

    Images come from the run's image store; each is processed once, however many rows show it.
    """
    if not any(r.image_ref for r in rows):
        return [None] * len(rows)
    if image_dir is None:
        raise ValueError("image_dir: rows carry image_ref but no image store was given")
    from rollout.images import ImageStore

    store = ImageStore(image_dir)
    processed: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Tensor] | None] = []
    for r in rows:
        if not r.image_ref:
            out.append(None)
            continue
        if r.image_ref not in processed:
            processed[r.image_ref] = image_tensors(processor, store.get(r.image_ref))
        ids = r.prompt_ids + r.response_ids
        out.append(row_image_inputs(processor, processed[r.image_ref], ids))
    return out


def image_token_id(config: Any) -> int:
    """The id of a LLaVA-style config's image placeholder token."""
    tok = getattr(config, "image_token_id", None)
    return int(tok if tok is not None else config.image_token_index)


def embed_with_images(
    model: nn.Module, input_ids: Tensor, pixel_values: Tensor, placeholder_mask: Tensor
) -> Tensor:
    """(B, L, H) input embeddings of a LLaVA-style ``model``: the token embeddings, with the
    image features (one image per row that has one, in row order) in place of the image
    tokens inside ``placeholder_mask`` (B, L) bool and nowhere else (module docstring)."""
    cfg = model.config
    embeds = model.get_input_embeddings()(input_ids)
    features = model.get_image_features(
        pixel_values=pixel_values,
        vision_feature_layer=cfg.vision_feature_layer,
        vision_feature_select_strategy=cfg.vision_feature_select_strategy,
        return_dict=True,
    ).pooler_output
    features = torch.cat(list(features)).to(embeds.device, embeds.dtype)  # (N_img x S, H)
    slots = (input_ids == image_token_id(cfg)) & placeholder_mask
    if int(slots.sum()) != features.shape[0]:
        raise ValueError(
            f"{int(slots.sum())} image tokens where the images go, for {features.shape[0]} "
            f"image features ({pixel_values.shape[0]} images)"
        )
    return embeds.masked_scatter(slots.unsqueeze(-1), features)


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

    def enable_gradient_checkpointing(self) -> None:
        """Recompute decoder activations in the backward (LearnerConfig.gradient_checkpointing)
        for the policy and a separate critic. Non-reentrant: works with frozen parameters and
        keyword arguments (the packed path's layout)."""
        for model in (self.policy, self.critic):
            if model is not None:
                model.gradient_checkpointing_enable({"use_reentrant": False})

    @property
    def multimodal(self) -> bool:
        return getattr(self.policy.config, "vision_config", None) is not None

    @property
    def packable(self) -> bool:
        """Whether shared-prefix packing gives this model's own logits and values: a text-only
        causal LM (a vision tower needs its image rows whole) whose logits are its output
        embedding of the last hidden state (no soft-capping or scaling the packed path would
        skip), and a critic that is a causal LM too (or the shared value head, or none)."""
        cfg = self.policy.config
        plain_head = all(
            getattr(cfg, k, None) in (None, 1.0)
            for k in ("final_logit_softcapping", "logit_scale", "logits_scaling")
        )
        return (
            not self.multimodal and plain_head and self.policy.get_output_embeddings() is not None
        )

    def _decode_packed(
        self,
        model: nn.Module,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        layout: TreeLayout | None,
    ) -> Tensor:
        """(1, N, H) last hidden states of ``model``'s decoder over a packed prefix tree. With
        a ``layout`` and plain attention, attention computes only the pairs the ancestor mask
        keeps (learner/packed_attention.py)."""
        config = model.config
        extra: dict[str, Any] = {}
        attention = config._attn_implementation
        # Under gradient checkpointing the backward re-runs attention after this forward has
        # restored the model's own implementation, so the tree-skipping kernel is left out:
        # the ancestor mask alone gives the same values.
        recomputes = getattr(model, "is_gradient_checkpointing", False)
        if layout is not None and packed_attention.supports(config) and not recomputes:
            packed_attention.register()
            extra["pack_layout"] = layout
            # Only for this forward: the backward needs no config, and checkpoints, exports
            # and unpacked forwards keep the model's own attention.
            config._attn_implementation = packed_attention.ATTENTION_NAME
        try:
            return model.get_decoder()(
                input_ids=input_ids,
                attention_mask=attention_mask,
                position_ids=position_ids,
                use_cache=False,
                **extra,
            ).last_hidden_state
        finally:
            config._attn_implementation = attention

    def _packed_forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        logit_index: Tensor,
        value_index: Tensor | None,
        layout: TreeLayout | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """(B, W, V) logits and (B,) values (or None) of rows packed as a prefix tree: the
        decoder over the tree, the output embedding and the value head over the gathered
        positions only."""
        if not self.packable:
            raise ValueError(
                "packed rows need a text-only model with a plain output head "
                "(learner.share_prefixes applies only to such models)"
            )
        layout = layout.to(input_ids.device) if layout is not None else None
        args = (input_ids, attention_mask, position_ids, layout)
        mixed = torch.autocast(input_ids.device.type, torch.bfloat16, enabled=self.autocast_bf16)
        with mixed:
            hidden = self._decode_packed(self.policy, *args).flatten(0, 1)  # (N, H)
            logits = self.policy.get_output_embeddings()(hidden[logit_index])  # (B, W, V)
            if value_index is None or self.value_head is None:
                return logits, None
            if self.critic is not None:
                hidden = self._decode_packed(self.critic, *args).flatten(0, 1)
            return logits, self.value_head(hidden[value_index]).float()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        num_logits: int,
        value_index: Tensor | None = None,
        pixel_values: Tensor | None = None,
        image_inputs: dict[str, Tensor] | None = None,
        logit_index: Tensor | None = None,
        pack_layout: TreeLayout | None = None,
        placeholder_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Logits of the last ``num_logits`` positions and the value at ``value_index``.

        input_ids, attention_mask, position_ids (B, L) long, left-padded; value_index (B,)
        long, the last prompt token of each row (None = no value); pixel_values (N_img, 3, H,
        W) float for the rows whose ids hold image tokens (pre-expanded, as vLLM tokenises), or
        Mllama's (B, I, tiles, 3, H, W) with its other ``image_inputs`` (see the module
        docstring); placeholder_mask (B, L) bool, with LLaVA-style pixel_values: only the
        image tokens inside it get the image features (the prompts, not sampled responses: the
        module docstring; None = the HF model's own merge); the critic, when separate, gets the
        same inputs.
        Rows packed as a prefix tree (learner/prefix_tree.py): input_ids, position_ids (1, N),
        attention_mask (1, 1, N, N) bool, ``logit_index`` (B, num_logits) and value_index (B,)
        flat positions in the tree; only for ``packable`` models; ``pack_layout`` (optional)
        lets attention skip the masked pairs.
        Returns (logits (B, num_logits, V) in the compute dtype (bfloat16 under autocast:
        learner/token_logprobs.py upcasts them in chunks), values (B,) float32 or None).
        """
        if logit_index is not None:
            return self._packed_forward(
                input_ids, attention_mask, position_ids, logit_index, value_index, pack_layout
            )
        want_value = value_index is not None and self.value_head is not None
        merge_images = pixel_values is not None and placeholder_mask is not None

        def model_inputs(model: nn.Module) -> dict[str, Any]:
            # Per model: a separate critic embeds with its own weights.
            inputs: dict[str, Any] = {
                "attention_mask": attention_mask,
                "position_ids": position_ids,
                "use_cache": False,
            }
            if merge_images:
                inputs["inputs_embeds"] = embed_with_images(
                    model, input_ids, pixel_values, placeholder_mask
                )
                return inputs
            inputs["input_ids"] = input_ids
            if pixel_values is not None:
                inputs["pixel_values"] = pixel_values
            inputs.update(image_inputs or {})
            return inputs

        # bf16 matmuls over fp32 master weights: ~2.5x faster on CPUs with AVX512-BF16/AMX.
        mixed = torch.autocast(input_ids.device.type, torch.bfloat16, enabled=self.autocast_bf16)
        with mixed:
            out = self.policy(
                **model_inputs(self.policy),
                logits_to_keep=num_logits,
                output_hidden_states=want_value and self.critic is None,
            )
            if not want_value:
                return out.logits, None
            if self.critic is None:
                hidden = out.hidden_states[-1]  # (B, L, H)
            else:
                hidden = self.critic(
                    **model_inputs(self.critic), logits_to_keep=1, output_hidden_states=True
                )
                hidden = hidden.hidden_states[-1]
            rows = torch.arange(hidden.shape[0], device=hidden.device)
            h = hidden[rows, value_index]  # (B, H) state = the conversation up to the response
            return out.logits, self.value_head(h).float()
