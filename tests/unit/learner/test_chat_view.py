"""model.chat_template / model.system_prompt: a view of the model folder formats every
conversation with them; the real tiny-lm tokenizer and model load from the view."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from cluster.config import load_experiment
from cluster.evaluate import check_model, resolve_model, with_chat_overrides
from common.typed_config import ConfigError
from learner.assets import prepare
from learner.assets.chat_view import chat_view

USER = [{"role": "user", "content": "Cards: 3, 8. Make 11."}]


def _format(folder: Path, messages: list[dict]) -> str:
    tok = AutoTokenizer.from_pretrained(folder)
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def test_no_override_is_the_model_itself(tmp_path: Path) -> None:
    path = prepare("tiny-lm")
    assert chat_view(path, tmp_path / "view", None, None) == path
    assert not (tmp_path / "view").exists()


def test_system_prompt_goes_first_unless_the_task_has_one(tmp_path: Path) -> None:
    path = prepare("tiny-lm")
    view = chat_view(path, tmp_path / "view", None, 'Answer in JSON, "quoted".')
    text = _format(view, USER)
    assert text == (
        '<|im_start|>system\nAnswer in JSON, "quoted".<|im_end|>\n' + _format(path, USER)
    )
    own = [{"role": "system", "content": "The task's own."}, *USER]
    assert _format(view, own) == _format(path, own)  # the task's system message is kept
    # The weights are the model's own (symlinks): the learner loads the view as the model.
    model = AutoModelForCausalLM.from_pretrained(view)
    assert model.config.num_hidden_layers == 2
    assert (view / "model.safetensors").resolve() == (path / "model.safetensors").resolve()


def test_chat_template_from_a_jinja_file_through_the_config(tmp_path: Path) -> None:
    template = tmp_path / "plain.jinja"
    template.write_text(
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant:{% endif %}"
    )
    cfg = load_experiment(
        None, [f"model.chat_template={template}", "model.system_prompt=Be brief."]
    )
    cfg = check_model(cfg)
    model = with_chat_overrides(resolve_model(cfg.model.name), cfg, tmp_path / "run" / "model")
    assert model.model_path == tmp_path / "run" / "model"
    expected = "system: Be brief.\nuser: Cards: 3, 8. Make 11.\nassistant:"
    assert _format(model.model_path, USER) == expected


def test_bad_chat_overrides_fail_before_ray(tmp_path: Path) -> None:
    missing = load_experiment(None, [f"model.chat_template={tmp_path / 'none.jinja'}"])
    with pytest.raises(ConfigError, match=r"^model\.chat_template: .*no such \.jinja file"):
        check_model(missing)
    bare = tmp_path / "bare"
    bare.mkdir()
    for f in prepare("tiny-lm").iterdir():
        if f.name != "chat_template.jinja":
            (bare / f.name).symlink_to(f)
    no_template = load_experiment(None, [f"model.name={bare}", "model.system_prompt=Hi."])
    with pytest.raises(ConfigError, match=r"^model\.system_prompt: .*no chat template"):
        check_model(no_template)
