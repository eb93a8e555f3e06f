"""The campaign engine against the fake provider in memory: runs, bad rows, stops, resumes."""

from __future__ import annotations

import collections
import csv
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from agile_async import (
    AgileClient,
    ConfigurationError,
    DeliveryReport,
    DeliveryStatus,
    InsufficientCreditError,
    RateLimit,
    RetryPolicy,
    SendOptions,
    TransportError,
    ValidationError,
)
from agile_async.campaigns import (
    Campaign,
    CampaignError,
    CampaignProgress,
    Failure,
    InputChangedError,
    JournalError,
    OutgoingRow,
    RowState,
    SQLiteJournal,
)
from agile_async.segments import PriceList
from agile_async.testing import FakeAgileServer, Fault
from agile_async.webhooks import parse_delivery_reports

pytestmark = pytest.mark.anyio

BODY = "Hi {name}, your code is {code}"


def destination(i: int) -> str:
    return f"+39347{i:07d}"


def write_csv(path: Path, count: int, *, extra: str = "") -> Path:
    lines = ["destination,name,code"]
    for i in range(1, count + 1):
        name = "Zoë" if i % 10 == 0 else f"Ada{i}"  # every tenth text is UCS-2
        lines.append(f"{destination(i)},{name},{i:04d}")
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return path


def client(fake: FakeAgileServer, **kwargs: Any) -> AgileClient:
    return fake.client(retry=RetryPolicy(attempts=1), **kwargs)


async def create(tmp_path: Path, count: int, **kwargs: Any) -> Campaign:
    source = write_csv(tmp_path / "recipients.csv", count)
    return await Campaign.create(
        tmp_path / "campaign.journal", source, body=BODY, sender="Shop", **kwargs
    )


async def failures(campaign: Campaign) -> dict[int, Failure | None]:
    """The failed rows, by seq, with their failures."""
    failed: dict[int, Failure | None] = {}
    async for chunk in campaign.rows([RowState.FAILED]):
        failed.update((row.seq, row.failure) for row in chunk)
    return failed


def accepted_destinations(fake: FakeAgileServer) -> collections.Counter[str]:
    return collections.Counter(m.destination for m in fake.accepted)


async def test_dry_run_reports_parts_encodings_cost_and_credit(tmp_path: Path) -> None:
    """The report counts what will be sent before anything is, against the credit."""
    fake = FakeAgileServer(credit=Decimal("3"))
    async with await create(tmp_path, 100) as campaign, client(fake) as agile:
        report = await campaign.dry_run(agile, prices=PriceList({"39": "0.04"}, default="1"))
    assert (report.total, report.to_send, report.failed) == (100, 100, 0)
    assert (report.gsm7, report.ucs2, report.parts) == (90, 10, 100)
    assert report.cost == Decimal("4.00")
    assert report.credit == Decimal("3")
    assert report.sufficient is False
    assert report.shortfall == Decimal("1.00")
    assert fake.requests[-1].method == "GET"  # only the credit was asked for
    assert not fake.accepted


async def test_run_sends_each_row_once_with_its_own_text(tmp_path: Path) -> None:
    """Every row accepted once; the journal's ids are the ids the provider saw."""
    fake = FakeAgileServer()
    snapshots: list[CampaignProgress] = []
    async with await create(tmp_path, 300) as campaign, client(fake) as agile:
        result = await campaign.run(agile, on_progress=snapshots.append, max_latency=0.001)
        ids: dict[str, str] = {}
        async for chunk in campaign.rows():
            ids.update((r.message_id or "", r.destination) for r in chunk)
    assert result.all_accepted
    assert result.stopped_by is None
    assert result.counts.accepted == 300
    assert result.counts.parts == 300
    assert accepted_destinations(fake) == collections.Counter(destination(i) for i in range(1, 301))
    assert {m.message_id: m.destination for m in fake.accepted} == ids
    bodies = {m.destination: m.body for m in fake.accepted}
    assert bodies[destination(7)] == "Hi Ada7, your code is 0007"
    assert bodies[destination(10)] == "Hi Zoë, your code is 0010"
    final = snapshots[-1]
    assert (final.total, final.accepted, final.done, final.in_flight) == (300, 300, 300, 0)
    assert final.credit == fake.credit


