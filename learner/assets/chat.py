"""The chat format of the tiny models (ChatML-style, as SmolLM2 uses)."""

from __future__ import annotations

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"
IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = [END_OF_TEXT, IM_START, IM_END, IMAGE_TOKEN]

# Content may be a string or a list of parts ({"type": "text"|"image"}), the form processors
# and vLLM's chat code hand to templates for multimodal messages.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
