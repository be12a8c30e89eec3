"""OpenTelemetry traces, off unless the standard ``OTEL_*`` variables name an exporter.

Spans: GraphQL operations (Strawberry's extension), database statements (SQLAlchemy
instrumentation, per engine) and jobs. A job's span continues the trace of the request
that queued it: the span context travels in the job's arguments (``_trace``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate, trace
from sqlalchemy.ext.asyncio import AsyncEngine

from recoverly.settings import Settings

if TYPE_CHECKING:  # the SDK is imported only when tracing is turned on
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

TRACE_KEY = "_trace"
_state: dict[str, TracerProvider] = {}


def configure_tracing(
    settings: Settings, *, service: str = "recoverly", exporter: SpanExporter | None = None
) -> bool:
    """Install a tracer provider when the settings (or a test's ``exporter``) ask for one;
    True when tracing is on. Once per process: OpenTelemetry's provider is global."""
    if "provider" in _state:
        return True
    kind = settings.traces_exporter()
    if exporter is None and kind is None:
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    name = settings.otel_service_name or service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(kind or "otlp")))
    trace.set_tracer_provider(provider)
    _state["provider"] = provider
    return True


def enabled() -> bool:
    return "provider" in _state


def shutdown_tracing() -> None:
    """Export the spans still buffered (at process exit)."""
    provider = _state.pop("provider", None)
    if provider is not None:
        provider.shutdown()


def _exporter(kind: str) -> SpanExporter:
    if kind == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"OTEL_TRACES_EXPORTER={kind!r} is not supported: use otlp, console or none")


def instrument_engine(engine: AsyncEngine) -> None:
    """Spans for this engine's statements (their SQL text, never their parameters)."""
    if not enabled():
        return
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import get_meter

    tracer = trace.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    usage = get_meter(__name__).create_up_down_counter("db.client.connections.usage")
    EngineTracer(tracer, engine.sync_engine, usage)


def carry(args: dict[str, Any]) -> dict[str, Any]:
    """``args`` plus the current span context, for a job queued inside a traced request."""
    if not enabled():
        return args
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {**args, TRACE_KEY: carrier} if carrier else args


@contextmanager
def job_span(name: str, args: dict[str, Any], attributes: dict[str, Any]) -> Iterator[None]:
    """The span of one job run, a child of the span that queued it when there was one."""
    if not enabled():
        yield
        return
    carrier = args.get(TRACE_KEY)
    parent = propagate.extract(carrier) if isinstance(carrier, dict) else None
    tracer = trace.get_tracer("recoverly.jobs")
    with tracer.start_as_current_span(
        f"job {name}", context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield


def set_attribute(key: str, value: Any) -> None:
    """Record ``value`` on the current span (nothing when tracing is off)."""
    trace.get_current_span().set_attribute(key, value)