async def test_bad_rows_fail_alone(tmp_path: Path) -> None:
    """A bad number in the file fails at load; one the provider refuses is isolated by
    bisection: every other row goes out."""
    source = write_csv(tmp_path / "r.csv", 200, extra="+39abc,Bad,0000\n")
    fake = FakeAgileServer()
    fake.reject_destinations([destination(77)])
    async with (
        await Campaign.create(tmp_path / "j", source, body=BODY, sender="Shop") as campaign,
        client(fake) as agile,
    ):
        result = await campaign.run(agile)
        failed = await failures(campaign)
    assert (result.counts.accepted, result.counts.failed) == (199, 2)
    assert result.stopped_by is None
    assert failed[77] is not None
    assert (failed[77].kind, failed[77].code) == ("InvalidDestinationError", 7)
    assert failed[201] is not None
    assert failed[201].kind == "ValidationError"
    assert destination(77) not in accepted_destinations(fake)
    assert len(fake.accepted) == 199


async def test_an_account_error_stops_cleanly_and_resume_finishes(tmp_path: Path) -> None:
    """Credit runs out: the run stops with the error, unsent rows stay pending (none failed
    or unknown); after a top-up, resuming sends exactly those."""
    fake = FakeAgileServer(credit=Decimal("5"), price_per_part=Decimal("0.05"))  # 100 parts
    journal = tmp_path / "campaign.journal"
    async with await create(tmp_path, 300) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_messages=50, max_in_flight=1)
    assert isinstance(result.stopped_by, InsufficientCreditError)
    assert not result.complete
    counts = result.counts
    assert (counts.accepted, counts.failed, counts.unknown, counts.in_flight) == (100, 0, 0, 0)
    assert counts.pending == 200

    fake.credit = Decimal("100")
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        assert campaign.recovery.became_unknown == 0
        result = await campaign.run(agile, max_messages=50, max_in_flight=1)
    assert result.all_accepted
    assert accepted_destinations(fake) == collections.Counter(destination(i) for i in range(1, 301))


async def test_rows_failed_at_load_between_a_requests_rows_change_nothing(
    tmp_path: Path,
) -> None:
    """Rows refused at load sit between the rows a request carries, and a rejected row
    splits its request in halves (the journal writes a request's rows as runs of
    consecutive rows): across a run stopped by the account and its resume, every other
    row goes out exactly once, and only the bad ones fail."""
    bad = {5, 6, 17, 40, 41, 42, 99}
    lines = ["destination,name,code"]
    for i in range(1, 151):
        lines.append(f"{'+39abc' if i in bad else destination(i)},Ada{i},{i:04d}")
    source = tmp_path / "r.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    journal = tmp_path / "campaign.journal"
    fake = FakeAgileServer(credit=Decimal("3"), price_per_part=Decimal("0.05"))  # 60 parts
    fake.reject_destinations([destination(73)])
    async with (
        await Campaign.create(journal, source, body=BODY, sender="Shop") as campaign,
        client(fake) as agile,
    ):
        result = await campaign.run(agile, max_messages=16, max_in_flight=2)
    assert isinstance(result.stopped_by, InsufficientCreditError)
    counts = result.counts
    assert (counts.in_flight, counts.unknown) == (0, 0)
    assert 0 < counts.accepted <= 60
    assert counts.pending > 0

    fake.credit = Decimal("100")
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        assert campaign.recovery.became_unknown == 0
        result = await campaign.run(agile, max_messages=16, max_in_flight=2)
        failed = set(await failures(campaign))
    assert (result.counts.accepted, result.counts.failed) == (142, 8)
    assert failed == {*bad, 73}
    good = (i for i in range(1, 151) if i not in failed)
    assert accepted_destinations(fake) == collections.Counter(destination(i) for i in good)


async def test_wrong_credentials_stop_before_anything_is_sent(tmp_path: Path) -> None:
    """An account error on the first request: every row still pending, nothing failed."""
    fake = FakeAgileServer()
    async with await create(tmp_path, 20) as campaign, client(fake, api_key="wrong") as agile:
        result = await campaign.run(agile)
    assert type(result.stopped_by).__name__ == "AuthenticationError"
    assert (result.counts.pending, result.counts.failed) == (20, 0)


