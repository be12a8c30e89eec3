"""Traces: a startRestore's GraphQL span and the spans of the job it queued share one trace,
through the embedded runner and through the procrastinate queue."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from recoverly.database import Database
from recoverly.jobs import JobArgs, JobDefinition, JobInfo
from recoverly.jobs.queue import QueueJobRunner
from recoverly.observability.tracing import TRACE_KEY
from recoverly.resolvers.global_ids import decode_id
from recoverly.settings import async_database_url
from tests.conftest import deploy
from tests.scaleout.conftest import needs_postgres
from tests.scaleout.test_queue_runner import FAST
from tests.services.test_restores import latest_backup, restore_input, wait_restore

START = """mutation StartRestore($input: StartRestoreInput!) {
  startRestore(input: $input) { restore { id } errors { code } } }"""


def _named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    matching = [span for span in spans if span.name == name]
    assert len(matching) == 1, [span.name for span in spans]
    return matching[0]


async def test_start_restore_and_its_job_share_one_trace(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with deploy("sqlite", tmp_path) as site:
        backup = await latest_backup(site, "acme_jira")
        data = await site.gql(START, {"input": restore_input(site, backup, "acme_jira_sandbox")})
        restore_id = data["startRestore"]["restore"]["id"]
        assert (await wait_restore(site, restore_id))["status"] == "COMPLETED"
        assert site.runtime.runner is not None
        await asyncio.wait_for(site.runtime.runner.wait_idle(), 30)  # type: ignore[attr-defined]
    finished = list(spans.get_finished_spans())
    operation = _named(finished, "GraphQL mutation StartRestore")
    assert operation.kind == trace.SpanKind.SERVER
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.name"] == "StartRestore"
    assert "query" not in operation.attributes  # no query text, no arguments in spans
    trace_id = operation.context.trace_id
    in_trace = [span for span in finished if span.context.trace_id == trace_id]
    assert not any(
        key.startswith("graphql.param") for span in in_trace for key in (span.attributes or {})
    )
    job = _named(in_trace, "job restore.run")
    assert job.attributes is not None
    assert job.attributes["recoverly.restore_id"] == decode_id(restore_id, "Restore")
    assert job.attributes["recoverly.attempt"] == 1
    resolver = _named(in_trace, "GraphQL Resolving: startRestore")
    assert resolver.attributes is not None
    assert resolver.attributes["recoverly.restore_id"] == job.attributes["recoverly.restore_id"]
    assert job.parent is not None and job.parent.span_id == resolver.context.span_id
    statements = [
        span
        for span in in_trace
        if span.kind == trace.SpanKind.CLIENT and span.parent is not None
        and span.parent.span_id == job.context.span_id
    ]  # fmt: skip
    assert len(statements) > 5, "the job's database statements are spans of its trace"


@needs_postgres
async def test_a_queued_job_continues_the_trace_that_queued_it(
    spans: InMemorySpanExporter, postgres_url: str
) -> None:
    seen: list[tuple[JobArgs, int]] = []
    ran = asyncio.Event()

    async def run(args: JobArgs, info: JobInfo) -> None:
        seen.append((args, trace.get_current_span().get_span_context().trace_id))
        ran.set()

    db = Database(async_database_url(postgres_url))
    api, worker = (
        QueueJobRunner(db, dsn=postgres_url, work=work, options=FAST) for work in (False, True)
    )
    for runner in (api, worker):
        runner.register(JobDefinition("test.traced", run))
    try:
        await api.start()
        tracer = trace.get_tracer("tests")
        with tracer.start_as_current_span("request") as request:
            async with db.transaction() as session:
                await api.enqueue("test.traced", {"restore_id": 7}, session=session)
        stored = await _stored_args(db)
        await worker.start()
        await asyncio.wait_for(ran.wait(), 20)
    finally:
        await worker.stop()
        await api.stop()
        await db.dispose()
    assert TRACE_KEY in stored and "traceparent" in stored[TRACE_KEY]
    args, trace_id = seen[0]
    assert args == {"restore_id": 7}
    assert trace_id == request.get_span_context().trace_id
    job = _named(list(spans.get_finished_spans()), "job test.traced")
    assert job.attributes is not None and job.attributes["recoverly.restore_id"] == 7


async def _stored_args(db: Database) -> dict[str, Any]:
    from sqlalchemy import text

    async with db.session() as session:
        result = await (await session.connection()).execute(
            text("SELECT args FROM procrastinate_jobs ORDER BY id DESC LIMIT 1")
        )
        return dict(result.scalar_one())


CONFIGURE = """
import sys
from opentelemetry import trace
from recoverly.observability import tracing
from recoverly.settings import Settings

on = tracing.configure_tracing(Settings(), service="recoverly-api")
trace.get_tracer("tests").start_span("hello").end()
tracing.shutdown_tracing()
print("tracing", on, file=sys.stderr)
"""


def _configure(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", CONFIGURE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
    )


def test_tracing_is_off_by_default_and_on_with_the_standard_variables() -> None:
    off = _configure()
    assert "tracing False" in off.stderr and off.stdout == ""
    on = _configure(OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="recoverly-test")
    assert "tracing True" in on.stderr
    span = json.loads(on.stdout)
    assert span["name"] == "hello"
    assert span["resource"]["attributes"]["service.name"] == "recoverly-test"
    disabled = _configure(OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    assert "tracing False" in disabled.stderr
    unknown = _configure(OTEL_TRACES_EXPORTER="zipkin")
    assert unknown.returncode != 0 and "OTEL_TRACES_EXPORTER='zipkin'" in unknown.stderr
