"""Structured logs: JSON lines in production, readable lines in development, every line
carrying the request or the job it belongs to, and secrets masked before anything is written.

Recoverly's own lines and those of the libraries (uvicorn, procrastinate, SQLAlchemy) go
through one stdlib handler, so they share the format, the bound context and the masking.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from recoverly.settings import Settings


@dataclass(slots=True)
class RequestInfo:
    """What one HTTP request (or websocket connection) did, filled in as it runs."""

    request_id: str
    websocket: bool = False
    operation_name: str | None = None
    operation_type: str | None = None
    admin_id: int | None = None
    outcome: str | None = None
    error_codes: list[str] = field(default_factory=list)


CURRENT_REQUEST: ContextVar[RequestInfo | None] = ContextVar("recoverly_request", default=None)

# Keys whose value never reaches a log line, whatever logged it.
_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|authorization|credential|api_?key|cookie", re.IGNORECASE
)
# Secrets inside free text: bearer credentials, Recoverly API tokens, user:password@ in URLs.
_SECRET_TEXT = (
    (re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"), r"\1[redacted]"),
    (re.compile(r"rcv_[A-Za-z0-9_\-]{16,}"), "[redacted]"),
    (re.compile(r"(?i)(secret_?access_?key|secret|password|passwd|token)(['\"]?\s*[:=]\s*['\"]?)"
                r"[^\s'\",}]+"), r"\1\2[redacted]"),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1[redacted]@"),
)  # fmt: skip
REDACTED = "[redacted]"
_FREE_TEXT = frozenset({"event", "exception", "message", "reason", "error", "url", "dsn"})
# Text without any of these cannot match _SECRET_TEXT (a cheap test for the common case).
_MARKERS = ("bearer", "rcv_", "secret", "password", "passwd", "token", "://")


def redact_text(text: str) -> str:
    lowered = text.lower()
    if not any(marker in lowered for marker in _MARKERS):
        return text
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


@lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def _redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if _is_secret_key(key):
            if value is not None:
                event_dict[key] = REDACTED
        elif key in _FREE_TEXT and isinstance(value, str):
            event_dict[key] = redact_text(value)
    return event_dict


def _add_request(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    request = CURRENT_REQUEST.get()
    if request is not None:
        event_dict.setdefault("request_id", request.request_id)
    return event_dict


_LEVELS = {"warn": "warning", "exception": "error", "fatal": "critical"}


def _stamp(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Level, logger name, request ID and UTC time in one step (it runs for every line)."""
    record = event_dict.get("_record")
    event_dict["level"] = _LEVELS.get(method, method)
    event_dict["logger"] = record.name if record is not None else getattr(logger, "name", "")
    request = CURRENT_REQUEST.get()
    if request is not None:
        event_dict.setdefault("request_id", request.request_id)
    event_dict["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's fast line writer, with a name for the ``logger`` key."""

    def __init__(self, file: Any, name: str) -> None:
        super().__init__(file)
        self.name = name


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Send every log line of this process to ``stream`` (stderr) in the configured format.

    Recoverly's structured lines are rendered and written by structlog directly (no stdlib
    record on the request path); the libraries' stdlib lines get the same processors."""
    stream = stream or sys.stderr
    json_lines = settings.resolved_log_format() == "json"
    level = getattr(logging, settings.log_level.upper())
    shared: list[Processor] = [structlog.contextvars.merge_contextvars, _stamp]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    finish: list[Processor] = [structlog.processors.format_exc_info, _redact, renderer]
    structlog.configure(
        processors=[*shared, *finish],
        logger_factory=lambda *args: _NamedWriteLogger(stream, str(args[0]) if args else ""),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # The request lines replace uvicorn's access log (which would print query strings).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Their debug lines are one per statement or per poll: enough to drown a busy process.
    for name in ("sqlalchemy", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    # Of alembic, only the migrations it applies ("Running upgrade ...").
    logging.getLogger("alembic.runtime.migration").setLevel(level)
    if level > logging.DEBUG:
        logging.getLogger("procrastinate").setLevel(max(level, logging.WARNING))


def _route_to_stdlib() -> None:
    """Until ``configure_logging`` runs (tests, scripts), structured lines go to the stdlib
    loggers like any library's: dropped below WARNING unless the program configures them."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            _add_request,
            _redact,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


if not structlog.is_configured():
    _route_to_stdlib()


def get_logger(name: str) -> Any:
    """A structured logger: ``log.info("restore finished", restore_id=7, status="FAILED")``."""
    return structlog.get_logger(name)


def set_phase(phase: str | None) -> None:
    """Name the running job's phase on its following lines (nothing outside a job)."""
    if "job" in structlog.contextvars.get_contextvars():
        structlog.contextvars.bind_contextvars(phase=phase)


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """``values`` on every line logged inside the block, and on nothing after it."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
