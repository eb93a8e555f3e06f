"""The delivery rule: how the reports of one message's parts make one message outcome.

The provider posts one report per SMS part, in any order, perhaps twice, perhaps an
``ACCEPTED`` one before the final one. Everything that turns those into "delivered",
"failed" or "pending" (:class:`~agile_async.DeliveryTracker` in memory, every campaign
journal on disk or in Redis) folds them with :meth:`DeliveryState.apply`, so the same reports
can never mean two things in two places:

- a message is **delivered** when every part (1 to ``concatTotal``) is;
- it **fails** as soon as any part reaches a failure status, and keeps that status
  (rejected, expired, deleted and undeliverable mean different things to a sender);
- it is **pending** otherwise: ``ACCEPTED`` once any report came, ``None`` before.

Three details make the fold safe to apply to hostile or repeated input:

- a part keeps its first *final* status: an ``ACCEPTED`` arriving late, a duplicate, or a
  contradicting retry never rewrites it;
- the number of parts is the largest ``concatTotal`` (or part number) any report gave, so a
  report saying "part 3" can never let a message count as delivered with two parts;
- a final message status is final: later reports change nothing. When two parts fail
  differently, the failure reported first is the one kept.

The state is a small immutable value: a journal stores it per message (the status, the
number of parts and each reported part's status) and applies the next report to what it
read back, exactly as the tracker does in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import attrs

from ._models import DeliveryReport, DeliveryStatus
from ._setting_validators import invalid

__all__ = ["DeliveryState"]


@attrs.frozen
class DeliveryState:
    """What the reports of one message have established so far.

    Build the next state with :meth:`apply`; an empty ``DeliveryState()`` is a message with
    no report yet.

    Attributes:
        status: the message's status under the rule: ``None`` before any report,
            ``ACCEPTED`` while pending, else ``DELIVERED`` or the failure that ended it.
        parts: how many parts the message has (the largest ``concatTotal`` or part number
            reported; 0 before any report).
        reported: each reported part's status, as ``(part, status)`` pairs by part number.
        done_at: the ``doneDate`` of the report that gave ``status`` its current value.
    """

    status: DeliveryStatus | None = None
    parts: int = 0
    reported: tuple[tuple[int, DeliveryStatus], ...] = ()
    done_at: datetime | None = None

    @classmethod
    def restore(
        cls,
        status: DeliveryStatus | None,
        parts: int,
        reported: Mapping[int, DeliveryStatus],
        done_at: datetime | None = None,
    ) -> DeliveryState:
        """The state a journal stored (status, parts, each part's status, ``done_at``)."""
        return cls(status, parts, tuple(sorted(reported.items())), done_at)

    @classmethod
    def of(cls, reports: Iterable[DeliveryReport]) -> DeliveryState:
        """The state after ``reports``, applied in order."""
        state = cls()
        for report in reports:
            state = state.apply_report(report)
        return state

    @property
    def final(self) -> bool:
        """Whether no report can change the outcome any more (delivered or failed)."""
        return self.status is not None and self.status.is_final

    @property
    def delivered(self) -> bool:
        """Whether every part reached the phone."""
        return self.status is DeliveryStatus.DELIVERED

    @property
    def parts_delivered(self) -> int:
        """How many distinct parts are reported delivered."""
        return sum(1 for _, status in self.reported if status is DeliveryStatus.DELIVERED)

    def part_statuses(self) -> dict[int, DeliveryStatus]:
        """Each reported part's status, by part number (from 1)."""
        return dict(self.reported)

    def apply_report(self, report: DeliveryReport) -> DeliveryState:
        """:meth:`apply` for a parsed :class:`~agile_async.DeliveryReport`."""
        return self.apply(
            report.status,
            part=report.concat_progressive,
            parts=report.concat_total,
            done_at=report.done_date,
        )

    def apply(
        self,
        status: DeliveryStatus,
        *,
        part: int = 1,
        parts: int = 1,
        done_at: datetime | None = None,
    ) -> DeliveryState:
        """The state after one more report: ``status`` for ``part`` of ``parts``.

        ``part`` and ``parts`` are the report's ``concatProgressive`` and ``concatTotal``.
        Returns ``self`` when the report changes nothing (a duplicate, a late part of a
        finished message).

        Raises:
            ConfigurationError: ``part`` or ``parts`` below 1 (no report the parser accepts
                has one).
        """
        if part < 1 or parts < 1:
            name, value = ("part", part) if part < 1 else ("parts", parts)
            raise invalid(name, "must count from 1", value)
        if self.final:
            return self
        statuses = dict(self.reported)
        previous = statuses.get(part)
        if previous is not None and (previous.is_final or previous is status):
            known = max(self.parts, parts, part)
            if known == self.parts:
                return self
            return attrs.evolve(self, parts=known)
        statuses[part] = status
        known = max(self.parts, parts, part)
        message: DeliveryStatus
        if status.is_final and status is not DeliveryStatus.DELIVERED:
            message = status  # any failed part fails the message, with its kind
        elif _all_delivered(statuses, known):
            message = DeliveryStatus.DELIVERED
        else:
            message = DeliveryStatus.ACCEPTED
        changed = message is not self.status
        return DeliveryState(
            status=message,
            parts=known,
            reported=tuple(sorted(statuses.items())),
            done_at=done_at if changed else self.done_at,
        )


def _all_delivered(statuses: Mapping[int, DeliveryStatus], parts: int) -> bool:
    # Counting (not ``all(... for i in range(1, parts + 1))``): ``parts`` comes from the
    # report, and the work stays bounded by the reports actually received.
    delivered = sum(
        1
        for part, status in statuses.items()
        if status is DeliveryStatus.DELIVERED and part <= parts
    )
    return delivered == parts
