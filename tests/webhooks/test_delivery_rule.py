"""One delivery rule: the tracker and the journals (SQLite, Redis) fold the same reports the
same way.

A message is delivered when every part is, failed when any part fails (the kind kept),
pending otherwise. Hypothesis feeds the same per-part report sequences (out of order,
duplicated, with ``ACCEPTED`` before the final status, with hostile part counts) to a
``DeliveryTracker`` and to a campaign journal, and checks both against the rule written out
independently here.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agile_async import (
    DeliveryReport,
    DeliveryStatus,
    DeliveryTracker,
    RequestTotals,
    SendOptions,
)
from agile_async.campaigns import (
    CampaignDefinition,
    DeliveryState,
    DeliveryUpdate,
    Failure,
    Journal,
    LoadedRow,
    RowState,
    SQLiteJournal,
)
from agile_async.scaleout import RedisCampaign

pytest_plugins = ("tests._redis_server",)
pytestmark = pytest.mark.anyio

S = DeliveryStatus
FAILURES = (S.REJECTED, S.EXPIRED, S.DELETED, S.UNDELIVERABLE)
T0 = datetime(2026, 4, 8, 14, 35, 22, tzinfo=timezone(timedelta(hours=2)))
MESSAGE = "c0ffee000001-1"

DEFINITION = CampaignDefinition(
    campaign_id="c0ffee000001",
    source="/data/recipients.csv",
    source_format="csv",
    source_sha256="ab" * 32,
    source_size=1,
    body="Hi",
    sender="Shop",
    options=SendOptions(),
    created_at=datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc),
)


def report(status: DeliveryStatus, part: int, parts: int, second: int) -> DeliveryReport:
    return DeliveryReport(
        message_id=MESSAGE,
        destination="+393471234567",
        status=status,
        description=status.name.title(),
        done_date=T0 + timedelta(seconds=second),
        concat_total=parts,
        concat_progressive=part,
        price=Decimal("0.005"),
    )


@st.composite
def realistic(draw: st.DrawFn) -> tuple[int, list[DeliveryReport]]:
    """What the provider does: each part of an N-part message gets one final status (maybe
    after an ``ACCEPTED``), some reports come twice, some parts not yet; any order."""
    parts = draw(st.integers(1, 5))
    stories: list[DeliveryReport] = []
    for part in range(1, parts + 1):
        if draw(st.booleans()):
            stories.append(report(S.ACCEPTED, part, parts, part))
        if draw(st.integers(0, 9)):  # mostly a final status; sometimes none yet
            final = draw(st.sampled_from((S.DELIVERED,) * 4 + FAILURES))
            stories.append(report(final, part, parts, 10 + part))
    if stories:
        stories += draw(st.lists(st.sampled_from(stories), max_size=3))  # retries
    return parts, draw(st.permutations(stories))


#: Anything at all: any part, any status, any (even inconsistent) concatTotal.
arbitrary = st.lists(
    st.builds(
        report,
        st.sampled_from(list(S)),
        st.integers(1, 4),
        st.integers(1, 4),
        st.integers(0, 5),
    ),
    max_size=10,
)


def expected_by_hand(parts: int, reports: list[DeliveryReport]) -> DeliveryStatus | None:
    """The rule, for consistent reports, written without the fold."""
    if not reports:
        return None
    for r in reports:  # the first failure to arrive ends the message
        if r.status in FAILURES:
            finals_before = {x.concat_progressive for x in reports[: reports.index(r)]
                             if x.status is S.DELIVERED}  # fmt: skip
            if len(finals_before) < parts:
                return r.status
            break
    delivered = {r.concat_progressive for r in reports if r.status is S.DELIVERED}
    if len(delivered) == parts:
        return S.DELIVERED
    return S.ACCEPTED


def tracked(reports: list[DeliveryReport]) -> DeliveryTracker:
    tracker = DeliveryTracker()
    tracker.track(MESSAGE)
    for r in reports:
        tracker.feed(r)
    return tracker


@contextlib.asynccontextmanager
async def one_row_journal(redis: Any) -> AsyncIterator[Journal]:
    """A fresh journal holding the one row ``MESSAGE``, with a session started: SQLite, or
    with a Redis client, a Redis campaign (sending from the chunk it took)."""
    row = LoadedRow(seq=1, message_id=MESSAGE, destination="+393471234567", body="Hi")
    if redis is not None:
        journal = RedisCampaign(redis, f"rule-{uuid.uuid4().hex[:12]}")
        await journal.create(DEFINITION)
        await journal.append([row], done=True)
        await journal.recover()
        assert await journal.take_chunk()
        yield journal
        return
    with tempfile.TemporaryDirectory() as directory:
        async with await SQLiteJournal.open(Path(directory) / "j", create=True) as sqlite:
            await sqlite.create(DEFINITION)
            await sqlite.append([row], done=True)
            await sqlite.recover()
            yield sqlite


async def journaled(
    reports: list[DeliveryReport], cuts: list[int], *, unknown: bool, redis: Any = None
) -> tuple[RowState, DeliveryStatus | None, datetime | None, int, bool]:
    """The reports recorded by a fresh journal in chunks (cut at ``cuts``), for a row that
    was accepted or, with ``unknown``, whose request's answer was lost."""
    async with one_row_journal(redis) as journal:
        await journal.mark_in_flight([1], "g1")
        if unknown:
            await journal.record_unknown([1], Failure("OutcomeUnknownError", "lost"))
        else:
            await journal.record_accepted([1], RequestTotals("g1", 1, 1, Decimal(1)))
        updates = [DeliveryUpdate.from_report(r) for r in reports]
        bounds = sorted({0, len(updates), *(c for c in cuts if c <= len(updates))})
        for start, end in itertools.pairwise(bounds):
            await journal.record_deliveries(updates[start:end])
        [[found]] = [chunk async for chunk in journal.rows()]
    return (
        found.state,
        found.delivery,
        found.delivered_at,
        found.parts_delivered,
        found.confirmed_by_report,
    )


