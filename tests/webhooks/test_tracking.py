"""DeliveryTracker: parts folded into one outcome per message, waits, counts, bounded memory."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import anyio
import pytest

from agile_async import (
    ConfigurationError,
    DeliveryOutcome,
    DeliveryReport,
    DeliveryStatus,
    DeliveryTracker,
    Message,
    SendResult,
)

S = DeliveryStatus
T0 = datetime(2026, 4, 8, 14, 35, 22, tzinfo=timezone(timedelta(hours=2)))


def report(
    message_id: str,
    status: DeliveryStatus = S.DELIVERED,
    *,
    part: int = 1,
    parts: int = 1,
    price: str | None = "0.005",
    seconds: int = 0,
    destination: str = "+393471234567",
) -> DeliveryReport:
    return DeliveryReport(
        message_id=message_id,
        destination=destination,
        status=status,
        description=status.name.title(),
        done_date=T0 + timedelta(seconds=seconds),
        concat_total=parts,
        concat_progressive=part,
        price=None if price is None else Decimal(price),
    )


def test_a_single_part_message_is_delivered() -> None:
    tracker = DeliveryTracker()
    tracker.track("m1")
    outcome = tracker.feed(report("m1"))
    assert outcome is not None
    assert outcome.delivered
    assert outcome.final
    assert outcome.cost == Decimal("0.005")
    assert tracker.summary().delivered == 1
    assert tracker.summary().pending == 0


def test_delivered_only_when_every_part_is() -> None:
    tracker = DeliveryTracker()
    tracker.track("m")
    assert tracker.feed(report("m", part=2, parts=3)) is None
    assert tracker.feed(report("m", S.ACCEPTED, part=1, parts=3)) is None
    assert tracker.feed(report("m", part=1, parts=3)) is None
    outcome = tracker.outcome("m")
    assert outcome is not None
    assert (outcome.status, outcome.parts_delivered, outcome.parts) == (S.ACCEPTED, 2, 3)
    final = tracker.feed(report("m", part=3, parts=3, seconds=5))
    assert final is not None
    assert final.delivered
    assert final.done_date == T0 + timedelta(seconds=5)
    assert final.cost == Decimal("0.015")  # the accepted-then-delivered part is paid once


@pytest.mark.parametrize("failure", [S.REJECTED, S.EXPIRED, S.DELETED, S.UNDELIVERABLE])
def test_any_failed_part_fails_the_message_and_keeps_its_kind(failure: DeliveryStatus) -> None:
    tracker = DeliveryTracker()
    tracker.track("m")
    tracker.feed(report("m", part=1, parts=2))
    outcome = tracker.feed(report("m", failure, part=2, parts=2))
    assert outcome is not None
    assert outcome.status is failure
    assert not outcome.delivered
    summary = tracker.summary()
    assert (summary.failed, summary.delivered, summary.by_status) == (1, 0, {failure: 1})


def test_duplicates_are_recognised() -> None:
    tracker = DeliveryTracker()
    tracker.track("m")
    tracker.feed(report("m", part=1, parts=2))
    tracker.feed(report("m", part=1, parts=2))
    summary = tracker.summary()
    assert (summary.reports, summary.duplicates, summary.cost) == (2, 1, Decimal("0.005"))
    assert summary.pending == 1


def test_reports_before_tracking_are_applied_when_tracked() -> None:
    tracker = DeliveryTracker()
    tracker.feed(report("early", S.EXPIRED))
    assert tracker.summary().untracked == 1
    assert tracker.summary().tracked == 0
    tracker.track("early")
    summary = tracker.summary()
    assert (summary.tracked, summary.untracked, summary.failed) == (1, 0, 1)
    assert summary.by_status == {S.EXPIRED: 1}


def test_tracks_results_and_messages_with_ids() -> None:
    message = Message(
        destinations=["393471234567", "+393471234568"], sender="A", body="x", ids=["a", "b"]
    )
    result = SendResult(
        global_id="g",
        processed_messages=1,
        processed_sms_parts=2,
        credit=Decimal("1"),
        messages=(message,),
    )
    tracker = DeliveryTracker()
    tracker.track(result, ["c", "d"])
    assert tracker.summary().tracked == 4
    outcome = tracker.outcome("a")
    assert outcome is not None
    assert outcome.destination == "+393471234567"
    with pytest.raises(ValueError, match="without ids"):
        tracker.track(Message(destinations="+393471234567", sender="A", body="x"))


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ((None,), "items[0]"),
        ((["a", 7],), "items[0][...]"),
        (("a", {"b": 1}), "items[1]"),
        ((["a", Message(destinations="+393471234567", sender="A", body="x")],), "message.ids"),
    ],
    ids=["None", "an int among ids", "a mapping", "a message without ids"],
)
def test_what_cannot_be_tracked_is_named_and_nothing_is_tracked(
    items: tuple[object, ...], field: str
) -> None:
    """A bad item raised a bare TypeError or AttributeError, after tracking the ones
    before it; now it is named, and the call tracks nothing."""
    tracker = DeliveryTracker()
    with pytest.raises(ConfigurationError) as caught:
        tracker.track(*items)  # type: ignore[arg-type]
    assert caught.value.problems[0].field == field
    assert tracker.summary().tracked == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("message_id", "wait_for", "expected"),
    [
        ("a", -1, "timeout must be >= 0 s, got -1"),
        ("a", "5", "timeout must be a number >= 0 s, got '5'"),
        (5, None, "message_id must be a message id"),
        ("", None, "message_id must be a message id"),
    ],
)
async def test_wait_names_a_bad_id_or_timeout(
    message_id: object, wait_for: object, expected: str
) -> None:
    """A negative timeout timed out at once, a string one raised TypeError from inside
    anyio, and an id of another type was tracked as if it were one."""
    tracker = DeliveryTracker()
    with pytest.raises(ConfigurationError, match=expected):
        await tracker.wait(message_id, timeout=wait_for)  # type: ignore[arg-type]
    assert tracker.summary().tracked == 0


@pytest.mark.anyio
async def test_wait_returns_when_the_last_part_arrives() -> None:
    tracker = DeliveryTracker()
    tracker.track("m")
    outcomes: list[DeliveryOutcome] = []

    async def waiter() -> None:
        outcomes.append(await tracker.wait("m", timeout=5))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        tracker.feed(report("m", part=1, parts=2))
        await anyio.wait_all_tasks_blocked()
        assert outcomes == []
        await tracker.on_report(report("m", part=2, parts=2))
    assert outcomes[0].delivered


@pytest.mark.anyio
async def test_wait_times_out() -> None:
    tracker = DeliveryTracker()
    with pytest.raises(TimeoutError):
        await tracker.wait("never", timeout=0.01)
    assert tracker.summary().pending == 1


def test_finished_entries_are_forgotten_but_counted() -> None:
    finals: list[DeliveryOutcome] = []
    tracker = DeliveryTracker(max_finished=10, on_final=finals.append)
    for i in range(100):
        tracker.track(f"m{i}")
        tracker.feed(report(f"m{i}", S.DELIVERED if i % 4 else S.UNDELIVERABLE))
    assert len(tracker._entries) == 10
    assert tracker.outcome("m0") is None
    summary = tracker.summary()
    assert (summary.delivered, summary.failed, summary.pending) == (75, 25, 0)
    assert len(finals) == 100
    assert summary.cost == Decimal("0.500")


def test_stray_reports_are_bounded() -> None:
    tracker = DeliveryTracker(max_finished=5)
    for i in range(50):
        tracker.feed(report(f"stray{i}"))
    assert tracker.summary().untracked == 5
    assert len(tracker._entries) == 5


def test_a_late_part_after_the_final_status_only_adds_cost() -> None:
    tracker = DeliveryTracker()
    tracker.track("m")
    tracker.feed(report("m", S.REJECTED, part=1, parts=2))
    assert tracker.feed(report("m", part=2, parts=2)) is None
    outcome = tracker.outcome("m")
    assert outcome is not None
    assert outcome.status is S.REJECTED
    assert outcome.cost == Decimal("0.010")


@pytest.mark.parametrize("raw", [{"messageId": "m1", "statusCode": 3}, b"{}", "m1"])
def test_feeding_a_raw_report_says_what_to_pass(raw: object) -> None:
    tracker = DeliveryTracker()
    with pytest.raises(TypeError, match="parse_delivery_reports"):
        tracker.feed(raw)  # type: ignore[arg-type]
    assert tracker.summary().reports == 0
