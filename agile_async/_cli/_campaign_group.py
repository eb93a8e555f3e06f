"""The ``agile-sms campaign`` group. Its commands are registered with every other command,
in one place: :mod:`._app`."""

from __future__ import annotations

import click

__all__ = ["campaign"]


@click.group()
def campaign() -> None:
    """Bulk campaigns from a CSV or JSONL file: journaled, resumable, never sent twice."""
