"""The HTTP side of one call, for those who ask: ``client.with_raw_response.send(...)``.

Why a separate facet rather than fields on :class:`~agile_async.SendResult`: most callers
never look at headers, and a result that carried them would keep every response's headers
alive in every receipt, journal and batch outcome. Asking costs one small object per call;
not asking costs nothing (the plain methods record nothing).

What it holds, and what it never holds: the *response's* status, headers, body and timing,
and the request's ``globalId``. Never the request (its ``X-Api-Key`` or ``Authorization``
header is the account's credential) and never the :class:`httpx.Response` itself, which
points back to that request.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Generic, TypeVar

import httpx

from ._exceptions import APIError

__all__ = ["RawResponse", "ResponseRecorder"]

T = TypeVar("T")


class RawResponse(Generic[T]):
    """The HTTP response behind a call's result: status, headers, timing and ``globalId``.

    ```python
    raw = await client.with_raw_response.send(message)
    print(raw.status_code, raw.headers.get("date"), raw.elapsed, raw.global_id)
    result = raw.parse()  # the SendResult that client.send(message) would have returned
    ```

    Attributes:
        status_code: the HTTP status of the response.
        headers: the response's headers (never the request's: no credential is here).
        elapsed: from sending the request to the end of the response, for the attempt that
            answered (the last one, when the call was retried).
        global_id: the request's ``globalId`` (a send's; ``None`` for a credit request).
    """

    __slots__ = ("_content", "_result", "elapsed", "global_id", "headers", "status_code")

    def __init__(
        self,
        *,
        status_code: int,
        headers: httpx.Headers,
        elapsed: timedelta,
        global_id: str | None,
        content: bytes,
        result: T,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.elapsed = elapsed
        self.global_id = global_id
        self._content = content
        self._result = result

    @property
    def content(self) -> bytes:
        """The response body as received (the provider's JSON: no secret in it)."""
        return self._content

    def parse(self) -> T:
        """The call's result, as the plain method returns it.

        The SDK parsed the body already (it must, to know what the provider accepted), so
        this returns that result: no second parse. On an error's raw response
        (:attr:`APIError.raw_response <agile_async.APIError.raw_response>`) it is ``None``:
        the error is the outcome.
        """
        return self._result

    def __repr__(self) -> str:
        seconds = self.elapsed.total_seconds()
        return (
            f"<RawResponse HTTP {self.status_code} globalId={self.global_id!r} "
            f"elapsed={seconds:.3f}s>"
        )


class ResponseRecorder:
    """Keeps the latest HTTP response of one call, to build its :class:`RawResponse`.

    The client calls it with each attempt's response; only the last one counts (a retried
    call answers with its final attempt). Building the :class:`RawResponse` lets go of the
    :class:`httpx.Response` (and of its request, with the credentials), so not even a
    traceback's frames keep it.
    """

    __slots__ = ("global_id", "last")

    def __init__(self) -> None:
        self.last: httpx.Response | None = None
        #: The request's ``globalId``, once the send has chosen it.
        self.global_id: str | None = None

    def __call__(self, response: httpx.Response) -> None:
        self.last = response

    def raw(self, result: T) -> RawResponse[T]:
        """The raw response of the call that returned ``result``."""
        response, self.last = self.last, None  # let go of the request (its credentials)
        assert response is not None, "a call returned without a response"
        try:
            elapsed = response.elapsed
        except RuntimeError:  # a transport that never closed its response
            elapsed = timedelta(0)
        return RawResponse(
            status_code=response.status_code,
            headers=httpx.Headers(response.headers),
            elapsed=elapsed,
            global_id=self.global_id,
            content=response.content,
            result=result,
        )

    def attach(self, error: APIError) -> None:
        """Give ``error`` (the provider's answer to the last attempt) its raw response."""
        if self.last is not None:
            error.raw_response = self.raw(None)
