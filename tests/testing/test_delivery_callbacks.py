"""The fake's delivery callbacks get DeliveryReport objects, and a failing one is never silent.

Issue 12, point 3: ``FakeAgileServer(delivery_callback=tracker.on_report)`` used to hand the
callback raw dicts, the ``AttributeError`` only showed in ``fake.delivery_log``, and a
``tracker.wait(id, timeout=600)`` hung for the whole ten minutes.
"""

from __future__ import annotations

import logging
import socket
import textwrap
from decimal import Decimal
from typing import Any

import anyio
import pytest

from agile_async import DeliveryReport, DeliveryStatus, DeliveryTracker, Message
from agile_async.testing import DeliveryCallbackError, DeliveryScript, FakeAgileServer
from tests._docs import doc_block
from tests._waiting import eventually

pytestmark = pytest.mark.anyio

LONG_BODY = "x" * 200  # GSM-7: 2 parts
#: A guard so a regression fails the test instead of hanging it (not a performance bound).
GUARD = 30


def sms(destination: str = "+393471234567", body: str = "Hi") -> Message:
    return Message(destinations=destination, sender="MyApp", body=body)


def callback_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r for r in caplog.records if r.name == "agile_async.testing" and r.levelno == logging.ERROR
    ]


# -- report objects: the SDK's own callbacks plug in as they are ------------------------------


@pytest.mark.parametrize("method", ["feed", "on_report"])
async def test_a_tracker_plugs_into_the_fake_directly(method: str) -> None:
    """The README's pairing: the fake posts, the tracker folds the parts, wait() returns."""
    tracker = DeliveryTracker()
    fake = FakeAgileServer(delivery_callback=getattr(tracker, method))
    with anyio.fail_after(GUARD):
        async with fake.delivering(), fake.client() as client:
            result = await client.send(sms(body=LONG_BODY))
            tracker.track(result)
            outcome = await tracker.wait(result.ids[0], timeout=GUARD)
    assert outcome.status is DeliveryStatus.DELIVERED
    assert (outcome.parts, outcome.parts_delivered) == (2, 2)
    assert outcome.cost == Decimal("0.10")
    assert fake.callback_errors == ()
    assert fake.delivery_statistics().callback_errors == 0


async def test_deliver_to_a_callback_gives_report_objects_and_raw_gives_dicts() -> None:
    objects: list[DeliveryReport] = []
    dicts: list[dict[str, Any]] = []
    fake = FakeAgileServer(delivery_callback=objects.append)
    fake.deliver_to(dicts.append, raw=True)
    fake.delivery = DeliveryScript(destination_format="digits")
    async with fake.client() as client:
        await client.send(sms())
    await fake.flush_reports()
    [report], [raw] = objects, dicts
    assert isinstance(report, DeliveryReport)
    assert report.message_id == raw["messageId"]
    assert (raw["destination"], report.destination) == ("393471234567", "+393471234567")
    assert report.status is DeliveryStatus.DELIVERED
    assert report.price == Decimal("0.05")
    assert report.done_date.tzinfo is not None


async def test_raw_delivery_callback_is_named_as_such() -> None:
    dicts: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=dicts.append)
    async with fake.client() as client:
        await client.send(sms())
    await fake.flush_reports()
    assert [type(d) for d in dicts] == [dict]
    with pytest.raises(ValueError, match="raw=True is for callbacks"):
        fake.deliver_to("http://127.0.0.1:9/hook", raw=True)  # type: ignore[call-overload]


# -- a failing callback is loud --------------------------------------------------------------


async def test_a_lost_report_fails_the_delivering_block_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's hang: a callback written for dicts, a tracker waiting 600 s. Now the
    block is cancelled as soon as the report is lost, with the callback's error as cause."""
    caplog.set_level(logging.ERROR, logger="agile_async")
    tracker = DeliveryTracker()

    def on_report(report: Any) -> None:
        tracker.feed(report["messageId"])  # a dict-era callback: the report is an object now

    fake = FakeAgileServer(delivery_callback=on_report, delivery=DeliveryScript(backoff=0.01))
    sent: list[str] = []
    waited_out = False

    async def the_test() -> None:
        nonlocal waited_out
        async with fake.delivering(), fake.client() as client:
            result = await client.send(sms())
            sent.extend(result.ids)
            tracker.track(result)
            await tracker.wait(result.ids[0], timeout=600)
            waited_out = True

    with anyio.fail_after(GUARD), pytest.raises(DeliveryCallbackError) as caught:
        await the_test()
    assert not waited_out  # cancelled, well before its 600 s (the guard would fire first)

    error = caught.value
    assert isinstance(error.__cause__, TypeError)
    assert "not subscriptable" in str(error.__cause__)
    assert "1 delivery report(s) lost" in str(error)
    assert "on_report" in str(error)
    assert [a.attempt for a in error.attempts] == [3]
    # Logged: every failing attempt, with its traceback.
    records = callback_records(caplog)
    assert len(records) == 3
    assert all(r.exc_info and r.exc_info[1] is not None for r in records)
    assert "will retry" in records[0].getMessage()
    assert "the report is lost" in records[-1].getMessage()
    assert sent[0] in records[-1].getMessage()
    # Counted, and kept with the exceptions for the test.
    stats = fake.delivery_statistics()
    assert (stats.callback_errors, stats.failed_attempts, stats.gave_up) == (3, 3, 1)
    assert [type(a.exception) for a in fake.callback_errors] == [TypeError] * 3
    assert [a.attempt for a in fake.callback_errors] == [1, 2, 3]
    assert fake.callback_errors[-1].lost


