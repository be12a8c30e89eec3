"""Tracing for the tests that ask for it: one in-memory exporter for the session (OpenTelemetry's
provider is global), switched on only around those tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from recoverly.observability import tracing
from recoverly.settings import Settings
from tests.scaleout.conftest import postgres_url

__all__ = ["postgres_url"]


@pytest.fixture(scope="session")
def _memory_tracing() -> tuple[InMemorySpanExporter, object]:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing(Settings(), exporter=exporter)
    # Off for every other test: only `spans` turns it on.
    provider = tracing._state.pop("provider")
    return exporter, provider


@pytest.fixture
def spans(
    _memory_tracing: tuple[InMemorySpanExporter, object], monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemorySpanExporter]:
    """Tracing on, spans kept in memory (emptied first)."""
    exporter, provider = _memory_tracing
    exporter.clear()
    monkeypatch.setitem(tracing._state, "provider", provider)
    yield exporter
