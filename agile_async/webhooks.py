"""Delivery reports: strict parsing, and an ASGI receiver for the provider's webhook.

The provider POSTs one JSON report per SMS part to your webhook, unsigned. This module
parses them strictly (:func:`parse_delivery_reports`) and receives them safely
(:class:`DeliveryReportReceiver`, a plain ASGI app: mount it in FastAPI or Starlette, or
serve it alone with uvicorn):

```python
import logging
import secrets

import uvicorn

from agile_async.webhooks import DeliveryReportReceiver

async def on_report(report):
    print(report.message_id, report.status.name, report.price)

token = secrets.token_urlsafe(32)   # keep it; the webhook URL is https://host/reports/<token>
receiver = DeliveryReportReceiver(on_report, path_token=token)
logging.getLogger("uvicorn.access").addFilter(receiver.log_filter)  # logs /reports/***
uvicorn.run(receiver, host="0.0.0.0", port=8080)
```
"""

from __future__ import annotations

from ._exceptions import InvalidDeliveryReportError
from ._public import claim_public_names
from ._webhook_parsing import (
    DEFAULT_MAX_REPORTS,
    MAX_LISTED_PROBLEMS,
    parse_delivery_report,
    parse_delivery_reports,
)
from ._webhook_receiver import (
    DEFAULT_DEDUPE_WINDOW,
    DEFAULT_MAX_BODY_BYTES,
    MIN_PATH_TOKEN_LENGTH,
    DeliveryReportReceiver,
    ReceiverStatistics,
    ReportCallback,
)

__all__ = [
    "DEFAULT_DEDUPE_WINDOW",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_REPORTS",
    "MAX_LISTED_PROBLEMS",
    "MIN_PATH_TOKEN_LENGTH",
    "DeliveryReportReceiver",
    "InvalidDeliveryReportError",
    "ReceiverStatistics",
    "ReportCallback",
    "parse_delivery_report",
    "parse_delivery_reports",
]

claim_public_names(__name__)
