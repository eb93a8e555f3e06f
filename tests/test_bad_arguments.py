"""A bad argument is a ConfigurationError, everywhere: a ValueError naming the argument and
what is wrong with it, never a bare ValueError or TypeError in one place and a
ValidationError (which handlers of bad *data* catch) in another."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agile_async import (
    AgileClient,
    BatchSettings,
    ConfigurationError,
    DeliveryStatus,
    DeliveryTracker,
    Message,
    RateLimit,
    RetryPolicy,
    ValidationError,
)
from agile_async.campaigns import Campaign, DeliveryState, SQLiteJournal
from agile_async.scaleout import RedisCampaign, RedisLimiter, account_key
from agile_async.segments import (
    PriceList,
    count_hex_segments,
    count_parts,
    count_segments,
    estimate_cost,
    iter_estimates,
    part_capacity,
    split_segments,
)
from agile_async.testing import DeliveryScript, FakeAgileServer, Fault
from agile_async.webhooks import DeliveryReportReceiver

pytestmark = pytest.mark.anyio


def coredis_client() -> Any:
    """A coredis client that is never entered: enough to construct with."""
    coredis = pytest.importorskip("coredis")
    return coredis.Redis.from_url("redis://127.0.0.1:1")


def on_report(_: object) -> None:
    pass


ACCOUNT = "0123456789abcdef"
TOKEN = "x" * 32

CASES: list[tuple[str, Callable[[], object], str]] = [
    # The two the issue names: one raised ValueError (a ValidationError), one this.
    ("retry-attempts", lambda: RetryPolicy(attempts=0), "attempts"),
    (
        "limiter-idle-ttl",
        lambda: RedisLimiter(coredis_client(), RateLimit(rate=1), account=ACCOUNT, idle_ttl=0),
        "idle_ttl",
    ),
    ("api-key", lambda: AgileClient(api_key="   "), "api_key"),
    ("base-url", lambda: AgileClient(api_key="k", base_url="http://example.com"), "base_url"),
    ("account", lambda: AgileClient(api_key="k", account="old"), "account"),  # type: ignore[arg-type]
    ("account-key", lambda: account_key("https://example.com", ""), "credential"),
    ("retry-type", lambda: RetryPolicy(attempts="3"), "attempts"),  # type: ignore[arg-type]
    ("batch-latency", lambda: BatchSettings(max_latency=float("nan")), "max_latency"),
    ("batch-options", lambda: BatchSettings(options=None), "options"),  # type: ignore[arg-type]
    ("rate", lambda: RateLimit(rate=0), "rate"),
    (
        "limiter-none",
        lambda: RedisLimiter(coredis_client(), [], account=ACCOUNT),
        "limit",
    ),
    (
        "limiter-max-wait",
        lambda: RedisLimiter(coredis_client(), RateLimit(rate=1), account=ACCOUNT, max_wait=-1),
        "max_wait",
    ),
    ("campaign-name", lambda: RedisCampaign(coredis_client(), "a b"), "name"),
    ("chunk-size", lambda: RedisCampaign(coredis_client(), "c", chunk_size=0), "chunk_size"),
    ("lease", lambda: RedisCampaign(coredis_client(), "c", lease=0), "lease"),
    (
        "takeovers",
        lambda: RedisCampaign(coredis_client(), "c", max_chunk_takeovers=-1),
        "max_chunk_takeovers",
    ),
    (
        "redis-timeout",
        lambda: RedisCampaign(coredis_client(), "c", redis_timeout=float("nan")),
        "redis_timeout",
    ),
    ("receiver-callable", lambda: DeliveryReportReceiver("no"), "on_report"),  # type: ignore[arg-type]
    (
        "receiver-body",
        lambda: DeliveryReportReceiver(on_report, max_body_bytes=0),
        "max_body_bytes",
    ),
    ("receiver-dedupe", lambda: DeliveryReportReceiver(on_report, dedupe=-1), "dedupe"),
    ("receiver-json", lambda: DeliveryReportReceiver(on_report, require_json="no"), "require_json"),  # type: ignore[arg-type]
    (
        "receiver-timeout",
        lambda: DeliveryReportReceiver(on_report, callback_timeout=0),
        "callback_timeout",
    ),
    (
        "receiver-allow",
        lambda: DeliveryReportReceiver(on_report, allow_from=[42]),  # type: ignore[list-item]
        "allow_from",
    ),
    ("tracker", lambda: DeliveryTracker(max_finished=-1), "max_finished"),
    # Callbacks are checked where they are given, not called (and failing) inside a send.
    ("tracker-on-final", lambda: DeliveryTracker(on_final=5), "on_final"),  # type: ignore[arg-type]
    ("retry-sleep", lambda: RetryPolicy(sleep=None), "sleep"),  # type: ignore[arg-type]
    (
        "batcher-on-result",
        lambda: AgileClient(api_key="k").batcher(on_result="log"),  # type: ignore[arg-type]
        "on_result",
    ),
    (
        "batcher-before-send",
        lambda: AgileClient(api_key="k").batcher(before_send=1),  # type: ignore[arg-type]
        "before_send",
    ),
    (
        "batcher-limiter",
        lambda: AgileClient(api_key="k").batcher(limiter=RateLimit(rate=5)),  # type: ignore[arg-type]
        "limiter",
    ),
    ("client-timeout", lambda: AgileClient(api_key="k", timeout=0), "timeout"),
    ("batcher-settings", lambda: AgileClient(api_key="k").batcher(5), "settings"),  # type: ignore[arg-type]
    ("batcher-typo", lambda: AgileClient(api_key="k").batcher(max_mesages=5), "max_mesages"),
    ("client-retry", lambda: AgileClient(api_key="k", retry=3), "retry"),  # type: ignore[arg-type]
    (
        "tracker-ids",
        lambda: DeliveryTracker().track(
            Message(destinations="+393471234567", sender="Shop", body="hi")
        ),
        "message.ids",
    ),
    ("price-float", lambda: PriceList({"39": 0.05}), "prices['39']"),  # type: ignore[dict-item]
    ("price-prefix", lambda: PriceList({"3x": "0.05"}), "prices"),
    ("price-default", lambda: PriceList({}, default="lots"), "default"),
    (
        "delivery-part",
        lambda: DeliveryState().apply(DeliveryStatus.DELIVERED, part=0, parts=1),
        "part",
    ),
    ("fake-times", lambda: FakeAgileServer().inject(Fault.server_error(), times=0), "times"),
    ("fake-status", lambda: Fault.server_error(status=404), "status"),
    ("fake-hold", lambda: Fault.hold(None), "hold"),  # type: ignore[arg-type]
    ("fake-target", lambda: FakeAgileServer().deliver_to(42), "target"),  # type: ignore[call-overload]
    ("fake-pending", lambda: FakeAgileServer(max_pending_reports=0), "max_pending_reports"),
    ("fake-strict", lambda: FakeAgileServer(strict_callbacks="no"), "strict_callbacks"),  # type: ignore[arg-type]
    # Money is Decimal: Decimal(0.045) is 0.04499999999999999833..., and the fake's credit
    # and prices took floats that way.
    ("fake-credit", lambda: FakeAgileServer(credit=100.1), "credit"),  # type: ignore[arg-type]
    ("fake-price", lambda: FakeAgileServer(price_per_part=0.045), "price_per_part"),  # type: ignore[arg-type]
    ("fake-prices", lambda: FakeAgileServer(prices={"39": 0.05}), "prices['39']"),  # type: ignore[dict-item]
    ("fake-credit-true", lambda: FakeAgileServer(credit=True), "credit"),
    ("fake-credit-set", lambda: setattr(FakeAgileServer(), "credit", 5.5), "credit"),
    (
        "fake-credentials",
        lambda: FakeAgileServer(simulation_credentials=1),  # type: ignore[arg-type]
        "simulation_credentials",
    ),
    ("script-attempts", lambda: DeliveryScript(attempts=0), "attempts"),
    ("script-probability", lambda: DeliveryScript(duplicates=1.5), "duplicates"),
    ("script-parts", lambda: DeliveryScript(independent_parts="no"), "independent_parts"),  # type: ignore[arg-type]
    ("script-price", lambda: DeliveryScript(include_price=0), "include_price"),  # type: ignore[arg-type]
    ("fake-after", lambda: Fault.delay(0.1, after_processing="yes"), "after_processing"),  # type: ignore[arg-type]
    ("fake-raw", lambda: FakeAgileServer().deliver_to(on_report, raw="no"), "raw"),  # type: ignore[call-overload]
    # Counting options are True or False: a "false" read from a file was counted as true.
    ("parts-unicode", lambda: count_parts("Caffè", unicode="false"), "unicode"),  # type: ignore[arg-type]
    ("parts-smart", lambda: count_parts("hi", smart_encoding=1), "smart_encoding"),  # type: ignore[arg-type]
    ("segments-unicode", lambda: count_segments("hi", unicode=0), "unicode"),  # type: ignore[arg-type]
    (
        "segments-concatenated",
        lambda: count_segments("hi", concatenated="no"),  # type: ignore[arg-type]
        "concatenated",
    ),
    ("split-smart", lambda: split_segments("hi", smart_encoding="yes"), "smart_encoding"),  # type: ignore[arg-type]
    ("hex-concatenated", lambda: count_hex_segments("00", concatenated=None), "concatenated"),  # type: ignore[arg-type]
    ("capacity-multipart", lambda: part_capacity("GSM-7", multipart="1"), "multipart"),  # type: ignore[arg-type]
    (
        "estimate-unicode",
        lambda: estimate_cost(PriceList({"39": "0.05"}), [], unicode="no"),  # type: ignore[arg-type]
        "unicode",
    ),
    (
        "estimate-keep",
        lambda: estimate_cost(PriceList({"39": "0.05"}), [], keep_messages="yes"),  # type: ignore[arg-type]
        "keep_messages",
    ),
    (
        "estimates-smart",
        lambda: iter_estimates(PriceList({"39": "0.05"}), [], smart_encoding=0),  # type: ignore[arg-type]
        "smart_encoding",
    ),
]


@pytest.mark.parametrize(("build", "argument"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_argument_is_a_configuration_error_naming_it(
    build: Callable[[], object], argument: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()
    error = caught.value
    assert isinstance(error, ValueError)
    assert not isinstance(error, ValidationError)
    assert [problem.field for problem in error.problems] == [argument]
    assert str(error).startswith(argument)


async def test_silent_for_is_checked_by_every_journal_and_the_campaign(tmp_path: Path) -> None:
    path = tmp_path / "c.journal"
    async with await SQLiteJournal.open(path, create=True) as journal:
        with pytest.raises(ConfigurationError) as caught:
            await journal.recover(resend_unknown=True, silent_for=timedelta(seconds=-1))
        assert [problem.field for problem in caught.value.problems] == ["silent_for"]
    source = tmp_path / "r.csv"
    source.write_text("destination\n+393471234567\n", encoding="utf-8")
    created = await Campaign.create(tmp_path / "d.journal", source, body="Hi", sender="Shop")
    await created.aclose()
    for kwargs in ({"silent_for": -1, "resend_unknown": True}, {"silent_for": 5}):
        with pytest.raises(ConfigurationError) as caught:
            await Campaign.open(tmp_path / "d.journal", **kwargs)  # type: ignore[arg-type]
        assert [problem.field for problem in caught.value.problems] == ["silent_for"]


async def test_a_campaigns_flags_are_true_or_false_never_read_as_truthy(tmp_path: Path) -> None:
    # resend_unknown="false" (from a configuration file) was true: unknown messages, which
    # may have been sent, went out again.
    source = tmp_path / "r.csv"
    source.write_text("destination\n+393471234567\n", encoding="utf-8")
    created = await Campaign.create(tmp_path / "d.journal", source, body="Hi", sender="Shop")
    await created.aclose()
    no: Any = "no"  # what a configuration file gives
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("resend_unknown", lambda: Campaign.open(tmp_path / "d.journal", resend_unknown=no)),
        ("read_only", lambda: Campaign.open(tmp_path / "d.journal", read_only=no)),
        (
            "resend_unknown",
            lambda: Campaign.create(
                tmp_path / "e.journal", source, body="Hi", sender="Shop", resend_unknown=no
            ),
        ),
        (
            "exist_ok",
            lambda: Campaign.create(
                tmp_path / "d.journal", source, body="Hi", sender="Shop", exist_ok=no
            ),
        ),
        ("create", lambda: SQLiteJournal.open(tmp_path / "f.journal", create=no)),
        ("exclusive", lambda: SQLiteJournal.open(tmp_path / "d.journal", exclusive=no)),
    ]
    for argument, call in calls:
        with pytest.raises(ConfigurationError) as caught:
            await call()
        assert [problem.field for problem in caught.value.problems] == [argument]
    assert not (tmp_path / "e.journal").exists()
    assert not (tmp_path / "f.journal").exists()
    async with await SQLiteJournal.open(tmp_path / "d.journal") as journal:
        with pytest.raises(ConfigurationError) as caught:
            await journal.recover(resend_unknown=no)
        assert [problem.field for problem in caught.value.problems] == ["resend_unknown"]


async def test_the_fakes_report_flags_are_true_or_false() -> None:
    fake = FakeAgileServer()
    no: Any = "no"
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("honour_delays", lambda: fake.flush_reports(honour_delays=no)),
        ("strict_callbacks", lambda: fake.flush_reports(strict_callbacks=no)),
    ]
    for argument, call in calls:
        with pytest.raises(ConfigurationError) as caught:
            await call()
        assert [problem.field for problem in caught.value.problems] == [argument]
    flags: list[tuple[str, dict[str, Any]]] = [
        ("drain", {"drain": no}),
        ("strict_callbacks", {"strict_callbacks": 0}),
    ]
    for argument, kwargs in flags:
        with pytest.raises(ConfigurationError) as caught:
            async with fake.delivering(**kwargs):
                pass
        assert [problem.field for problem in caught.value.problems] == [argument]


def test_a_secret_argument_is_named_but_never_shown() -> None:
    secret = "s3cret token"  # not URL-safe
    with pytest.raises(ConfigurationError) as caught:
        DeliveryReportReceiver(on_report, path_token=secret)
    assert caught.value.problems[0].field == "path_token"
    assert "s3cret" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        DeliveryReportReceiver(on_report, path_token=TOKEN, basic_auth=("us:er", "pw-secret"))
    assert caught.value.problems[0].field == "basic_auth"
    assert "pw-secret" not in str(caught.value)


def test_the_error_can_be_built_from_problems_alone() -> None:
    """Like ValidationError: the message lists the problems when none is given."""
    from agile_async import Problem

    error = ConfigurationError(problems=[Problem("lease", "must be > 0 s")])
    assert str(error) == "lease must be > 0 s"
