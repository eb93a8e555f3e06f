"""The SQLite journal with its store in a child process (``SQLiteJournal.open(process=True)``):
a campaign runs on it as on the thread, and the child's life is tied to its parent's.

The journal's contract itself runs on both hosts in ``test_journal.py`` (its ``journal``
fixture); these are what only a process has: a child that can die, signals, a parent that
can die.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from agile_async import ConfigurationError, Cost
from agile_async.campaigns import Campaign, JournalError, SQLiteJournal
from agile_async.testing import FakeAgileServer
from tests._children import child_environment
from tests._waiting import GUARD, eventually

pytestmark = pytest.mark.anyio

TOTAL = 60

#: Finding the child needs /proc; killing and signalling it needs POSIX.
needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds the journal's process in /proc"
)


def recipients(path: Path) -> Path:
    lines = ["destination"] + [f"+3934{i:08d}" for i in range(1, TOTAL + 1)]
    path.write_text("\n".join(lines) + "\n")
    return path


def status(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent, or ``None`` once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, parent = stat[stat.rindex(")") + 2 :].split()[:2]  # after "pid (name) "
    return state, int(parent)


def journal_processes(parent: int | None = None) -> list[int]:
    """The living journal processes whose parent is ``parent`` (this process by default)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if b"_store_process" not in command or (seen := status(int(entry))) is None:
            continue
        state, its_parent = seen
        if its_parent == parent and state != "Z":  # any other state: it may be in an fsync (D)
            found.append(int(entry))
    return found


def the_journal_process() -> int:
    (pid,) = journal_processes()
    return pid


async def create(tmp_path: Path) -> Campaign:
    campaign = await Campaign.create(
        tmp_path / "c.journal",
        recipients(tmp_path / "r.csv"),
        body="Hi",
        sender="Shop",
        journal_process=True,
    )
    await campaign.load()
    return campaign


async def test_a_campaign_runs_with_its_journal_in_a_process(tmp_path: Path) -> None:
    """Every row sent once and recorded accepted, readable afterwards by a journal in this
    process (the file is the same file, whichever host wrote it)."""
    fake = FakeAgileServer(credit=Decimal(100))
    async with await create(tmp_path) as campaign, fake.client() as client:
        result = await campaign.run(client, max_messages=7)
    assert result.stopped_by is None
    assert result.counts.accepted == TOTAL
    assert collections.Counter(m.message_id for m in fake.accepted).most_common(1)[0][1] == 1
    async with await Campaign.open(tmp_path / "c.journal", read_only=True) as reread:
        counts = await reread.journal.counts()
    assert (counts.accepted, counts.pending, counts.in_flight) == (TOTAL, 0, 0)


async def test_journal_process_is_a_flag_for_a_path(tmp_path: Path) -> None:
    """Refused before anything is read or created, naming the argument: a value that is not
    a bool, and a journal opened already (how to open one in a process is said)."""
    source = recipients(tmp_path / "r.csv")
    with pytest.raises(ConfigurationError, match="journal_process must be True or False"):
        await Campaign.create(
            tmp_path / "c.journal",
            source,
            body="Hi",
            sender="Shop",
            journal_process="yes",  # type: ignore[arg-type]
        )
    assert not (tmp_path / "c.journal").exists()
    async with await SQLiteJournal.open(tmp_path / "c.journal", create=True) as opened:
        with pytest.raises(ConfigurationError, match="journal_process applies to a journal's path"):
            await Campaign.create(opened, source, body="Hi", sender="Shop", journal_process=True)
        with pytest.raises(ConfigurationError, match="SQLiteJournal with process=True"):
            await Campaign.open(opened, journal_process=True)


async def test_a_refused_open_is_raised_from_the_process(tmp_path: Path) -> None:
    """The child's refusal (no journal there, or one in use) reaches the caller as the
    thread's does, and leaves no child behind."""
    with pytest.raises(JournalError, match="no journal at"):
        await SQLiteJournal.open(tmp_path / "missing.journal", process=True)
    async with await SQLiteJournal.open(tmp_path / "j", create=True, process=True) as first:
        with pytest.raises(JournalError, match="in use by another process"):
            await SQLiteJournal.open(first.path, process=True)
    if sys.platform.startswith("linux"):
        assert journal_processes() == []


async def test_a_process_that_cannot_start_is_a_journal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No interpreter where ``sys.executable`` says (a frozen application): the journal
    cannot open, and says why, as for any journal that cannot open."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python-here"))
    with pytest.raises(JournalError, match="the journal's process could not start"):
        await SQLiteJournal.open(tmp_path / "j", create=True, process=True)


