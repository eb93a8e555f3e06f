"""Turning HTTP outcomes into results or typed errors.

Two questions are answered here, both as plain functions:

* what a response means (:func:`raise_for_response`, :func:`parse_body`): a 2XX body
  becomes a model; a 4XX/5XX body in the provider's format becomes the class for its code;
  anything else (an HTML page from a proxy) still becomes a typed :class:`APIError` with the
  status and a short snippet;
* what a transport failure means (:func:`translate_transport_error`): was the request
  certainly not sent (safe to retry), or may the provider have taken it (outcome unknown)?
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import cattrs
import httpx

from ._exceptions import (
    AgileError,
    APIError,
    OutcomeUnknownError,
    RateLimitError,
    TransportError,
    error_for_code,
)
from ._redact import redact_urls, scrubbed_httpx_error
from ._retry import parse_retry_after
from ._serde import loads, structure

__all__ = ["parse_body", "raise_for_response", "snippet", "translate_transport_error"]

T = TypeVar("T")

_SNIPPET_CHARS = 200
_WHITESPACE = re.compile(r"\s+")

#: Failures raised before a byte of the request could reach the provider.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.UnsupportedProtocol,
    httpx.ProxyError,
    httpx.LocalProtocolError,
)


def snippet(text: str) -> str:
    """The start of a foreign body, on one line, short enough for an error message."""
    flat = _WHITESPACE.sub(" ", text).strip()
    if len(flat) > _SNIPPET_CHARS:
        return flat[:_SNIPPET_CHARS] + "…"
    return flat


#: More digits than any provider code has (they are 1 to 3 digits long).
_MAX_CODE_DIGITS = 9


def _provider_error_body(response: httpx.Response) -> tuple[int, Mapping[str, Any]] | None:
    """The code and body of the provider's error JSON, or ``None`` for anything else.

    The code is taken as an integer or a string of digits (``"7"``): lenient about the
    type, strict about the meaning.
    """
    try:
        body = loads(response.content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    code = body.get("code")
    if isinstance(code, str):
        digits = code.strip()
        # ASCII digits, a handful: "²" is a digit to str.isdigit() and not to int(), and
        # int() refuses thousands of digits; either is no code of the provider's.
        if 0 < len(digits) <= _MAX_CODE_DIGITS and digits.isascii() and digits.isdigit():
            code = int(digits)
    if isinstance(code, bool) or not isinstance(code, int):
        return None
    return code, body


def _detail(body: Mapping[str, Any]) -> Mapping[str, str] | str | None:
    detail = body.get("data", body.get("message"))
    if isinstance(detail, Mapping):
        return {str(k): str(v) for k, v in detail.items()}
    if detail is None:
        return None
    return str(detail)


def _describe(detail: Mapping[str, str] | str | None) -> str:
    if detail is None:
        return "no details"
    if isinstance(detail, str):
        return detail
    return "; ".join(f"{field}: {problem}" for field, problem in detail.items())


def raise_for_response(response: httpx.Response, ids: Sequence[str]) -> None:
    """Raise the typed error for a non-2XX ``response``; return for a 2XX one."""
    status = response.status_code
    if 200 <= status < 300:
        return
    parsed = _provider_error_body(response)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if parsed is None:
        text = snippet(response.text)
        message = f"HTTP {status} without the provider's JSON body: {text!r}"
        if status == 429:
            raise RateLimitError(
                message, status_code=status, data=text, ids=ids, retry_after=retry_after
            )
        raise APIError(message, status_code=status, data=text, ids=ids)
    code, body = parsed
    detail = _detail(body)
    message = f"{_describe(detail)} (code {code}, HTTP {status})"
    if status == 429:
        raise RateLimitError(
            message, code=code, status_code=status, data=detail, ids=ids, retry_after=retry_after
        )
    raise error_for_code(code)(message, code=code, status_code=status, data=detail, ids=ids)


def parse_body(response: httpx.Response, cls: type[T], ids: Sequence[str]) -> T:
    """Structure a 2XX body into ``cls``.

    A 2XX whose body is not what the provider documents cannot say what was accepted, so it
    is an :class:`OutcomeUnknownError` for a send (the caller passes the ids) and an
    :class:`APIError` for a read.
    """
    try:
        return structure(loads(response.content), cls)
    except (ValueError, TypeError, cattrs.BaseValidationError) as err:
        problems = (
            "; ".join(cattrs.transform_error(err))
            if isinstance(err, cattrs.BaseValidationError)
            else str(err)
        )
        message = (
            f"HTTP {response.status_code} with an unexpected body ({problems}): "
            f"{snippet(response.text)!r}"
        )
        if ids:
            raise OutcomeUnknownError(message, ids=ids) from None
        raise APIError(
            message, status_code=response.status_code, data=snippet(response.text)
        ) from None


def translate_transport_error(
    error: httpx.RequestError, ids: Sequence[str], *, idempotent: bool
) -> AgileError:
    """Our error for an httpx transport failure.

    Failures before the request was sent are :class:`TransportError` (safe to retry). After
    it went out (read timeout, reset, the peer closing mid-response) the provider may have
    accepted the messages: :class:`OutcomeUnknownError` naming their ids, unless the request
    was idempotent (a read), where nothing is at stake.

    The httpx error itself is not kept: it holds the request with its credential headers.
    Its scrubbed copy becomes the ``__cause__``; raise the result outside the ``except``
    block, so that ``__context__`` does not bring the original back.
    """
    text = redact_urls(str(error))
    reason = f"{type(error).__name__}: {text}" if text else type(error).__name__
    translated: AgileError
    if isinstance(error, _NOT_SENT) or idempotent:
        translated = TransportError(f"the request could not be completed ({reason})", ids=ids)
    else:
        translated = OutcomeUnknownError(
            f"the request was sent but no response came back ({reason}); the provider may "
            f"have accepted {len(ids)} message(s)",
            ids=ids,
        )
    # The cause a traceback shows, without the request's headers (the credentials).
    translated.__cause__ = scrubbed_httpx_error(error)
    return translated
