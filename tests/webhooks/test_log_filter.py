"""``receiver.log_filter`` masks the path token in any record, keeping the record's shape.

The README examples run for real in ``tests/test_readme_receiver_logs.py``; these pin the filter's
rules on records shaped like those of uvicorn's access log, its trace-level ASGI log, and
others, through the ``logging`` machinery a server uses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from agile_async.webhooks import DeliveryReportReceiver

TOKEN = "filter-token-0123456789_abc"


def on_report(report: object) -> None:
    pass


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, Collect]]:
    log = logging.getLogger("tests.access")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = Collect()
    log.addHandler(handler)
    receiver = DeliveryReportReceiver(on_report, path_token=TOKEN)
    log.addFilter(receiver.log_filter)
    log.addFilter(receiver.log_filter)  # the same object: added once
    assert log.filters == [receiver.log_filter]
    try:
        yield log, handler
    finally:
        log.removeHandler(handler)
        log.filters.clear()


def test_the_access_line_keeps_its_shape_and_loses_the_token(
    logger: tuple[logging.Logger, Collect],
) -> None:
    log, handler = logger
    # uvicorn's own call: its formatter unpacks these five arguments, so they must stay five.
    log.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", f"/agile/reports/{TOKEN}", "1.1", 200
    )
    log.info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST", "/agile/reports/guess", "1.1", 404)
    log.info(f"pre-formatted: GET /hooks/{TOKEN}?x=1")
    log.info("%(path)s %(status)d", {"path": f"/r/{TOKEN}", "status": 200})
    # uvicorn --log-level trace logs the whole scope dict; bytes show up in raw_path.
    log.debug("ASGI [1] Started scope=%s", {"path": f"/r/{TOKEN}", "raw_path": TOKEN.encode()})
    log.debug("raw %r", f"/r/{TOKEN}".encode())
    assert handler.lines == [
        '127.0.0.1:5 - "POST /agile/reports/*** HTTP/1.1" 200',
        '127.0.0.1:5 - "POST /agile/reports/guess HTTP/1.1" 404',
        "pre-formatted: GET /hooks/***?x=1",
        "/r/*** 200",
        "ASGI [1] Started scope={'path': '/r/***', 'raw_path': b'***'}",
        "raw b'/r/***'",
    ]


def test_an_exception_text_is_masked(logger: tuple[logging.Logger, Collect]) -> None:
    log, handler = logger
    try:
        raise ValueError(f"no route for /agile/reports/{TOKEN}")
    except ValueError:
        log.exception("failed %s", "here")
    assert TOKEN not in "\n".join(handler.lines)
    assert "no route for /agile/reports/***" in handler.lines[0]


def test_the_filter_shows_no_secret_and_a_receiver_without_token_changes_nothing() -> None:
    receiver = DeliveryReportReceiver(on_report, path_token=TOKEN)
    assert TOKEN not in repr(receiver.log_filter)
    assert receiver.log_filter is receiver.log_filter
    plain = DeliveryReportReceiver(on_report).log_filter
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", ("/a/b",), None)
    assert plain.filter(record)
    assert record.getMessage() == "/a/b"
