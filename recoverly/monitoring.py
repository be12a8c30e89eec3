"""A process's probes and scrape target: ``/healthz`` (alive, no I/O), ``/readyz`` (the
readiness checks, 503 naming the failing ones) and ``/metrics`` (Prometheus text).

``/metrics`` is served on the API's port, or with ``RECOVERLY_METRICS_PORT`` on a port of its
own (the only way a worker exposes it); ``RECOVERLY_METRICS_TOKEN`` asks scrapers for a
bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from recoverly.observability.logs import get_logger
from recoverly.observability.metrics import CONTENT_TYPE_LATEST
from recoverly.observability.requests import RequestLogMiddleware
from recoverly.services.health import readiness
from recoverly.services.runtime import Runtime

log = get_logger(__name__)


def probe_routes(runtime: Runtime, *, with_metrics: bool) -> list[Route]:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        result = await readiness(runtime)
        return JSONResponse(result.as_json(), status_code=200 if result.ready else 503)

    async def metrics(request: Request) -> Response:
        return await metrics_response(runtime, request)

    routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
    if with_metrics and runtime.metrics.enabled:
        routes.append(Route("/metrics", metrics))
    return routes


async def metrics_response(runtime: Runtime, request: Request) -> Response:
    token = runtime.settings.metrics_token
    if token and not hmac.compare_digest(
        request.headers.get("authorization", "").encode(), f"Bearer {token}".encode()
    ):
        return PlainTextResponse(
            "send Authorization: Bearer <RECOVERLY_METRICS_TOKEN>",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="recoverly-metrics"'},
        )
    if runtime.runner is not None:
        try:
            async with asyncio.timeout(runtime.settings.readiness_timeout_seconds):
                runtime.metrics.set_queue(await runtime.runner.queue_stats())
        except Exception as error:
            log.warning("job queue metrics unavailable", error=type(error).__name__)
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside a process that owns its signals (the API server or the worker)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def metrics_server(runtime: Runtime, port: int) -> AsyncIterator[int]:
    """Serve the probes and ``/metrics`` on ``port`` (0: a free one) while the block runs;
    yields the port."""
    app = Starlette(routes=probe_routes(runtime, with_metrics=True))
    config = uvicorn.Config(
        RequestLogMiddleware(app, metrics=runtime.metrics),
        host=runtime.settings.host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(), name="recoverly-metrics-server")
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"the metrics server did not start on port {port}")
        await asyncio.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    log.info("metrics served", url=f"http://{runtime.settings.host}:{bound}/metrics")
    try:
        yield bound
    finally:
        server.should_exit = True
        await task
