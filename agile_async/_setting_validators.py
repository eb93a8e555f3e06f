"""The attrs validators of settings objects (``BatchSettings``, ``RetryPolicy``, ``RateLimit``).

A setting of the wrong type or value is a :class:`~agile_async.ValidationError` naming the
field, raised by the constructor, never a ``TypeError`` from a comparison inside it (``"0.1"
< 0``) nor a ``NaN`` accepted because every comparison with it is false.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from ._exceptions import Problem, ValidationError

__all__ = ["at_least", "flag", "invalid", "optional_instance_of", "real"]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def invalid(field: str, problem: str, value: object) -> ValidationError:
    """The error for one setting: ``rate must be > 0, got 0``, with its :class:`Problem`."""
    return ValidationError(f"{field} {problem}, got {value!r}", problems=[Problem(field, problem)])


def real(*, minimum: float, exclusive: bool = False, unit: str = "") -> Validator:
    """A number (``int`` or ``float``, not ``bool``, not NaN) >= ``minimum`` (or >)."""
    bound = f"{'>' if exclusive else '>='} {minimum:g}{unit}"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or (isinstance(value, float) and math.isnan(value))
        ):
            raise invalid(attribute.name, f"must be a number {bound}", value)
        if value <= minimum if exclusive else value < minimum:
            raise invalid(attribute.name, f"must be {bound}", value)

    return check


def at_least(minimum: int) -> Validator:
    """An ``int`` (not ``bool``) >= ``minimum``."""
    problem = f"must be an integer >= {minimum}"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise invalid(attribute.name, problem, value)

    return check


def flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """``True`` or ``False``: ``"no"`` and ``0`` are refused, not read as truthiness."""
    if not isinstance(value, bool):
        raise invalid(attribute.name, "must be True or False", value)


def optional_instance_of(cls: type) -> Validator:
    """``None`` or an instance of ``cls``."""
    problem = f"must be a {cls.__name__} or None"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise invalid(attribute.name, problem, value)

    return check
