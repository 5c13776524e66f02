"""`textclf serve` flags derived from `Settings`, so each option is defined once.

Every field of `Settings` (except the model folder, a positional argument, and the API key,
which stays out of process listings) becomes `--field-name`, typed, with the field's description
as its help. A flag left out keeps whatever the environment or the default says.
"""

from __future__ import annotations

import argparse
import json
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic.fields import FieldInfo

from service.settings import Settings
from textclf.config import without_none

# Not flags: the positional DIR, and a secret (read TEXTCLF_API_KEY from the environment).
NOT_FLAGS = frozenset({"model_path", "api_key"})


def add_settings_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("settings (each also read from TEXTCLF_<NAME>)")
    for name, field in Settings.model_fields.items():
        if name not in NOT_FLAGS:
            group.add_argument(f"--{name.replace('_', '-')}", default=None, **_spec(name, field))


class _Unset:
    """`--flag none` for a setting whose None means something (torch_threads: torch's own)."""

    def __repr__(self) -> str:
        return "none"


NONE = _Unset()


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags (those left out are absent)."""
    given = {
        name: getattr(args, name)
        for name in Settings.model_fields
        if name not in NOT_FLAGS and getattr(args, name, None) is not None
    }
    return {name: None if value is NONE else value for name, value in given.items()}


def as_environment(overrides: dict[str, Any]) -> dict[str, str]:
    """Overrides as TEXTCLF_* variables, as worker processes read them."""
    env = {}
    for name, value in overrides.items():
        if value is None:
            text = "none"  # Settings' env_parse_none_str
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = json.dumps(value)
        else:
            text = str(Path(value).resolve()) if isinstance(value, Path) else str(value)
        env[f"TEXTCLF_{name.upper()}"] = text
    return env


def _spec(name: str, field: FieldInfo) -> dict[str, Any]:
    kind, nullable = without_none(field.annotation)
    default = field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]
    help_text = f"{field.description or name.replace('_', ' ')} (default: {default!r})"
    help_text = help_text.replace("%", "%%")
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction, "help": help_text}
    if typing.get_origin(kind) is Literal:
        return {"choices": typing.get_args(kind), "help": help_text}
    if typing.get_origin(kind) is list:
        return {"nargs": "+", "metavar": "VALUE", "help": help_text}
    if kind in (int, float, str, Path):
        parse = _or_none(kind) if nullable else kind
        metavar = kind.__name__.upper() + ("|none" if nullable else "")
        return {"type": parse, "metavar": metavar, "help": help_text}
    raise TypeError(f"Settings.{name}: no flag type for {field.annotation}")


def _or_none(kind: type) -> Any:
    def parse(text: str) -> Any:
        return NONE if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse
