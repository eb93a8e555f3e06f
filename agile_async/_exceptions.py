"""Every error the SDK raises, and the one mapping from provider codes to classes.

```
AgileError
├── ValidationError (ValueError)       local, before any request; lists every problem
│   └── InvalidDeliveryReportError     a webhook body is not what the provider sends
├── ConfigurationError (ValueError)    a bad argument or setting; .problems names it
├── ClientClosedError (RuntimeError)   a closed client or batcher was used
│   └── BatcherStoppedError            the batcher stopped first; nothing sent, send again
├── QueueFullError                     submit_nowait() found the batcher's queue full
├── MessageWithdrawnError              taken back before sending: its caller stopped waiting
├── APIError                           the provider said no (.code, .status_code, .data)
│   ├── AuthenticationError            code 1 (and 11)          account-wide
│   ├── InsufficientCreditError        code 2                   account-wide
│   │   └── CreditThresholdError       credit fell below the batcher's credit_threshold
│   ├── DestinationNotAllowedError     code 3                   one message
│   ├── UnknownAPIError                code 4
│   ├── InvalidDestinationError        codes 5, 6, 7            one message
│   ├── ServerError                    code 8                   retried
│   ├── ServiceTimeoutError            code 9                   retried
│   ├── GlobalIdLengthError            code 10                  the request
│   ├── SenderNotAllowedError          code 26 (and 18)         one message
│   ├── IPNotAllowedError              code 100                 account-wide
│   └── RateLimitError                 HTTP 429, no code        retried, honours Retry-After
├── TransportError                     the request never reached the provider
├── OutcomeUnknownError                the request may have been taken; do not blindly resend
├── CampaignError                      a campaign cannot go on as asked (agile_async.campaigns)
│   ├── TemplateError (ValueError)     a malformed body template, or a row lacking a field
│   ├── InputChangedError              the recipients file changed before it was all read
│   └── JournalError                   the journal is missing, foreign, in use or inconsistent
│       ├── ChunkFencedError           a Redis chunk was reclaimed (agile_async.scaleout)
│       └── CampaignStoppedError       a Redis campaign was stopped fleet-wide (.code)
├── RedisUnavailableError              Redis unreachable past redis_timeout (.waited)
└── DeliveryCallbackError              the fake's delivery callback lost reports (testing)
```

Each error is importable from the public module that uses it (``agile_async``,
``agile_async.campaigns``, ``agile_async.scaleout``, ``agile_async.webhooks``); all are
defined here, except ``DeliveryCallbackError``, which belongs to ``agile_async.testing``
(it carries the fake's delivery attempts, and the SDK never imports its test helpers).

Every exception can be copied with :func:`copy.copy` (the batcher gives each waiting caller
its own copy), so constructors take the message positionally and the rest by keyword.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

import attrs

if TYPE_CHECKING:
    from ._raw_response import RawResponse

__all__ = [
    "APIError",
    "AgileError",
    "AuthenticationError",
    "BatcherStoppedError",
    "CampaignError",
    "CampaignStoppedError",
    "ChunkFencedError",
    "ClientClosedError",
    "ConfigurationError",
    "CreditThresholdError",
    "DestinationNotAllowedError",
    "GlobalIdLengthError",
    "IPNotAllowedError",
    "InputChangedError",
    "InsufficientCreditError",
    "InvalidDeliveryReportError",
    "InvalidDestinationError",
    "JournalError",
    "MessageWithdrawnError",
    "OutcomeUnknownError",
    "Problem",
    "QueueFullError",
    "RateLimitError",
    "RedisUnavailableError",
    "SenderNotAllowedError",
    "ServerError",
    "ServiceTimeoutError",
    "TemplateError",
    "TransportError",
    "UnknownAPIError",
    "ValidationError",
    "error_for_code",
]

#: How far an error reaches: the whole account, one request, or individual messages in it.
Scope = Literal["account", "request", "message"]


class AgileError(Exception):
    """Base class of every error raised by agile-async."""


@attrs.frozen
class Problem:
    """One thing wrong with a request: the field's path and what is wrong with it."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class ValidationError(AgileError, ValueError):
    """The request is invalid; raised before anything is sent.

    ``problems`` lists every problem found, not just the first, each naming its field
    (``messages[0].destinations[2]``) so a caller can fix them all at once.
    """

    problems: tuple[Problem, ...]

    def __init__(self, message: str | None = None, *, problems: Sequence[Problem] = ()) -> None:
        self.problems = tuple(problems)
        if message is None:
            count = len(self.problems)
            noun = "problem" if count == 1 else "problems"
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            message = f"{count} {noun} in the request:\n{lines}"
        super().__init__(message)

    @classmethod
    def single(cls, field: str, message: str) -> ValidationError:
        """Build the error for one problem."""
        return cls(problems=[Problem(field, message)])


class InvalidDeliveryReportError(ValidationError):
    """A delivery report (or a body of them) is not what the provider sends.

    ``problems`` names every bad field, with the report's index when the body was a list:
    ``[2].statusCode``. The webhook receiver answers such a body with 400.
    """

    def __init__(self, message: str | None = None, *, problems: Sequence[Problem] = ()) -> None:
        problems = tuple(problems)
        if message is None:
            noun = "problem" if len(problems) == 1 else "problems"
            lines = "\n".join(f"  - {problem}" for problem in problems)
            message = f"{len(problems)} {noun} in the delivery report(s):\n{lines}"
        super().__init__(message, problems=problems)


class ConfigurationError(AgileError, ValueError):
    """An argument or setting the SDK cannot work with, found before any work is done.

    The one error for a bad argument, anywhere: a setting (``RetryPolicy(attempts=0)``), a
    constructor's argument (``RedisLimiter(idle_ttl=0)``, an ``http://`` base URL, missing
    credentials) or a method's (``resend_unknown(silent_for=-1)``). It is a ``ValueError``,
    so code written for the standard library's convention still catches it; it is not a
    :class:`ValidationError`, whose handlers deal with bad *data* (a message, a row, a
    report): a mistake in the program must not be filed as one bad row.

    ``problems`` names each argument and what is wrong with it (``Problem("idle_ttl",
    "must be a number >= 1 s")``), as :class:`ValidationError` does for fields.
    """

    problems: tuple[Problem, ...]

    def __init__(self, message: str | None = None, *, problems: Sequence[Problem] = ()) -> None:
        self.problems = tuple(problems)
        if message is None:
            message = "; ".join(f"{problem.field} {problem.message}" for problem in self.problems)
        super().__init__(message)


class ClientClosedError(AgileError, RuntimeError):
    """A closed client (or batcher) was asked to do work."""


class BatcherStoppedError(ClientClosedError):
    """The batcher stopped before this message was sent: an internal error, or its rate
    limiter failed. Nothing was sent; the message can be sent again.

    Never the message's fault: a campaign keeps such messages pending, not failed.
    """


class QueueFullError(AgileError):
    """``submit_nowait()`` found the batcher's queue full (``submit()`` would wait)."""


class MessageWithdrawnError(AgileError):
    """The message was taken back before it was sent: its caller stopped waiting."""


class APIError(AgileError):
    """The provider answered with an error.

    Attributes:
        code: the provider's error code, or ``None`` when the body was not the provider's JSON
            (an HTML page from a proxy, say).
        status_code: the HTTP status.
        data: the provider's ``data`` (4XX: a mapping of field to problem, or a text) or
            ``message`` (5XX); for a foreign body, a short snippet of it.
        ids: the ids of the messages in the failed request.
        raw_response: the HTTP response of the failed attempt (status, response headers,
            timing; never the request's credentials), on calls made through
            ``client.with_raw_response``; ``None`` otherwise.
    """

    #: Which provider codes map to this class (used to build the code -> class table).
    codes: ClassVar[tuple[int, ...]] = ()
    #: What the error concerns; the batcher bisects only ``"message"`` errors.
    scope: ClassVar[Scope] = "request"

    code: int | None
    status_code: int
    data: Mapping[str, str] | str | None
    ids: tuple[str, ...]
    raw_response: RawResponse[None] | None = None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status_code: int = 0,
        data: Mapping[str, str] | str | None = None,
        ids: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status_code = status_code
        self.data = data
        self.ids = tuple(ids)

    @property
    def message(self) -> str:
        """The human-readable description."""
        return str(self.args[0])


class AuthenticationError(APIError):
    """Code 1: wrong credentials (the API key or username/password is not accepted)."""

    codes = (1, 11)
    scope = "account"


class InsufficientCreditError(APIError):
    """Code 2: the account's credit does not cover the request."""

    codes = (2,)
    scope = "account"


class CreditThresholdError(InsufficientCreditError):
    """The credit reported by the provider fell below the batcher's ``credit_threshold``."""


