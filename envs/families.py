"""The task registry: every task family behind one small interface, looked up by name, so the
rollout, learner, evaluation and controller code never branches on (or names) a family.

A family supplies its typed config, env factory, verifier, evaluation suites, success and
budget semantics, and optionally SFT examples and extra metrics (``TaskFamily``). Families
come from three places, all equal:

- built in: every ``envs/<package>/family.py`` registers its family when imported (the study's
  GeneralPoints and V-IRL, the dataset task, the gymnasium adapter);
- installed: a distribution declares an entry point in the group ``veriray.tasks`` whose
  object is a TaskFamily (or a function returning one, or a module that calls ``register``);
- in code: ``register(family)`` in this process, or ``task.family: "module:attribute"``,
  which every process (each Ray worker too) resolves by importing the module.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
import pkgutil
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gymnasium as gym

from verifier.base import Verifier

if TYPE_CHECKING:
    from envs.discrete import DiscreteEncoding

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "veriray.tasks"
"""Entry-point group through which an installed distribution adds task families."""


@dataclass(frozen=True)
class SFTRequest:
    """What the SFT stage asks a family for: ``n`` expert conversations."""

    config: dict[str, Any]
    """The family's config dict, on its training split."""
    n: int
    """How many examples (sft.examples)."""
    seed: int
    """Seed of choosing/dealing them (sft.seed)."""
    image_store: Any = None
    """An ImageStore for image observations (multimodal models), else None."""
    thought: bool = False
    """Whether answers should carry a reasoning field where the family has one."""


def verdict_success(info: dict[str, Any]) -> bool:
    """The usual success rule: the final step's verdict says the answer solved the task."""
    return bool(info.get("verdict", {}).get("success", False))


def train_split(config: dict[str, Any]) -> dict[str, Any]:
    """The usual training config: the family's config with ``split: train``."""
    return config | {"split": "train"}


def no_reason(config: dict[str, Any]) -> str | None:
    del config
    return None


@dataclass(frozen=True)
class TaskFamily:
    """One task family. All callables take plain (JSON-able) config dicts: they cross Ray
    actors and are hashed into cache keys."""

    name: str
    """The family's name: the value of ``task.family`` and the key of its ``task.<name>``
    section."""
    config_cls: type
    """A dataclass of the family's parameters, loaded from ``task.<name>`` with checked types;
    its ``__post_init__`` raises ValueError("<field>: <what to do>") for impossible values."""
    make_env: Callable[[dict[str, Any]], gym.Env]
    """Config dict -> env. The env follows veriray's episode protocol (``reset`` returns an
    observation dict with "text" and an info with "task_state"; ``apply_verdict(verdict)``
    advances it; ``step(text)`` is verify + apply_verdict). The gymnasium adapter builds
    one from any text gymnasium env."""
    make_verifier: Callable[[dict[str, Any]], Verifier]
    """Config dict -> the verifier (pure ``verify(task_state, text) -> Verdict``) the
    verifier actors run; callers wrap it in ``verify_total``."""
    suites: Callable[[dict[str, Any]], dict[str, dict[str, Any]]]
    """Training config dict -> {suite name: config dict}: ID first, then the OOD variants,
    then "validation" where the family has one (tuning only, never evaluated by default)."""
    eval_reset_options: Callable[[dict[str, Any], int | None, int], list[dict[str, Any]]]
    """(suite config dict, limit, seed) -> reset options of the suite's distinct held-out
    prompts, each once, in a stable order (a seeded sample of ``limit`` when there are more;
    None = all)."""
    episode_success: Callable[[dict[str, Any]], bool] = verdict_success
    """Final step's info -> whether the episode succeeded."""
    budget_field: str | None = None
    """The config field holding the verification budget (answers allowed per prompt, the
    study's VIter), which an evaluation budget sweep replaces; None = no budget to sweep."""
    train_config: Callable[[dict[str, Any]], dict[str, Any]] = train_split
    """Config dict -> the config the RL and SFT stages play (its training split)."""
    sft_examples: Callable[[SFTRequest], Iterable[dict[str, Any]]] | None = None
    """Expert conversations for the SFT stage, as rows made by ``envs.sft_rows.sft_row``;
    None = the family has no expert (SFT cannot run)."""
    sft_unavailable: Callable[[dict[str, Any]], str | None] = no_reason
    """Config dict -> why this config gives no SFT examples (checked at load time), or None."""
    extra_metrics: Callable[[Sequence[Any]], dict[str, float]] | None = None
    """A suite's played episodes (EpisodeResult) -> extra numbers for the report and the
    metrics log (``eval/<suite>/<name>``)."""
    description: str = ""
    """One line for `veriray tasks`."""
    discrete_encoding: Callable[[dict[str, Any]], DiscreteEncoding] | None = None
    """Config dict -> a fixed-size numeric view of the prompt and a finite answer menu
    (envs.discrete), for policies without a language model (``veriray baseline rllib``);
    None = the family has none. It may raise ValueError("<field>: ...") for configs it cannot
    encode."""


