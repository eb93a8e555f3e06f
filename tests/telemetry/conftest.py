"""An OpenTelemetry SDK set up for one test: in-memory span exporter, in-memory metric reader.

The SDK lets a process set its global providers once; the OpenTelemetry test utilities
reset them between tests, and :func:`unset_providers` does what they do, so each test here
gets fresh providers and every other test of the suite runs with none set (the SDK's
default, where agile-async records nothing).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.util._once import Once


def unset_providers() -> None:
    """Back to no provider set, as in a fresh process (what ``opentelemetry.test`` does)."""
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    metrics_internal._METER_PROVIDER_SET_ONCE = Once()
    metrics_internal._METER_PROVIDER = None


class Recorded:
    """What the SDK recorded during the test."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.reader = InMemoryMetricReader()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans, oldest first; only those called ``name`` if given."""
        spans = list(self.exporter.get_finished_spans())
        return [s for s in spans if name is None or s.name == name]

    def metrics(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Each metric's points as ``(attributes, value)``: a sum's or gauge's value, a
        histogram's count."""
        found: dict[str, list[tuple[dict[str, Any], Any]]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count  # type: ignore[union-attr]
                        found.setdefault(metric.name, []).append(
                            (dict(point.attributes or {}), value)
                        )
        return found

    def total(self, name: str, **where: Any) -> Any:
        """The sum of a metric's points whose attributes include ``where``."""
        points = self.metrics().get(name, [])
        return sum(v for a, v in points if all(a.get(k) == w for k, w in where.items()))


@pytest.fixture
def otel() -> Iterator[Recorded]:
    """Global OpenTelemetry providers for this test (set before the client is made)."""
    recorded = Recorded()
    unset_providers()
    trace.set_tracer_provider(recorded.tracer_provider)
    metrics.set_meter_provider(recorded.meter_provider)
    try:
        yield recorded
    finally:
        unset_providers()
        recorded.tracer_provider.shutdown()
        recorded.meter_provider.shutdown()
