"""The README's OpenTelemetry example, run as written against the fake provider over TLS.

The example exports to the console; here its exporter and metric reader are the SDK's
in-memory ones (swapped in where the example imports them), so the test can read what the
example's providers recorded.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from opentelemetry.sdk.metrics import export as metrics_export
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import export as trace_export
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agile_async.testing import FakeAgileServer
from tests._docs import doc_block

from .conftest import unset_providers

pytestmark = pytest.mark.tls

PAGE = "docs/guides/observability.md"


class Spans(InMemorySpanExporter):
    """Stands in for ``ConsoleSpanExporter`` (made once, read by the test)."""

    made: ClassVar[list[Spans]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        Spans.made.append(self)


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[InMemoryMetricReader]]:
    readers: list[InMemoryMetricReader] = []

    def reader(*args: Any, **kwargs: Any) -> InMemoryMetricReader:
        readers.append(InMemoryMetricReader())
        return readers[-1]

    Spans.made.clear()
    monkeypatch.setattr(trace_export, "ConsoleSpanExporter", Spans)
    monkeypatch.setattr(metrics_export, "PeriodicExportingMetricReader", reader)
    unset_providers()
    try:
        yield readers
    finally:
        unset_providers()


def test_the_readme_example_traces_and_measures_its_sends(
    recorded: list[InMemoryMetricReader], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeAgileServer(credit=Decimal("100"), price_per_part=Decimal("0.05"))
    module = types.ModuleType("readme_otel")
    with fake.serve_tls() as server:
        for name, value in server.environment().items():
            monkeypatch.setenv(name, value)
        try:
            exec(compile(doc_block(PAGE, "otel"), f"{PAGE}[otel]", "exec"), module.__dict__)
        finally:
            module.tracer_provider.shutdown()
    assert len(fake.accepted) == 2

    (exporter,) = Spans.made
    names = [span.name for span in exporter.get_finished_spans()]
    assert sorted(names) == ["POST sms/send", "order confirmations", "send sms"]
    (reader,) = recorded
    data = reader.get_metrics_data()
    assert data is not None
    found = {
        metric.name: list(metric.data.data_points)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    }
    (accepted,) = found["agile_async.messages"]
    assert getattr(accepted, "value", None) == 2
    module.meter_provider.shutdown()
