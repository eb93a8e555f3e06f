"""What the engine tells its caller: the dry-run report, progress snapshots, the run's result.

All three are frozen values with an ``as_dict()`` that is JSON-ready (money as strings, so
no float ever rounds a price), which is what the CLI prints with ``--json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from .._exceptions import ValidationError
from .._pricing import PriceList
from ._journal import CampaignDefinition, Failure, JournalRow, LoadState, StateCounts, Tally

__all__ = [
    "CampaignProgress",
    "CampaignReport",
    "CampaignResult",
    "CampaignStatus",
    "LoadProgress",
    "counts_dict",
    "price_tallies",
]


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@attrs.frozen(kw_only=True)
class LoadProgress:
    """How far loading the input has come (for a progress bar)."""

    rows: int
    bytes_read: int
    size: int


@attrs.frozen(kw_only=True)
class CampaignReport:
    """The dry run: what sending the pending rows will take, before anything is sent.

    Attributes:
        campaign_id: the campaign's id.
        total: every row of the campaign.
        to_send: pending rows: what a run would send now.
        accepted: rows already accepted (by an earlier run).
        failed: rows failed (refused at load, or by the provider).
        unknown: rows whose outcome is unknown (not re-sent).
        parts: the SMS parts ``to_send`` will use, by the SDK's count.
        gsm7: rows to send in GSM-7 (160 characters a part).
        ucs2: rows to send in UCS-2 (70 a part: one character outside GSM-7 forces it).
        cost: the estimated cost of ``to_send``, when prices were given.
        currency: the prices' currency.
        credit: the account's credit, when a client was given.
        problems: a few failed rows, with their reasons (the first by row number).
    """

    campaign_id: str
    total: int
    to_send: int
    accepted: int
    failed: int
    unknown: int
    parts: int
    gsm7: int
    ucs2: int
    cost: Decimal | None = None
    currency: str = "EUR"
    credit: Decimal | None = None
    problems: tuple[JournalRow, ...] = ()

    @property
    def sufficient(self) -> bool | None:
        """Whether the credit covers the cost (``None`` when either is unknown)."""
        if self.cost is None or self.credit is None:
            return None
        return self.credit >= self.cost

    @property
    def shortfall(self) -> Decimal | None:
        """How much credit is missing (zero when enough; ``None`` when unknown)."""
        if self.cost is None or self.credit is None:
            return None
        return max(self.cost - self.credit, Decimal(0))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (money as strings)."""
        return {
            "campaign_id": self.campaign_id,
            "total": self.total,
            "to_send": self.to_send,
            "accepted": self.accepted,
            "failed": self.failed,
            "unknown": self.unknown,
            "parts": self.parts,
            "encodings": {"GSM-7": self.gsm7, "UCS-2": self.ucs2},
            "cost": _money(self.cost),
            "currency": self.currency,
            "credit": _money(self.credit),
            "sufficient": self.sufficient,
            "shortfall": _money(self.shortfall),
            "problems": [
                {
                    "seq": row.seq,
                    "destination": row.destination,
                    "reason": None if row.failure is None else str(row.failure),
                }
                for row in self.problems
            ],
        }


def price_tallies(prices: PriceList, tallies: Sequence[Tally]) -> Decimal:
    """The cost of grouped rows: parts times the price of each group's prefix.

    Raises:
        ValidationError: a prefix has no price and the list has no default.
    """
    total = Decimal(0)
    for tally in tallies:
        if tally.prefix:
            price = prices.price_for(tally.prefix)
        elif prices.default is not None:
            price = prices.default
        else:
            raise ValidationError.single("prices", "a price list with prefixes needs digits")
        total += price * tally.parts
    return total


