"""Make vLLM's LLaVA importable on the CPU stack, which has no torchvision.

vLLM's ``llava`` module imports ``pixtral``, which imports a helper
(``_num_image_tokens``) from transformers' torchvision-backed pixtral image processor. On our
CPU install torchvision cannot be present (it breaks torch 2.13.0+cpu: "operator
torchvision::nms does not exist"), so that import fails and no LLaVA model loads. transformers
ships a PIL twin of the same module with the same helper; we alias it in place of the
torchvision one. Nothing is faked: vLLM runs its real LLaVA code on the PIL implementation.

This runs as a vLLM general plugin (entry point ``vllm.general_plugins`` in pyproject.toml), so
vLLM applies it in every process it starts, including its model-inspection subprocess. Where
torchvision is installed (GPU clusters) it does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

_TORCHVISION_MODULE = "transformers.models.pixtral.image_processing_pixtral"
_PIL_MODULE = "transformers.models.pixtral.image_processing_pil_pixtral"


def register() -> None:
    """vLLM plugin hook: alias the PIL pixtral processor module when torchvision is absent."""
    if importlib.util.find_spec("torchvision") is not None or _TORCHVISION_MODULE in sys.modules:
        return
    sys.modules[_TORCHVISION_MODULE] = importlib.import_module(_PIL_MODULE)