async def check_same_outcome(
    reports: list[DeliveryReport], cuts: list[int], unknown: bool, redis: Any = None
) -> DeliveryStatus | None:
    outcome = tracked(reports).outcome(MESSAGE)
    assert outcome is not None
    state, delivery, delivered_at, parts_delivered, confirmed = await journaled(
        reports, cuts, unknown=unknown, redis=redis
    )
    rule = DeliveryState.of(reports)
    assert delivery is outcome.status is rule.status
    assert parts_delivered == outcome.parts_delivered == rule.parts_delivered
    if outcome.final:
        assert delivered_at == outcome.done_date == rule.done_at
    # A report proves the provider took the message: an unknown row is accepted by it.
    if unknown and not reports:
        assert (state, confirmed) == (RowState.UNKNOWN, False)
    else:
        assert (state, confirmed) == (RowState.ACCEPTED, unknown)
    return outcome.status


SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(
    story=realistic(),
    cuts=st.lists(st.integers(0, 12), max_size=3),
    unknown=st.booleans(),
)
async def test_tracker_and_journal_agree_on_what_the_provider_sends(
    story: tuple[int, list[DeliveryReport]], cuts: list[int], unknown: bool
) -> None:
    parts, reports = story
    status = await check_same_outcome(reports, cuts, unknown)
    assert status is expected_by_hand(parts, reports)


@SETTINGS
@given(reports=arbitrary, cuts=st.lists(st.integers(0, 10), max_size=3), unknown=st.booleans())
async def test_tracker_and_journal_agree_on_anything(
    reports: list[DeliveryReport], cuts: list[int], unknown: bool
) -> None:
    await check_same_outcome(reports, cuts, unknown)


@SETTINGS
@given(
    story=realistic(),
    cuts=st.lists(st.integers(0, 12), max_size=3),
    unknown=st.booleans(),
)
async def test_the_redis_journal_agrees_on_what_the_provider_sends(
    redis: Any, story: tuple[int, list[DeliveryReport]], cuts: list[int], unknown: bool
) -> None:
    """The Redis campaign stores each message's state compactly and folds every report
    with the same rule: the same outcome as the tracker and the SQLite journal."""
    parts, reports = story
    status = await check_same_outcome(reports, cuts, unknown, redis)
    assert status is expected_by_hand(parts, reports)
    assert await journaled(reports, cuts, unknown=unknown) == await journaled(
        reports, cuts, unknown=unknown, redis=redis
    )


@SETTINGS
@given(reports=arbitrary, cuts=st.lists(st.integers(0, 10), max_size=3), unknown=st.booleans())
async def test_the_redis_journal_agrees_on_anything(
    redis: Any, reports: list[DeliveryReport], cuts: list[int], unknown: bool
) -> None:
    await check_same_outcome(reports, cuts, unknown, redis)


@settings(max_examples=200, deadline=None)
@given(story=realistic())
def test_only_which_failure_comes_first_depends_on_the_order(
    story: tuple[int, list[DeliveryReport]],
) -> None:
    """Delivered, failed or pending never depends on the order reports arrive in."""
    _, reports = story
    forwards, backwards = DeliveryState.of(reports), DeliveryState.of(reversed(reports))
    assert forwards.delivered == backwards.delivered
    assert (forwards.status in FAILURES) == (backwards.status in FAILURES)
    assert forwards.final == backwards.final


def test_a_three_part_message_is_delivered_with_its_last_part() -> None:
    """The defect this rule ends: the journal said delivered after the first part."""
    state = DeliveryState().apply(S.DELIVERED, part=1, parts=3, done_at=T0)
    assert (state.status, state.parts, state.parts_delivered) == (S.ACCEPTED, 3, 1)
    state = state.apply(S.DELIVERED, part=3, parts=3).apply(S.ACCEPTED, part=2, parts=3)
    assert not state.final
    done = T0 + timedelta(minutes=1)
    state = state.apply(S.DELIVERED, part=2, parts=3, done_at=done)
    assert (state.status, state.done_at) == (S.DELIVERED, done)


def test_a_report_for_a_higher_part_raises_the_part_count() -> None:
    """A hostile or inconsistent report cannot make two parts look like the whole."""
    state = DeliveryState().apply(S.DELIVERED, part=1, parts=2).apply(S.ACCEPTED, part=3)
    state = state.apply(S.DELIVERED, part=2, parts=2)
    assert (state.status, state.parts) == (S.ACCEPTED, 3)


def test_a_part_keeps_its_first_final_status_and_a_final_message_stays_final() -> None:
    state = DeliveryState().apply(S.EXPIRED, part=1, parts=2)
    assert state.apply(S.REJECTED, part=2, parts=2) is state
    assert state.apply(S.DELIVERED, part=1, parts=2) is state
    delivered = DeliveryState().apply(S.DELIVERED)
    assert delivered.apply(S.UNDELIVERABLE) is delivered
    assert delivered.apply(S.ACCEPTED) is delivered


def test_part_numbers_count_from_one() -> None:
    """Nothing the parser accepts has part 0; a hand-made one is refused, not folded."""
    with pytest.raises(ValueError, match="count from 1"):
        DeliveryState().apply(S.DELIVERED, part=0)
    with pytest.raises(ValueError, match="part"):
        DeliveryUpdate(MESSAGE, S.DELIVERED, part=1, parts=0)