async def test_a_network_that_stays_down_stops_the_run(tmp_path: Path) -> None:
    """Connections refused beyond the retries: the run stops, the rows stay pending."""
    fake = FakeAgileServer()
    fake.inject(Fault.drop(), times=None)
    async with await create(tmp_path, 20) as campaign, client(fake) as agile:
        result = await campaign.run(agile)
    assert isinstance(result.stopped_by, TransportError)
    assert (result.counts.pending, result.counts.failed, result.counts.unknown) == (20, 0, 0)


async def test_a_lost_answer_is_unknown_and_never_resent(tmp_path: Path) -> None:
    """The provider took a request but the answer was lost: those rows are unknown, a resume
    does not send them again; only resend_unknown does (and the fake then has them twice)."""
    fake = FakeAgileServer()
    journal = tmp_path / "campaign.journal"
    fake.inject(Fault.drop(after_processing=True), path="/sms/send")
    async with await create(tmp_path, 30) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_messages=10, max_in_flight=1)
    assert (result.counts.accepted, result.counts.unknown) == (20, 10)
    assert result.complete
    assert len(fake.accepted) == 30  # the provider did take the lost request

    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        report = await campaign.dry_run()
        assert (report.to_send, report.unknown) == (0, 10)
        result = await campaign.run(agile)
    assert len(fake.accepted) == 30

    async with await Campaign.open(journal, resend_unknown=True) as campaign, client(fake) as agile:
        assert campaign.recovery.requeued == 10
        result = await campaign.run(agile)
    assert result.all_accepted
    assert len(fake.accepted) == 40


async def test_rows_in_flight_at_a_crash_become_unknown(tmp_path: Path) -> None:
    """A process dies between marking a request in flight and its answer: on open, the
    rows are unknown and not re-sent; the rest goes out once."""
    journal = tmp_path / "campaign.journal"
    async with await create(tmp_path, 10) as campaign:
        await campaign.load()
    with closing(sqlite3.connect(journal)) as conn, conn:  # what a killed run leaves behind
        conn.execute("UPDATE rows SET state = 'in_flight' WHERE seq <= 3")
    fake = FakeAgileServer()
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        assert campaign.recovery.became_unknown == 3
        result = await campaign.run(agile)
    assert (result.counts.accepted, result.counts.unknown) == (7, 3)
    assert destination(1) not in accepted_destinations(fake)


async def test_stop_finishes_requests_under_way_and_keeps_the_rest(tmp_path: Path) -> None:
    """A clean stop (Ctrl-C in the CLI): no unknown, the rest pending; resume completes."""
    fake = FakeAgileServer()
    journal = tmp_path / "campaign.journal"
    async with await create(tmp_path, 200) as campaign, client(fake) as agile:

        def stop_when_started(progress: CampaignProgress) -> None:
            if progress.accepted:
                campaign.stop()

        result = await campaign.run(
            agile,
            on_progress=stop_when_started,
            progress_interval=0.01,
            rate_limit=RateLimit(rate=100, burst=20),
            max_messages=20,
        )
    assert result.interrupted
    assert result.stopped_by is None
    counts = result.counts
    assert counts.accepted >= 20
    assert counts.pending > 0
    assert (counts.in_flight, counts.unknown, counts.failed) == (0, 0, 0)
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        result = await campaign.run(agile)
    assert result.all_accepted
    assert accepted_destinations(fake) == collections.Counter(destination(i) for i in range(1, 201))