@needs_proc
async def test_the_process_ends_with_its_journal(tmp_path: Path) -> None:
    journal = await SQLiteJournal.open(tmp_path / "j", create=True, process=True)
    child = the_journal_process()
    await journal.aclose()
    assert child not in journal_processes()


@needs_proc
async def test_the_terminal_and_a_service_stop_go_to_the_parent_not_the_journal(
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) and a service manager's SIGTERM must
    leave the child serving, so that the parent can still record the outcomes of the
    requests under way: the child runs in a session of its own and ignores both."""
    async with await SQLiteJournal.open(tmp_path / "j", create=True, process=True) as journal:
        child = the_journal_process()
        assert os.getsid(child) != os.getsid(0)
        os.kill(child, signal.SIGINT)
        os.kill(child, signal.SIGTERM)
        await anyio.sleep(0.05)
        assert await journal.definition() is None  # still answering
        assert journal_processes() == [child]


class KillingLimiter:
    """Grants ``grants`` requests, then kills the journal's process before the next one."""

    def __init__(self, grants: int) -> None:
        self.grants = grants

    async def acquire(self, cost: Cost) -> None:
        self.grants -= 1
        if self.grants == 0:
            os.kill(the_journal_process(), signal.SIGKILL)

    def penalize(self, retry_after: float | None) -> None:
        pass


@needs_proc
async def test_a_dead_journal_process_stops_the_run_and_fails_no_row(tmp_path: Path) -> None:
    """The child killed in the middle of a run: the run stops with a JournalError saying how
    it ended, no row is recorded failed, and a later run sends exactly the rest."""
    fake = FakeAgileServer(credit=Decimal(100))
    async with await create(tmp_path) as campaign, fake.client() as client:
        with pytest.raises(JournalError, match=r"ended unexpectedly \(killed by SIGKILL\)"):
            await campaign.run(client, limiter=KillingLimiter(4), max_messages=5, max_in_flight=2)
        with pytest.raises(JournalError, match="ended unexpectedly"):
            await campaign.journal.counts()  # every later call says so too
    sent_before = len(fake.accepted)
    assert 0 < sent_before < TOTAL
    async with await Campaign.open(tmp_path / "c.journal") as resumed:
        recovered = resumed.recovery
        async with fake.client() as client:
            result = await resumed.run(client, max_messages=5)
    counts = result.counts
    assert counts.failed == 0
    assert counts.pending == counts.in_flight == 0
    assert counts.accepted + counts.unknown == TOTAL
    assert counts.unknown == recovered.became_unknown  # in flight when the child died: not resent
    ids = collections.Counter(m.message_id for m in fake.accepted)
    assert len(ids) == TOTAL
    assert max(ids.values()) == 1


CHILD = """
import sys, anyio
from agile_async.campaigns import SQLiteJournal

async def main() -> None:
    journal = await SQLiteJournal.open(sys.argv[1], create=True, process=True)
    print("open", flush=True)
    await anyio.sleep(60)

anyio.run(main)
"""


@pytest.fixture
def dying_parent(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    parent = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path / "orphan.journal")],
        stdout=subprocess.PIPE,
        text=True,
        env=child_environment(),
    )
    try:
        yield parent
    finally:
        parent.kill()
        parent.wait()
        assert parent.stdout is not None
        parent.stdout.close()


@needs_proc
async def test_the_journal_process_ends_when_its_parent_dies(
    tmp_path: Path, dying_parent: subprocess.Popen[str]
) -> None:
    """A parent killed outright (SIGKILL: no cleanup) leaves no journal process behind: the
    child sees its input end, closes the journal and exits, which frees its run lock for
    the next run, even one started at once."""
    assert dying_parent.stdout is not None
    assert await anyio.to_thread.run_sync(dying_parent.stdout.readline) == "open\n"
    (child,) = journal_processes(dying_parent.pid)
    dying_parent.kill()
    await anyio.to_thread.run_sync(dying_parent.wait)
    # At once, as an operator resuming right after a kill would: opening waits the moment
    # the orphaned child takes to close the journal, rather than calling it in use.
    reopened = await SQLiteJournal.open(tmp_path / "orphan.journal")
    await reopened.aclose()
    with anyio.fail_after(GUARD):  # then it exits (or waits, a zombie, for its adopter)
        await eventually(lambda: status(child) is None or status(child)[0] == "Z")  # type: ignore[index]
