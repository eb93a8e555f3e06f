"""Showing URLs and httpx errors without the secrets in them.

Two rules, each with one home:

* a URL is shown without its userinfo (``https://user:pass@host`` -> ``https://***@host``,
  ``redis://:password@host`` -> ``redis://***@host``) and without the values of query
  parameters that name a secret (``?password=...``): :func:`redact_url` for one URL,
  :func:`redact_urls` for a message that may contain some;
* an httpx error becomes part of ours only as a scrubbed copy (:func:`scrubbed_httpx_error`):
  same class, same (redacted) message, a request with the method and the redacted URL, and
  nothing else: no headers (``X-Api-Key``, ``Authorization``), no body, no chained cause.
  Error trackers that serialise exception attributes and chains find nothing to leak.
"""

from __future__ import annotations

import re

import httpx

__all__ = ["redact_url", "redact_urls", "scrubbed_httpx_error"]

#: ``scheme://userinfo@`` anywhere in a text; the userinfo runs to the last ``@`` before the
#: path, so a password with an unencoded ``@`` is covered whole.
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#\s]*@")
#: A query parameter whose name says it is a secret, with its value.
_SECRET_PARAMETER = re.compile(
    r"(?P<name>[?&][^=&#\s]*(?:pass|token|secret|key|auth)[^=&#\s]*=)[^&#\s]*", re.IGNORECASE
)

MASK = "***"


def redact_urls(text: str) -> str:
    """``text`` with the userinfo and secret query values of every URL in it masked."""
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    return _SECRET_PARAMETER.sub(lambda m: f"{m['name']}{MASK}", text)


def redact_url(url: str | httpx.URL) -> str:
    """A URL as it may be shown: in errors, logs, reprs and CLI output."""
    return redact_urls(str(url))


def scrubbed_httpx_error(error: httpx.RequestError) -> httpx.RequestError:
    """A copy of ``error`` that carries nothing secret (see the module docstring)."""
    request: httpx.Request | None
    try:
        original = error.request
    except RuntimeError:  # httpx raises when no request was attached
        request = None
    else:
        request = httpx.Request(original.method, redact_url(original.url))
    copy = type(error)(redact_urls(str(error)), request=request)
    copy.__suppress_context__ = True
    return copy