async def test_limit_sends_part_now_and_the_rest_later(tmp_path: Path) -> None:
    """``limit`` rows per run; a second run of the same campaign object goes on."""
    fake = FakeAgileServer()
    async with await create(tmp_path, 120) as campaign, client(fake) as agile:
        first = await campaign.run(agile, limit=50)
        assert (first.counts.accepted, first.counts.pending) == (50, 70)
        assert first.progress.total == 50
        second = await campaign.run(agile)
    assert second.all_accepted
    assert len(fake.accepted) == 120


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"limit": -1}, "limit must be an integer >= 0"),
        ({"limit": 2.5}, "limit must be an integer >= 0"),
        ({"progress_interval": 0}, "progress_interval must be > 0 s"),
        ({"on_progress": "print"}, "on_progress must be callable or None"),
        ({"client": None}, "client must be an AgileClient"),
        ({"max_mesages": 5}, "max_mesages is not a batcher setting .did you mean max_messages"),
        ({"settings": {"max_messages": 5}}, "settings must be a BatchSettings or None"),
    ],
)
async def test_run_names_an_argument_that_cannot_be_right_before_any_work(
    tmp_path: Path, arguments: dict[str, Any], expected: str
) -> None:
    """A negative limit read as none, a zero interval, a callback that is not one (its
    TypeError logged at every tick) and a missing client are refused, nothing loaded."""
    fake = FakeAgileServer()
    async with await create(tmp_path, 3) as campaign, client(fake) as agile:
        call = {"client": agile, **arguments}
        with pytest.raises(ConfigurationError, match=expected):
            await campaign.run(call.pop("client"), **call)
        counts = await campaign.counts()
    assert (counts.pending, len(fake.requests)) == (0, 0)  # not even loaded


@pytest.mark.parametrize("states", [RowState.FAILED, "failed", [RowState.FAILED, "x"]])
async def test_export_names_states_that_are_not_row_states(tmp_path: Path, states: Any) -> None:
    async with await create(tmp_path, 3) as campaign:
        with pytest.raises(ConfigurationError, match="states must be RowState values"):
            await campaign.export(tmp_path / "out.csv", states=states)
        with pytest.raises(ConfigurationError, match="states must be RowState values"):
            campaign.rows(states)
        assert await campaign.export(tmp_path / "out.csv", states=iter([RowState.PENDING])) == 0


async def test_delivery_reports_land_in_the_journal(tmp_path: Path) -> None:
    """Reports posted by the provider (one per part) are recorded per message."""
    reports: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=reports.append)
    async with await create(tmp_path, 30) as campaign, client(fake) as agile:
        await campaign.run(agile)
        await fake.flush_reports()
        parsed = [r for body in reports for r in parse_delivery_reports(body)]
        assert await campaign.record_deliveries(parsed) == len(parsed) > 0
        counts = await campaign.counts()
    assert counts.deliveries == {DeliveryStatus.DELIVERED: 30}


async def test_creating_checks_everything_first(tmp_path: Path) -> None:
    """Bad sender, a column the template needs, a missing file: refused, nothing created."""
    source = write_csv(tmp_path / "r.csv", 3)
    journal = tmp_path / "j"
    with pytest.raises(ValidationError, match="sender"):
        await Campaign.create(journal, source, body=BODY, sender="Far too long a sender")
    with pytest.raises(CampaignError, match=r"\{surname\} but r.csv has no such column"):
        await Campaign.create(journal, source, body="Hi {surname}", sender="Shop")
    with pytest.raises(CampaignError, match="no recipients file"):
        await Campaign.create(journal, tmp_path / "nope.csv", body=BODY, sender="Shop")
    assert not journal.exists()


async def test_a_journal_holds_one_campaign(tmp_path: Path) -> None:
    """The same definition again opens it (exist_ok); another one is refused."""
    source = write_csv(tmp_path / "r.csv", 3)
    journal = tmp_path / "j"
    async with await Campaign.create(journal, source, body=BODY, sender="Shop") as first:
        campaign_id = first.definition.campaign_id
    again = await Campaign.create(journal, source, body=BODY, sender="Shop", exist_ok=True)
    async with again:
        assert again.definition.campaign_id == campaign_id
    with pytest.raises(JournalError, match="already holds campaign"):
        await Campaign.create(journal, source, body="Other {name}", sender="Shop", exist_ok=True)


async def test_a_changed_input_is_refused_until_the_journal_has_it_all(tmp_path: Path) -> None:
    """Loading after the file changed is refused; once loaded, the file is not needed."""
    source = write_csv(tmp_path / "r.csv", 5)
    journal = tmp_path / "j"
    async with await Campaign.create(journal, source, body=BODY, sender="Shop"):
        pass  # recorded, not loaded (a crash before loading, say)
    write_csv(source, 6)
    async with await Campaign.open(journal) as campaign:
        with pytest.raises(InputChangedError, match="changed since the campaign was created"):
            await campaign.load()
    write_csv(source, 5)
    async with await Campaign.open(journal) as campaign:
        assert (await campaign.load()).done
    source.unlink()
    fake = FakeAgileServer()
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        assert (await campaign.run(agile)).all_accepted


