"""A logging filter that masks one secret in every record it sees, for servers that log paths.

The receiver's path token is the last segment of the webhook URL, and ASGI servers log request
lines: uvicorn's access log writes ``"POST /agile/reports/<token> HTTP/1.1" 200``. The receiver
itself never logs the token, but the server's log is not ours, so the receiver offers this
filter for the server's loggers (``logging.getLogger("uvicorn.access").addFilter(...)``).

It masks rather than drops: the request line stays in the log (a 200 at ``/agile/reports/***``
is the provider, a 404 at ``/agile/reports/guess`` a prober), and record arguments keep their
shape, because uvicorn's access formatter unpacks them positionally.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MASK", "TokenMask"]

#: What the secret is replaced with (the same as the receiver's repr shows).
MASK: Final = "***"

_FORMATTER = logging.Formatter()


class TokenMask(logging.Filter):
    """Replaces ``secret`` with ``***`` in a record's message and arguments; never drops one.

    A string argument is masked in place; any other argument that is not a number but whose
    text holds the secret (an ASGI scope dict at uvicorn's trace level, a URL object) becomes
    its masked text. Numbers are left alone, so ``%d`` still formats.
    """

    def __init__(self, secret: str | None) -> None:
        super().__init__()
        self._secret = secret or None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'***' if self._secret else 'off'}>"

    def filter(self, record: logging.LogRecord) -> bool:
        secret = self._secret
        if secret is None:
            return True
        if isinstance(record.msg, str) and secret in record.msg:
            record.msg = record.msg.replace(secret, MASK)
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(self._mask(arg, secret) for arg in args)
        elif isinstance(args, Mapping):
            record.args = {key: self._mask(value, secret) for key, value in args.items()}
        if record.exc_info and not record.exc_text:
            # Formatters render the traceback after the filters ran, from exc_info, unless
            # exc_text is already set: set it, masked, when the secret is in it.
            text = _FORMATTER.formatException(record.exc_info)
            if secret in text:
                record.exc_text = text
        if record.exc_text and secret in record.exc_text:
            record.exc_text = record.exc_text.replace(secret, MASK)
        if record.stack_info and secret in record.stack_info:
            record.stack_info = record.stack_info.replace(secret, MASK)
        return True

    @staticmethod
    def _mask(value: Any, secret: str) -> Any:
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        if isinstance(value, str):
            return value.replace(secret, MASK) if secret in value else value
        if isinstance(value, (bytes, bytearray)):
            raw = secret.encode()
            return bytes(value).replace(raw, MASK.encode()) if raw in value else value
        try:
            text = str(value)
        except Exception:  # a broken __str__ fails the formatter later, as it would anyway
            return value
        return text.replace(secret, MASK) if secret in text else value
