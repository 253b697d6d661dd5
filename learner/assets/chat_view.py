"""model.chat_template / model.system_prompt: a view of a model folder with another chat format.

Every part of veriray formats conversations through the tokenizer of the model folder it is
given (rollout prompts, SFT rows, evaluation, the checkpoints the learner saves). So instead of
threading the overrides through each of them, the run gets a view of the model: a folder of
symlinks to the model's files whose chat template is the override. Everything that loads the
view formats alike, and the checkpoints trained from it carry the template on.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

TEMPLATE_FILE = "chat_template.jinja"
# Files that may hold a chat template (transformers reads the .jinja file first); the view
# writes its own instead of linking these.
TEMPLATE_HOLDERS = (TEMPLATE_FILE, "tokenizer_config.json", "chat_template.json")


def current_template(model_path: Path) -> str | None:
    """The chat template a model folder ships (its .jinja file, else tokenizer_config.json)."""
    if (model_path / TEMPLATE_FILE).is_file():
        return (model_path / TEMPLATE_FILE).read_text()
    config = model_path / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def with_system_prompt(template: str, system_prompt: str) -> str:
    """``template`` with a system message put first when a conversation has none (a task's
    own system message, e.g. task.dataset.system_prompt, is kept)."""
    literal = json.dumps(system_prompt)  # a valid Jinja string literal, quotes escaped
    prefix = (
        "{%- if not messages or messages[0]['role'] != 'system' -%}"
        f"{{%- set messages = [{{'role': 'system', 'content': {literal}}}] + messages -%}}"
        "{%- endif -%}"
    )
    return prefix + template


def chat_view(
    model_path: Path, out_dir: Path, chat_template: str | None, system_prompt: str | None
) -> Path:
    """``model_path`` itself when neither override is set; else ``out_dir`` rebuilt as a view
    of it (symlinks to its files; the chat template files written anew)."""
    if chat_template is None and system_prompt is None:
        return model_path
    template = chat_template if chat_template is not None else current_template(model_path)
    if template is None:
        raise ValueError(
            f"model.system_prompt: {model_path} has no chat template to add it to; set "
            "model.chat_template too"
        )
    if system_prompt is not None:
        template = with_system_prompt(template, system_prompt)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    source = model_path.resolve()
    for path in source.iterdir():
        if path.name not in TEMPLATE_HOLDERS:
            (out_dir / path.name).symlink_to(path)
    (out_dir / TEMPLATE_FILE).write_text(template)
    config = source / "tokenizer_config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        data.pop("chat_template", None)  # the .jinja file holds it now
        (out_dir / config.name).write_text(json.dumps(data, indent=2))
    if (source / "chat_template.json").is_file():  # a processor's (VLMs)
        (out_dir / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    return out_dir