async def test_flush_reports_raises_each_lost_report_once() -> None:
    async def on_report(report: DeliveryReport) -> None:
        raise RuntimeError(f"database down for {report.message_id}")

    fake = FakeAgileServer(delivery_callback=on_report, delivery=DeliveryScript(attempts=2))
    async with fake.client() as client:
        result = await client.send(sms("+393471234567"))
        result2 = await client.send(sms("+393471234568"))
    errors: list[DeliveryCallbackError] = []
    with anyio.fail_after(GUARD):
        while True:  # a raise cancels the flush; the next one posts (and raises) the rest
            try:
                await fake.flush_reports()
            except DeliveryCallbackError as error:
                errors.append(error)
            else:
                break
    assert all(isinstance(e.__cause__, RuntimeError) for e in errors)
    assert all("database down" in str(e.__cause__) for e in errors)
    raised = [a.message_id for e in errors for a in e.attempts]
    assert sorted(raised) == sorted([*result.ids, *result2.ids])  # each loss raised once
    assert fake.delivery_statistics().gave_up == 2
    assert all(a.lost for a in fake.callback_errors if a.attempt == 2)


async def test_a_callback_that_recovers_is_logged_but_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="agile_async")
    got: list[DeliveryReport] = []

    def flaky(report: DeliveryReport) -> None:
        if not fake.callback_errors:
            raise ConnectionError("blip")
        got.append(report)

    fake = FakeAgileServer(delivery_callback=flaky)
    async with fake.client() as client:
        await client.send(sms())
    await fake.flush_reports()
    assert len(got) == 1
    [record] = callback_records(caplog)
    assert "will retry" in record.getMessage()
    assert "ConnectionError: blip" in record.getMessage()
    stats = fake.delivery_statistics()
    assert (stats.delivered, stats.callback_errors, stats.gave_up) == (1, 1, 0)


async def test_an_overrunning_callback_is_a_callback_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="agile_async")

    async def stuck(report: DeliveryReport) -> None:
        await anyio.sleep_forever()

    fake = FakeAgileServer(
        delivery_callback=stuck, delivery=DeliveryScript(timeout=0.05, attempts=1)
    )
    async with fake.client() as client:
        await client.send(sms())
    with anyio.fail_after(GUARD), pytest.raises(DeliveryCallbackError, match="timed out"):
        await fake.flush_reports()
    [attempt] = fake.callback_errors
    assert isinstance(attempt.exception, TimeoutError)
    assert len(callback_records(caplog)) == 1


async def test_strict_off_logs_and_counts_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="agile_async")

    def broken(report: DeliveryReport) -> None:
        raise ValueError("on purpose")

    fake = FakeAgileServer(delivery_callback=broken, strict_callbacks=False)
    async with fake.delivering(), fake.client() as client:
        await client.send(sms())
    assert fake.delivery_statistics().callback_errors == 3
    assert len(callback_records(caplog)) == 3
    # Per call, too: a strict fake can let one block through.
    fake.strict_callbacks = True
    async with fake.client() as client:
        await client.send(sms())
    await fake.flush_reports(strict_callbacks=False)
    assert fake.delivery_statistics().gave_up == 2


async def test_a_report_lost_on_the_tls_thread_is_raised_by_the_next_flush(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """serve_tls's courier has nobody to raise to: it logs and keeps; the test's next
    flush_reports() raises."""
    pytest.importorskip("uvicorn")
    pytest.importorskip("trustme")
    caplog.set_level(logging.ERROR, logger="agile_async")

    def broken(report: DeliveryReport) -> None:
        raise KeyError("oops")

    fake = FakeAgileServer(delivery_callback=broken, delivery=DeliveryScript(backoff=0.01))
    with anyio.fail_after(GUARD):
        async with fake.serve_tls() as server, server.client() as client:
            await client.send(sms())
            # The count changes on the server's thread: nothing here to wait on but the count.
            await eventually(lambda: fake.delivery_statistics().gave_up >= 1)
        assert len(callback_records(caplog)) == 3
        with pytest.raises(DeliveryCallbackError) as caught:
            await fake.flush_reports()
    assert isinstance(caught.value.__cause__, KeyError)


PAGE = "docs/guides/testing.md"

# -- the README's example ---------------------------------------------------------------------


async def test_the_readme_example_with_a_tracker_runs() -> None:
    """The README block marked ``fake-delivery``, run as written (its webhook URL pointed at a
    closed loopback port, so nothing outside the test is posted to)."""
    block = doc_block(PAGE, "fake-delivery")
    documented = "http://127.0.0.1:8000/agile/reports"
    assert block.count(documented) == 1
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        block = block.replace(documented, f"http://127.0.0.1:{closed.getsockname()[1]}/hook")
    source = "async def example():\n" + textwrap.indent(block, "    ") + "    return locals()\n"
    namespace: dict[str, Any] = {}
    exec(compile(source, f"{PAGE}[fake-delivery]", "exec"), namespace)
    with anyio.fail_after(GUARD):
        names = await namespace["example"]()
    outcome, fake = names["outcome"], names["fake"]
    assert outcome.status is DeliveryStatus.DELIVERED
    assert fake.callback_errors == ()
    assert {a.ok for a in fake.delivery_log if isinstance(a.target, str)} == {False}
