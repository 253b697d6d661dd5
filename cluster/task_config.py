"""The task section of an experiment: ``task.family`` names any registered task family, and
``task.<family name>`` holds its parameters, checked by the family's own typed config.

    task:
      family: generalpoints        # or virl, dataset, gymnasium, an installed plugin's name,
      generalpoints:               # or "module:attribute" of a TaskFamily object
        num_cards: 2

Errors name the dotted field (``task.generalpoints.num_cards: ...``). Sections of other
registered families may be present (they are checked too, and ignored).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from common.typed_config import ConfigError, explain, from_dict, to_dict
from envs.families import TaskFamily, family, names

DEFAULT_FAMILY = "generalpoints"


def _resolve(name: Any, path: str) -> TaskFamily:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{path}: expected a task family name (a string), got {name!r}")
    try:
        return family(name)
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from err


def _section(fam: TaskFamily, value: Any, path: str) -> Any:
    if isinstance(value, fam.config_cls):
        return value
    if value is None:
        value = {}
    try:
        return from_dict(fam.config_cls, value, path=path)
    except TypeError as err:  # a required field was left out
        raise ConfigError(f"{path}: {err}") from err


@dataclass(init=False)
class TaskConfig:
    """Which task family to train and evaluate on, and its parameters."""

    family: str = DEFAULT_FAMILY
    """Task family: a registered name (generalpoints, virl, dataset, gymnasium, or one an
    installed plugin adds; `veriray tasks` lists them) or "module:attribute" of a TaskFamily.
    Its parameters are the section task.<family name>."""
    sections: dict[str, Any] = field(default_factory=dict)
    """Family name -> its typed config (the YAML sections task.<name>)."""

    def __init__(
        self,
        family: str = DEFAULT_FAMILY,
        sections: dict[str, Any] | None = None,
        **by_name: Any,
    ) -> None:
        self.family = family
        fam = _resolve(family, "task.family")
        merged = dict(sections or {}) | by_name
        self.sections = {}
        for key, value in merged.items():
            sub = fam if key == fam.name else self._other(key)
            self.sections[key] = _section(sub, value, f"task.{key}")
        if fam.name not in self.sections:  # the active family always has a config
            self.sections[fam.name] = _section(fam, {}, f"task.{fam.name}")

    @staticmethod
    def _other(key: str) -> TaskFamily:
        if key in names():
            return family(key)
        raise ConfigError(
            f"task.{key}: unknown field of TaskConfig; allowed: family and the section of a "
            f"registered task family {names()}"
        )

    @classmethod
    def from_data(cls, data: Any, path: str = "task") -> TaskConfig:
        """The section as YAML gives it (see the module docstring)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping for TaskConfig, got {data!r}")
        rest = dict(data)
        return cls(rest.pop("family", DEFAULT_FAMILY), None, **rest)

    def to_data(self) -> dict[str, Any]:
        return {"family": self.family} | {k: to_dict(v) for k, v in self.sections.items()}

    @classmethod
    def explain_rows(cls, prefix: str = "task.") -> list[tuple[str, str, str, str]]:
        """`veriray config explain`: the family field, then every registered family's."""
        doc = "Task family: " + ", ".join(names()) + ' or "module:attribute" of a TaskFamily.'
        rows = [(f"{prefix}family", "str", repr(DEFAULT_FAMILY), doc)]
        for name in names():
            rows.extend(explain(family(name).config_cls, prefix=f"{prefix}{name}."))
        return rows

    @property
    def spec(self) -> TaskFamily:
        """The active family."""
        return family(self.family)

    @property
    def active(self) -> Any:
        """The typed config of the active family."""
        return self.sections[self.spec.name]

    def active_dict(self) -> dict[str, Any]:
        """The active family's config as the plain dict the family's callables take."""
        return dataclasses.asdict(self.active)

    def train_dict(self) -> dict[str, Any]:
        """The config the RL and SFT stages play (the family's training split)."""
        return self.spec.train_config(self.active_dict())

    def __getattr__(self, name: str) -> Any:
        # cfg.task.generalpoints, cfg.task.virl, ...: a registered family's section (its
        # defaults when the YAML has none), so code and tests read sections by name.
        if name.startswith("_") or "sections" not in self.__dict__:
            raise AttributeError(name)
        if name in self.sections:
            return self.sections[name]
        if name in names():
            return _section(family(name), {}, f"task.{name}")
        raise AttributeError(f"TaskConfig has no field or task section {name!r}")
