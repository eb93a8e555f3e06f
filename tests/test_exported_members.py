"""The public names are a contract: adding one is a decision, removing one is a break."""

from __future__ import annotations

import agile_async

EXPECTED = {
    "APIError",
    "AgileClient",
    "AgileError",
    "AuthenticationError",
    "BASE_URLS",
    "BatchSettings",
    "Batcher",
    "BatcherStatistics",
    "BatcherStoppedError",
    "Cost",
    "CreditCheck",
    "CreditThresholdError",
    "MessageWithdrawnError",
    "QueueFullError",
    "RateLimit",
    "RateLimiter",
    "Receipt",
    "RequestOutcome",
    "RequestTotals",
    "Ticket",
    "TicketState",
    "TokenBucket",
    "ClientClosedError",
    "ClientState",
    "ConfigurationError",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "DeliveryOutcome",
    "DeliveryReport",
    "DeliveryStatus",
    "DeliverySummary",
    "DeliveryTracker",
    "DestinationNotAllowedError",
    "GlobalIdLengthError",
    "IPNotAllowedError",
    "InsufficientCreditError",
    "InvalidDestinationError",
    "Message",
    "OutcomeUnknownError",
    "Problem",
    "RateLimitError",
    "RetryPolicy",
    "SendOptions",
    "SendResult",
    "SenderNotAllowedError",
    "ServerError",
    "ServiceTimeoutError",
    "TransportError",
    "UnknownAPIError",
    "ValidationError",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(agile_async.__all__) == EXPECTED


def test_all_is_sorted_and_unique() -> None:
    assert len(agile_async.__all__) == len(set(agile_async.__all__))


def test_every_public_class_claims_the_package() -> None:
    for name in agile_async.__all__:
        obj = getattr(agile_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "agile_async", name


def test_the_error_tree() -> None:
    assert issubclass(agile_async.ValidationError, ValueError)
    assert issubclass(agile_async.ClientClosedError, RuntimeError)
    for name in agile_async.__all__:
        obj = getattr(agile_async, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, agile_async.AgileError), name


def test_the_blocking_api_is_pinned() -> None:
    import agile_async.sync

    assert agile_async.sync.__all__ == ["AgileClient", "Batcher", "Ticket"]
    for name in agile_async.sync.__all__:
        assert getattr(agile_async.sync, name).__module__ == "agile_async.sync", name


def test_the_pytest_plugin_is_pinned() -> None:
    from agile_async.testing import pytest_plugin

    assert set(pytest_plugin.__all__) == {
        "ALLOW_REAL_PROVIDER",
        "RealProviderError",
        "agile_client",
        "agile_fake",
        "agile_sync_client",
        "agile_tls_client",
        "agile_tls_server",
    }
    assert pytest_plugin.RealProviderError.__module__ == pytest_plugin.__name__
    assert issubclass(pytest_plugin.RealProviderError, AssertionError)