async def test_export_writes_every_outcome(tmp_path: Path) -> None:
    """One CSV line per row, with the reason of failures."""
    source = write_csv(tmp_path / "r.csv", 3, extra="12,Bad,0000\n")
    out = tmp_path / "out.csv"
    fake = FakeAgileServer()
    async with (
        await Campaign.create(tmp_path / "j", source, body=BODY, sender="Shop") as campaign,
        client(fake) as agile,
    ):
        await campaign.run(agile)
        assert await campaign.export(out) == 4
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("seq,id,destination,state,attempts,global_id")
    assert [line.split(",")[3] for line in lines[1:]] == ["accepted"] * 3 + ["failed"]
    assert "too short" in lines[4]


async def test_the_engine_never_blocks_the_loop(tmp_path: Path) -> None:
    """A ticker keeps ticking while a campaign loads and sends (sqlite runs in threads)."""
    fake = FakeAgileServer()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.001)  # real time: a blocked loop would not tick
            ticks += 1

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(tick)
        async with await create(tmp_path, 2000) as campaign, client(fake) as agile:
            await campaign.run(agile)
        tasks.cancel_scope.cancel()
    assert ticks > 10


async def test_a_page_that_is_not_the_provider_stops_the_run(tmp_path: Path) -> None:
    """A proxy's HTML (no provider code) is no verdict on the messages: nothing fails, the
    run stops with the rows pending, instead of failing every row one by one."""
    fake = FakeAgileServer()
    fake.inject(Fault.html(status=404), times=None, path="/sms/send")
    async with await create(tmp_path, 40) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_messages=20)
    assert result.stopped_by is not None
    assert (result.counts.pending, result.counts.failed) == (40, 0)


async def reports_of(fake: FakeAgileServer, bodies: list[dict[str, Any]]) -> list[DeliveryReport]:
    await fake.flush_reports()
    return [r for body in bodies for r in parse_delivery_reports(body)]


async def test_a_message_is_delivered_when_its_last_part_is(tmp_path: Path) -> None:
    """Defect 9 through the engine: 3-part messages stay pending until every part's report
    is in, whichever part reports first."""
    bodies: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=bodies.append)
    source = write_csv(tmp_path / "recipients.csv", 5)
    async with (
        await Campaign.create(
            tmp_path / "c.journal", source, body="{name} " + "x" * 400, sender="Shop"
        ) as campaign,
        client(fake) as agile,
    ):
        await campaign.run(agile)
        reports = await reports_of(fake, bodies)
        assert {r.concat_total for r in reports} == {3}
        last_parts = [r for r in reports if r.concat_progressive == 3]
        for report in reports:
            if report.concat_progressive != 3:
                await campaign.on_report(report)
        counts = await campaign.counts()
        assert counts.deliveries == {DeliveryStatus.ACCEPTED: 5}
        assert await campaign.record_deliveries(last_parts) == 5
        counts = await campaign.counts()
    assert counts.deliveries == {DeliveryStatus.DELIVERED: 5}