class DestinationNotAllowedError(APIError):
    """Code 3: a destination is not allowed for this account."""

    codes = (3,)
    scope = "message"


class UnknownAPIError(APIError):
    """Code 4: the provider's own "unknown error"."""

    codes = (4,)


class InvalidDestinationError(APIError):
    """Codes 5, 6, 7: a destination is too short, too long or not a number."""

    codes = (5, 6, 7)
    scope = "message"


class ServerError(APIError):
    """Code 8: a provider-side server error (retried)."""

    codes = (8,)


class ServiceTimeoutError(APIError):
    """Code 9: a provider-side service timed out (retried)."""

    codes = (9,)


class GlobalIdLengthError(APIError):
    """Code 10: the ``globalId`` has a length the provider refuses."""

    codes = (10,)


class SenderNotAllowedError(APIError):
    """Code 26 (and 18 on other provider pages): the sender alias is not allowed."""

    codes = (26, 18)
    scope = "message"


class IPNotAllowedError(APIError):
    """Code 100: this machine's IP address is not on the account's allow-list."""

    codes = (100,)
    scope = "account"


class RateLimitError(APIError):
    """HTTP 429: the account's rate limit was exceeded.

    ``retry_after`` is the delay the provider asked for, in seconds, when it said.
    """

    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status_code: int = 429,
        data: Mapping[str, str] | str | None = None,
        ids: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code, status_code=status_code, data=data, ids=ids)
        self.retry_after = retry_after


class TransportError(AgileError):
    """The request could not be delivered (connection refused, DNS, TLS, pool timeout).

    The provider never saw the request, so nothing was sent; it is safe to try again.
    ``ids`` names the messages of that request.
    """

    ids: tuple[str, ...]

    def __init__(self, message: str, *, ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ids = tuple(ids)


class OutcomeUnknownError(AgileError):
    """The request went out but no answer came back (read timeout, connection reset).

    The provider may or may not have accepted these messages. Resending them blindly may text
    someone twice; check delivery reports for ``ids`` (the SDK's ids come back as
    ``messageId``) or resend deliberately.
    """

    ids: tuple[str, ...]

    def __init__(self, message: str, *, ids: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.ids = tuple(ids)


class CampaignError(AgileError):
    """The campaign cannot go on as asked (its input, its journal, or how it was called)."""


class TemplateError(CampaignError, ValueError):
    """The body template is malformed, or a row lacks a variable it uses."""


class InputChangedError(CampaignError):
    """The recipients file differs from the one the campaign was created from, and the
    journal does not yet hold every row, so the campaign cannot be finished from it."""


class JournalError(CampaignError):
    """The journal is missing, belongs to another campaign, is in use, or disagrees with
    itself (a row was not in the state a transition needs)."""


class ChunkFencedError(JournalError):
    """This worker's chunk was reclaimed by another worker (it was silent past its lease):
    nothing more is sent from it, and the worker stops."""


class CampaignStoppedError(JournalError):
    """The campaign was stopped fleet-wide after an account error (credentials, credit,
    IP allow-list): no worker sends until an operator clears it.

    Attributes:
        code: the provider's code of the account error that stopped it.
    """

    code: int | None

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RedisUnavailableError(AgileError):
    """Redis stayed unreachable for longer than the tolerance (``redis_timeout``).

    Nothing was lost by it: rows not yet sent stay pending, rows in flight follow the
    unknown rule. Start the worker again once Redis is back.

    Attributes:
        waited: seconds since Redis was first seen unavailable.
    """

    waited: float

    def __init__(self, message: str, *, waited: float = 0.0) -> None:
        super().__init__(message)
        self.waited = waited


_ERROR_CLASSES: tuple[type[APIError], ...] = (
    AuthenticationError,
    InsufficientCreditError,
    DestinationNotAllowedError,
    UnknownAPIError,
    InvalidDestinationError,
    ServerError,
    ServiceTimeoutError,
    GlobalIdLengthError,
    SenderNotAllowedError,
    IPNotAllowedError,
)

_CLASS_BY_CODE: dict[int, type[APIError]] = {
    code: cls for cls in _ERROR_CLASSES for code in cls.codes
}


def error_for_code(code: int | None) -> type[APIError]:
    """The exception class for a provider code; :class:`APIError` for codes we do not know."""
    if code is None:
        return APIError
    return _CLASS_BY_CODE.get(code, APIError)
