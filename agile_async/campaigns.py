"""Bulk campaigns from a file: cost up front, progress while sending, resumable after a crash.

```python
import anyio
from agile_async import AgileClient, RateLimit
from agile_async.campaigns import Campaign

async def main() -> None:
    async with (
        await Campaign.create(
            "spring.journal", "recipients.csv", body="Hi {name}: -20% today", sender="Shop"
        ) as campaign,
        AgileClient() as client,
    ):
        report = await campaign.dry_run(client, prices="0.045")   # parts, encodings, cost
        result = await campaign.run(client, rate_limit=RateLimit(rate=100))
        print(result.counts)

anyio.run(main)
```

Every recipient is recorded in a *journal* (an SQLite file) before anything is sent, and
every state change after: ``pending`` -> ``in_flight`` (on disk before the request goes
out) -> ``accepted`` | ``failed`` (with the reason) | ``unknown``. After a crash, open the
journal again (``Campaign.open``) and run: pending rows are sent exactly once, accepted
rows never again, and rows that were in flight become ``unknown`` (reported, not re-sent,
unless ``resend_unknown=True``, which ``silent_for`` limits to rows sent long enough ago). A
delivery report for an unknown row proves the provider took it: the row becomes accepted,
*confirmed by delivery report* (feed reports to ``campaign.on_report``). A bad row (an
invalid number in the file) fails alone; an account error (credentials, credit, IP) stops
the run cleanly with the rest still pending.

The ``agile-sms campaign`` commands are a thin layer over this module.
"""

from __future__ import annotations

from ._campaign._engine import Campaign
from ._campaign._export import EXPORT_COLUMNS
from ._campaign._input import BodyTemplate
from ._campaign._journal import (
    CONFIRMED_BY_REPORT,
    CampaignDefinition,
    DeliveryUpdate,
    Failure,
    InputFormat,
    Journal,
    JournalRow,
    LoadedRow,
    LoadState,
    OutgoingRow,
    Recovery,
    RowState,
    StateCounts,
    Tally,
)
from ._campaign._report import (
    CampaignProgress,
    CampaignReport,
    CampaignResult,
    CampaignStatus,
    LoadProgress,
)
from ._campaign._sqlite import SQLiteJournal
from ._delivery import DeliveryState
from ._exceptions import CampaignError, InputChangedError, JournalError, TemplateError
from ._public import claim_public_names

__all__ = [
    "CONFIRMED_BY_REPORT",
    "EXPORT_COLUMNS",
    "BodyTemplate",
    "Campaign",
    "CampaignDefinition",
    "CampaignError",
    "CampaignProgress",
    "CampaignReport",
    "CampaignResult",
    "CampaignStatus",
    "DeliveryState",
    "DeliveryUpdate",
    "Failure",
    "InputChangedError",
    "InputFormat",
    "Journal",
    "JournalError",
    "JournalRow",
    "LoadProgress",
    "LoadState",
    "LoadedRow",
    "OutgoingRow",
    "Recovery",
    "RowState",
    "SQLiteJournal",
    "StateCounts",
    "Tally",
    "TemplateError",
]

claim_public_names(__name__)