_REGISTRY: dict[str, TaskFamily] = {}
_BROKEN: dict[str, str] = {}  # entry-point name -> why its plugin did not load
_discovered = False


def register(fam: TaskFamily, *, replace: bool = False) -> TaskFamily:
    """Add a family to this process's registry (returns it, so a module can write
    ``FAMILY = register(TaskFamily(...))``)."""
    if not isinstance(fam, TaskFamily):
        raise TypeError(f"register: expected a TaskFamily, got {type(fam).__name__}")
    if not fam.name.isidentifier():
        raise ValueError(
            f"task family name {fam.name!r}: use a Python identifier (it names the "
            "task.<name> config section)"
        )
    if not dataclasses.is_dataclass(fam.config_cls):
        raise TypeError(f"task family {fam.name}: config_cls must be a dataclass")
    old = _REGISTRY.get(fam.name)
    if old is not None and old is not fam and not replace:
        raise ValueError(f"task family {fam.name!r} is already registered; pass replace=True")
    _REGISTRY[fam.name] = fam
    return fam


def _builtin_modules() -> list[str]:
    """``envs.<package>.family`` of every envs subpackage that has one (no list to edit)."""
    import envs

    out = []
    for info in pkgutil.iter_modules(envs.__path__):
        name = f"envs.{info.name}.family"
        if info.ispkg and importlib.util.find_spec(name) is not None:
            out.append(name)
    return sorted(out)


def _load_entry_point(ep: Any) -> None:
    obj = ep.load()
    if isinstance(obj, types.ModuleType):
        pass  # the module registered its families on import
    elif isinstance(obj, TaskFamily):
        register(obj, replace=True)
    elif callable(obj):
        made = obj()
        if isinstance(made, TaskFamily):
            register(made, replace=True)
    if ep.name not in _REGISTRY:
        raise ValueError(f"entry point {ep.value!r} did not register a family named {ep.name!r}")


def discover() -> None:
    """Register the built-in families and the installed plugins (once per process). A plugin
    that fails to load is remembered, not fatal: only asking for it raises."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    for module in _builtin_modules():
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            _load_entry_point(ep)
        except Exception as err:  # a broken plugin must not take the other tasks down
            _BROKEN[ep.name] = f"{type(err).__name__}: {err}"
            logger.warning("task plugin %s (%s) failed to load: %s", ep.name, ep.value, err)


def _from_reference(ref: str) -> TaskFamily:
    module, _, attr = ref.partition(":")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"task family {ref!r}: cannot import it ({err})") from err
    if callable(obj) and not isinstance(obj, TaskFamily):
        obj = obj()
    if not isinstance(obj, TaskFamily):
        raise ValueError(f"task family {ref!r}: is a {type(obj).__name__}, not a TaskFamily")
    return register(obj, replace=True)


def family(name: str) -> TaskFamily:
    """The family registered as ``name``, or named by ``"module:attribute"``."""
    if ":" in name:
        return _from_reference(name)
    if name not in _REGISTRY:
        discover()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BROKEN:
        raise ValueError(f"task family {name!r}: its plugin failed to load: {_BROKEN[name]}")
    raise ValueError(
        f"task family {name!r} is not registered; registered: {names()}. Install the "
        f"distribution that provides it (entry point group {ENTRY_POINT_GROUP!r}) or name a "
        "TaskFamily object as 'module:attribute'"
    )


def names() -> list[str]:
    """Every registered family name (built-in, installed and registered in code)."""
    discover()
    return sorted(_REGISTRY)


def config_dict(config: Any) -> dict[str, Any]:
    """A task config dataclass as the plain dict the families take."""
    return dataclasses.asdict(config)
