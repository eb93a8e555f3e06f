"""Argument checks: the one home of "a bad argument is a ConfigurationError naming it".

Every constructor and method that takes a setting checks it here, so a wrong value reads the
same everywhere (``idle_ttl must be a number >= 1 s, got 0``) and carries a
:class:`~agile_async.Problem` naming the argument. A setting of the wrong type is refused by
name too, never a ``TypeError`` from a comparison inside a check (``"0.1" < 0``) nor a
``NaN`` accepted because every comparison with it is false.

The plain functions (:func:`check_number`, :func:`check_integer`, ...) return the value, for
``__init__`` bodies; the attrs validators (:func:`real`, :func:`at_least`, :func:`flag`,
:func:`optional_instance_of`) wrap them for settings classes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs

from ._exceptions import ConfigurationError, Problem

__all__ = [
    "at_least",
    "callable_setting",
    "check_amount",
    "check_callable",
    "check_duration",
    "check_flag",
    "check_integer",
    "check_number",
    "flag",
    "invalid",
    "optional_instance_of",
    "real",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]
N = TypeVar("N", int, float)
T = TypeVar("T")

#: What an error shows when the value itself must not be shown.
_UNSHOWN: Any = object()


def invalid(name: str, problem: str, value: object = _UNSHOWN) -> ConfigurationError:
    """The error for one bad argument: ``rate must be > 0, got 0``, with its :class:`Problem`.

    Leave ``value`` out when it must not be shown (a secret).
    """
    shown = "" if value is _UNSHOWN else f", got {value!r}"
    return ConfigurationError(f"{name} {problem}{shown}", problems=[Problem(name, problem)])


def check_amount(name: str, value: object, *, negative: bool = False) -> Decimal:
    """An amount of money, as a Decimal: given as a Decimal, an int or a numeric string,
    finite, and not negative unless ``negative`` (a threshold on a credit may be below 0).
    A float is refused: it cannot say most amounts exactly (``Decimal(0.045)`` is
    0.04499999999999999833...), and money is Decimal here."""
    if isinstance(value, (float, bool)) or not isinstance(value, (Decimal, int, str)):
        raise invalid(
            name,
            "must be a Decimal, int or str: a float cannot represent most amounts exactly",
            value,
        )
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise invalid(name, "must be a number", value) from None
    if not amount.is_finite():
        raise invalid(name, "must be a finite amount", value)
    if amount < 0 and not negative:
        raise invalid(name, "must be a finite, non-negative amount", value)
    return amount


def check_number(
    name: str,
    value: N,
    *,
    minimum: float,
    exclusive: bool = False,
    unit: str = "",
    finite: bool = False,
) -> N:
    """``value``, when it is a number (``int`` or ``float``, not ``bool``, not NaN) >=
    ``minimum`` (> with ``exclusive``; and not infinite with ``finite``)."""
    bound = f"{'>' if exclusive else '>='} {minimum:g}{unit}"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, float) and math.isnan(value))
    ):
        raise invalid(name, f"must be a number {bound}", value)
    if value <= minimum if exclusive else value < minimum:
        raise invalid(name, f"must be {bound}", value)
    if finite and math.isinf(value):
        raise invalid(name, f"must be a finite number {bound}", value)
    return value


def check_integer(name: str, value: int, *, minimum: int, none: str = "") -> int:
    """``value``, when it is an ``int`` (not ``bool``) >= ``minimum``.

    ``none`` says what ``None`` would mean, for arguments that allow it: it is only shown in
    the message (the caller decides whether ``None`` gets here).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        alternative = f" (or None: {none})" if none else ""
        raise invalid(name, f"must be an integer >= {minimum}{alternative}", value)
    return value


def real(*, minimum: float, exclusive: bool = False, unit: str = "") -> Validator:
    """An attrs validator: :func:`check_number` on the attribute."""

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_number(attribute.name, value, minimum=minimum, exclusive=exclusive, unit=unit)

    return check


def at_least(minimum: int) -> Validator:
    """An attrs validator: :func:`check_integer` on the attribute."""

    def check(_: object, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_integer(attribute.name, value, minimum=minimum)

    return check


def check_flag(name: str, value: object) -> bool:
    """``True`` or ``False``: ``"no"`` and ``0`` are refused, not read as truthiness."""
    if value is not True and value is not False:
        raise invalid(name, "must be True or False", value)
    return value


def flag(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """:func:`check_flag` for a setting of a settings class."""
    check_flag(attribute.name, value)


def check_callable(name: str, value: T, *, optional: bool = True) -> T:
    """A callback setting: something callable (or ``None`` when ``optional``), refused here
    rather than with a ``TypeError`` the first time it is called, inside a send."""
    if (value is None and optional) or callable(value):
        return value
    raise invalid(name, "must be callable or None" if optional else "must be callable", value)


def callable_setting(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """:func:`check_callable` for a required callback of a settings class."""
    check_callable(attribute.name, value, optional=False)


def optional_instance_of(cls: type) -> Validator:
    """``None`` or an instance of ``cls``."""
    problem = f"must be a {cls.__name__} or None"

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value is not None and not isinstance(value, cls):
            raise invalid(attribute.name, problem, value)

    return check


def check_duration(name: str, value: timedelta | float) -> timedelta:
    """``value`` as a :class:`~datetime.timedelta`: a timedelta, or a number of seconds, that
    is not negative."""
    problem = "must not be negative (a timedelta, or seconds)"
    if not isinstance(value, timedelta):
        value = timedelta(
            seconds=check_number(name, value, minimum=0, unit=" seconds", finite=True)
        )
    if value < timedelta(0):
        raise invalid(name, problem, value)
    return value
