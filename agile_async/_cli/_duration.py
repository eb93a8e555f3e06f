"""Durations on the command line: ``30s``, ``10m``, ``2h``, ``1d``, ``1h30m`` or seconds.

Operators type them (``--silent-for 1h``), so the forms are the ones people write, and a
typo is a clear usage error naming the forms, never a silently different duration.
"""

from __future__ import annotations

import re
from datetime import timedelta

import click

__all__ = ["duration_option", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NUMBER = r"\d+(?:\.\d+)?"
_WHOLE = re.compile(rf"(?:{_NUMBER}[smhd])+", re.IGNORECASE)
_PART = re.compile(rf"({_NUMBER})([smhd])", re.IGNORECASE)
_FORMS = "use forms like 30s, 10m, 2h, 1d, 1h30m, or a number of seconds"


def parse_duration(text: str) -> timedelta:
    """``text`` as a duration.

    Raises:
        ValueError: not a duration (the message says which forms are), or too long.
    """
    value = text.strip()
    try:
        if re.fullmatch(_NUMBER, value):
            seconds = float(value)
        elif _WHOLE.fullmatch(value):
            seconds = sum(
                float(number) * _UNITS[unit.lower()] for number, unit in _PART.findall(value)
            )
        else:
            raise ValueError(f"{text!r} is not a duration: {_FORMS}")
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def duration_option(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> timedelta | None:
    """A click ``callback=`` turning an option's text into a :class:`~datetime.timedelta`
    (a callback rather than a ``ParamType``: that class is generic only in newer click)."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None