async def test_reports_resolve_unknown_rows_and_silent_for_resends_the_rest(
    tmp_path: Path,
) -> None:
    """Answers lost for 10 rows; reports arrive for 5 of them: accepted, confirmed by
    report. Re-sending unknown rows silent for an hour sends nothing (they were sent just
    now); silent for 0s sends exactly the 5 never reported, once."""
    bodies: list[dict[str, Any]] = []
    fake = FakeAgileServer(raw_delivery_callback=bodies.append)
    journal = tmp_path / "campaign.journal"
    fake.inject(Fault.drop(after_processing=True), path="/sms/send")
    async with await create(tmp_path, 30) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_messages=10, max_in_flight=1)
        assert result.counts.unknown == 10
        unknown = {
            r.message_id
            async for chunk in campaign.rows([RowState.UNKNOWN])
            for r in chunk
            if r.message_id is not None
        }
        reported = sorted(unknown)[:5]
        for report in await reports_of(fake, bodies):
            if report.message_id in reported:
                await campaign.on_report(report)
        counts = await campaign.counts()
        assert (counts.accepted, counts.unknown, counts.confirmed) == (25, 5, 5)
        output = tmp_path / "outcomes.csv"
        await campaign.export(output)
    with output.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    notes = {line["id"]: line["note"] for line in lines if line["note"]}
    assert notes == dict.fromkeys(reported, "confirmed by delivery report")

    with pytest.raises(ValueError, match="resend_unknown"):
        await Campaign.open(journal, silent_for=0)
    async with (
        await Campaign.open(
            journal, resend_unknown=True, silent_for=timedelta(hours=1)
        ) as campaign,
        client(fake) as agile,
    ):
        assert (campaign.recovery.requeued, campaign.recovery.still_unknown) == (0, 5)
        await campaign.run(agile)
    assert len(fake.accepted) == 30

    async with (
        await Campaign.open(journal, resend_unknown=True, silent_for=0) as campaign,
        client(fake) as agile,
    ):
        assert campaign.recovery.requeued == 5
        result = await campaign.run(agile)
    assert result.all_accepted
    resent = collections.Counter(m.message_id for m in fake.accepted)
    assert {i for i, n in resent.items() if n == 2} == unknown - set(reported)


async def test_rows_the_batcher_refuses_fail_alone_among_rows_queued_many_at_once(
    tmp_path: Path,
) -> None:
    """Rows go to the batcher a thousand at a time (``submit_many``); one it refuses (here
    a number damaged in the journal after loading) fails alone, the others are sent."""
    async with await create(tmp_path, 1200) as campaign:
        await campaign.load()
    journal = tmp_path / "campaign.journal"
    with closing(sqlite3.connect(journal)) as conn, conn:  # a journal edited by hand
        conn.execute("UPDATE rows SET destination = '+39abc' WHERE seq IN (5, 999)")
    fake = FakeAgileServer()
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_latency=0.001)
        failed = await failures(campaign)
    assert (result.counts.accepted, result.counts.failed) == (1198, 2)
    assert sorted(failed) == [5, 999]
    assert all(f is not None and f.kind == "ValidationError" for f in failed.values())
    assert len(fake.accepted) == 1198
    assert result.stopped_by is None


class RowByRowJournal(SQLiteJournal):
    """A journal handing out one object per row (as a journal of one's own may), the
    third under the second's message id (as a journal holding an id twice would)."""

    async def next_rows(self, limit: int) -> Sequence[OutgoingRow]:
        rows = list(await super().next_rows(limit))
        for i, row in enumerate(rows):
            if row.seq == 3:
                rows[i] = attrs.evolve(row, message_id=rows[i - 1].message_id)
        return rows


async def test_a_journal_of_rows_and_an_id_handed_out_twice(tmp_path: Path) -> None:
    """A journal returning a list of ``OutgoingRow`` is sent like the SQLite journal's
    columns; a message id already under way fails the later row, and nobody gets two."""
    async with await create(tmp_path, 50) as campaign:
        await campaign.load()
    fake = FakeAgileServer()
    journal = await RowByRowJournal.open(tmp_path / "campaign.journal")
    async with await Campaign.open(journal) as campaign, client(fake) as agile:
        result = await campaign.run(agile, max_latency=0.001)
        failed = await failures(campaign)
    assert (result.counts.accepted, result.counts.failed) == (49, 1)
    assert list(failed) == [3]
    assert failed[3] is not None
    assert "already being sent" in failed[3].message
    sent = accepted_destinations(fake)
    assert sent == collections.Counter(destination(i) for i in range(1, 51) if i != 3)
    assert result.stopped_by is None


async def test_run_refuses_options_of_its_own(tmp_path: Path) -> None:
    """A campaign sends with the options it was created with: run() says so."""
    fake = FakeAgileServer()
    async with await create(tmp_path, 3) as campaign, client(fake) as agile:
        with pytest.raises(ConfigurationError, match="options"):
            await campaign.run(agile, options=SendOptions(enable_concatenated=False))
    assert not fake.accepted