@attrs.frozen(kw_only=True)
class CampaignProgress:
    """A snapshot of a run, a few times a second (counts are this run's, in messages).

    Attributes:
        total: rows this run set out to send.
        accepted: accepted by the provider.
        failed: failed with a reason.
        unknown: outcome unknown (the request may have gone out; not re-sent).
        in_flight: in a request under way.
        parts: SMS parts the provider counted for the accepted (``processedSmsParts``).
        credit: the latest credit the provider reported (EUR).
        elapsed: seconds since the run started.
        rate: messages settled per second, recently.
        eta: seconds left at that rate (``None`` before there is a rate).
    """

    total: int
    accepted: int
    failed: int
    unknown: int
    in_flight: int
    parts: int
    credit: Decimal | None
    elapsed: float
    rate: float
    eta: float | None

    @property
    def done(self) -> int:
        """Messages with an outcome."""
        return self.accepted + self.failed + self.unknown

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as JSON-ready data."""
        return {
            "total": self.total,
            "accepted": self.accepted,
            "failed": self.failed,
            "unknown": self.unknown,
            "in_flight": self.in_flight,
            "parts": self.parts,
            "credit": _money(self.credit),
            "elapsed": round(self.elapsed, 3),
            "rate": round(self.rate, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
        }


@attrs.frozen(kw_only=True)
class CampaignResult:
    """How a run ended, and where the whole campaign stands after it.

    Attributes:
        counts: the whole campaign's rows by state, after the run.
        progress: the run's last progress snapshot (this run's counts, rate, time).
        stopped_by: the error that stopped the run early: an account error (credentials,
            credit, IP), or a provider or network failure that outlasted the retries.
            Unsent rows stay pending for a later resume.
        interrupted: :meth:`Campaign.stop` was called (Ctrl-C in the CLI).
    """

    counts: StateCounts
    progress: CampaignProgress
    stopped_by: BaseException | None = None
    interrupted: bool = False

    @property
    def complete(self) -> bool:
        """Every row has a final outcome: nothing pending or in flight."""
        return self.counts.pending == 0 and self.counts.in_flight == 0

    @property
    def all_accepted(self) -> bool:
        """Complete, and every row accepted."""
        return self.complete and self.counts.accepted == self.counts.total

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {
            "complete": self.complete,
            "interrupted": self.interrupted,
            "stopped_by": None
            if self.stopped_by is None
            else str(Failure.from_exception(self.stopped_by)),
            "campaign": counts_dict(self.counts),
            "run": self.progress.as_dict(),
        }


def counts_dict(counts: StateCounts) -> dict[str, Any]:
    """Rows by state as JSON-ready data."""
    return {
        "total": counts.total,
        "pending": counts.pending,
        "in_flight": counts.in_flight,
        "accepted": counts.accepted,
        "failed": counts.failed,
        "unknown": counts.unknown,
        "parts": counts.parts,
        "credit": _money(counts.credit),
        "deliveries": {status.name.lower(): n for status, n in counts.deliveries.items()},
        "confirmed_by_report": counts.confirmed,
    }


@attrs.frozen(kw_only=True)
class CampaignStatus:
    """Where a campaign stands, read from its journal.

    Attributes:
        definition: what the campaign is (input, body, sender, options).
        loading: how much of the input is recorded.
        counts: rows by state, parts and the latest credit.
        journal: where the journal lives.
    """

    definition: CampaignDefinition
    loading: LoadState
    counts: StateCounts
    journal: str

    def as_dict(self) -> dict[str, Any]:
        """The status as JSON-ready data."""
        d = self.definition
        return {
            "campaign_id": d.campaign_id,
            "journal": self.journal,
            "source": d.source,
            "source_format": d.source_format,
            "source_encoding": d.source_encoding,
            "source_delimiter": d.source_delimiter,
            "source_sha256": d.source_sha256,
            "created_at": d.created_at.isoformat(),
            "sender": d.sender,
            "body": d.body,
            "loaded": self.loading.done,
            "loaded_rows": self.loading.loaded_through,
            "counts": counts_dict(self.counts),
        }
