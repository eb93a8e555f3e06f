"""Options more than one command module takes: how an input file is read (``campaign run``
and ``campaign enqueue``). Here, not in either command module, so neither imports the
other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["input_options"]


def input_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """``--encoding`` and ``--delimiter``: how FILE is read (``run`` and ``enqueue``); the
    campaign records them, so a resume reads the file the same way."""
    options = [
        click.option("--encoding", default="utf-8", show_default=True, metavar="CODEC",
                     help="FILE's text encoding (cp1252, latin-1, utf-16...). A byte that "
                     "does not decode fails its row, naming the line."),
        click.option("--delimiter", metavar="CHAR",
                     help="CSV delimiter: ',', ';', 'tab' or another character. Default: "
                     "sniffed (comma, semicolon or tab)."),
    ]  # fmt: skip
    for option in reversed(options):
        function = option(function)
    return function
