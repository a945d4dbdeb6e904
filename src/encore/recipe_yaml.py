"""Recipe text: YAML read as YAML 1.2 reads numbers, and dotted `--set section.key=value` overrides."""

from __future__ import annotations

import re
from typing import Any

import yaml

from encore.errors import RecipeError


class _RecipeLoader(yaml.SafeLoader):
    """YAML's safe loader, reading ``1e-4`` as a float, as YAML 1.2 does.

    PyYAML implements YAML 1.1, whose floats need a dot (``1.0e-4``): ``1e-4`` was the string
    ``"1e-4"``, which pydantic sections coerce but TRL's ``args:`` pass on as they are (a DPO stage died
    creating its optimizer, after SFT had run, on ``learning_rate: "2e-4"``).
    """


_RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_yaml(text: str) -> Any:
    """Parse recipe YAML (a file or a `--set` value) with :class:`_RecipeLoader`."""
    return yaml.load(text, Loader=_RecipeLoader)  # a SafeLoader subclass: safe


def _parse_value(text: str) -> Any:
    """`--set` values are YAML scalars or flow collections: `3`, `1e-4`, `true`, `[a, b]`."""
    return read_yaml(text) if text else ""


def apply_overrides(raw: dict[str, Any], overrides: list[str], source: str) -> dict[str, Any]:
    """Apply `section.key=value` overrides to the raw recipe mapping (in place, returned)."""
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RecipeError(f"{source}: override {item!r} is not of the form section.key=value")
        node = raw
        *parents, leaf = key.split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"{source}: override {key!r}: {part!r} is not a section")
            node = child
        node[leaf] = _parse_value(value)
    return raw
