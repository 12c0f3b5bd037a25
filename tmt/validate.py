"""Field checks for the dataclasses that users fill (decoding options, configs read from JSON).

A value of the wrong type (``"max_text_len": "abc"``, ``"model_dim": "256"``) or a non-finite
number becomes one :class:`~tmt.errors.TmtError` naming the field, instead of a failure deep
inside torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any

from tmt.errors import TmtError


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(a, value) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True  # containers and classes: checked by their own code


def check_fields(obj: Any, what: str) -> None:
    """Every field of the dataclass ``obj`` holds a value of its annotated type, and every
    float is finite; else a TmtError naming ``what`` and the field."""
    hints = typing.get_type_hints(type(obj))
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        annotation = hints.get(field.name, Any)
        if not _accepts(annotation, value):
            raise TmtError(f"{what}: {field.name} must be {_describe(annotation)}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise TmtError(f"{what}: {field.name} must be a finite number, got {value!r}")


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
             type(None): "null"}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))
