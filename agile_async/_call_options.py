"""The settings a caller may change for one call or one view of a client: the one home of
their checks.

``client.with_options(timeout=..., retry=..., options=...)`` and the per-call ``timeout=`` and
``retry=`` of ``send``, ``credit`` and ``check_credit`` all pass through here, so a bad value
reads the same wherever it is given (``timeout must be a number > 0 s, got 0``), as a
:class:`~agile_async.ConfigurationError` naming the argument, before anything is sent.

``None`` means "not given" (keep the client's setting) everywhere, as for every other optional
argument of the SDK; to wait without any limit, pass ``httpx.Timeout(None)``.
"""

from __future__ import annotations

import httpx

from ._config import RetryPolicy
from ._models import SendOptions
from ._setting_validators import check_number, invalid

__all__ = ["check_options", "check_retry", "check_timeout"]


def check_timeout(name: str, value: httpx.Timeout | float | None) -> httpx.Timeout | None:
    """``value`` as an :class:`httpx.Timeout`: one given, or a number of seconds (finite,
    > 0) applied to connect, read, write and pool alike; ``None`` stays ``None``."""
    if value is None or isinstance(value, httpx.Timeout):
        return value
    seconds = check_number(name, value, minimum=0, exclusive=True, unit=" s", finite=True)
    return httpx.Timeout(float(seconds))


def check_retry(name: str, value: RetryPolicy | None) -> RetryPolicy | None:
    """``value`` when it is a :class:`~agile_async.RetryPolicy` or ``None``."""
    if value is not None and not isinstance(value, RetryPolicy):
        raise invalid(name, "must be a RetryPolicy or None", value)
    return value


def check_options(name: str, value: SendOptions | None) -> SendOptions | None:
    """``value`` when it is a :class:`~agile_async.SendOptions` or ``None``."""
    if value is not None and not isinstance(value, SendOptions):
        raise invalid(name, "must be a SendOptions or None", value)
    return value
