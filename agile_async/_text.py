"""The one rule for text that may reach the wire: it must be encodable as UTF-8.

A Python ``str`` can hold a lone surrogate (``"\\ud800"``, from a JSON escape, from
``surrogateescape``-decoded bytes, from a sliced emoji): it looks like text but no JSON
encoder, SQLite journal or provider can take it. Every string a model holds and every value a
campaign reads goes through :func:`text_problem`, so the failure is a validation error naming
the field, before anything is queued, instead of a ``TypeError`` from the encoder that would
fail every message sharing the request.
"""

from __future__ import annotations

__all__ = ["printable", "text_problem"]


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be encoded as UTF-8, or ``None`` when it can.

    ASCII (the common case) is answered without encoding anything.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        return (
            f"holds a lone surrogate {value[error.start]!r} at character {error.start}, "
            "which is not text (invalid UTF-8 or a broken \\ud800-style escape)"
        )
    return None


def printable(value: str) -> str:
    """``value`` with anything unencodable written as a ``\\udcff`` escape, so a refused
    value can still be shown and stored."""
    if value.isascii():
        return value
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
