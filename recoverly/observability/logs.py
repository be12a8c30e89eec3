"""Structured logs: JSON lines in production, readable lines in development, every line
carrying the request or the job it belongs to, and secrets masked before anything is written.

Recoverly's own lines and those of the libraries (uvicorn, procrastinate, SQLAlchemy) go
through one stdlib handler, so they share the format, the bound context and the masking.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from recoverly.settings import Settings


@dataclass(slots=True)
class RequestInfo:
    """One HTTP request (or websocket connection); ``operation`` is the execution context of
    the GraphQL operation an HTTP request ran (``observability.graphql.attach_to_request``),
    if any."""

    request_id: str
    websocket: bool = False
    operation: Any = None


CURRENT_REQUEST: ContextVar[RequestInfo | None] = ContextVar("recoverly_request", default=None)
# The values ``bound`` gives the lines of a block (a job's ID, phase and attempt). One
# variable holding a mapping that is replaced, never changed: merging it into a line is a
# lookup, where structlog's contextvars would walk every variable of the context.
_BOUND: ContextVar[Mapping[str, Any]] = ContextVar(
    "recoverly_log_context", default=MappingProxyType({})
)

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


# What each key seen is (a bounded number of them): 1 secret, 2 free text, 0 neither; and free
# texts known to hold no secret (an event's words, mostly). One lookup per key and line.
_SECRET, _TEXT = 1, 2
_KEY_KINDS: dict[str, int] = {}
_CLEAN_TEXTS: set[str] = set()
_CACHED = 4096


def _key_kind(key: str) -> int:
    kind = _SECRET if _SECRET_KEY.search(key) else _TEXT if key in _FREE_TEXT else 0
    if len(_KEY_KINDS) < _CACHED:
        _KEY_KINDS[key] = kind
    return kind


def _redact(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        kind = _KEY_KINDS.get(key)
        if kind is None:
            kind = _key_kind(key)
        if kind == _SECRET:
            if value is not None:
                event_dict[key] = REDACTED
        elif kind == _TEXT and isinstance(value, str) and value not in _CLEAN_TEXTS:
            text = event_dict[key] = redact_text(value)
            if text is value and len(value) < 200 and len(_CLEAN_TEXTS) < _CACHED:
                _CLEAN_TEXTS.add(value)
    return event_dict


def _add_context(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """The values bound to the block and the request ID (what the call passed wins)."""
    for key, value in _BOUND.get().items():
        event_dict.setdefault(key, value)
    request = CURRENT_REQUEST.get()
    if request is not None:
        event_dict.setdefault("request_id", request.request_id)
    return event_dict


_LEVELS = {"warn": "warning", "exception": "error", "fatal": "critical"}


def _stamp(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
    """Bound values, request ID, level, logger name and UTC time in one step (it runs for
    every line)."""
    _add_context(logger, method, event_dict)
    record = event_dict.get("_record")
    event_dict["level"] = _LEVELS.get(method, method)
    event_dict["logger"] = record.name if record is not None else getattr(logger, "name", "")
    event_dict["timestamp"] = utc_timestamp()
    return event_dict


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def utc_timestamp() -> str:
    """Now as ``2026-12-01T12:34:56.789012Z``; the date and time of day are formatted once a
    second."""
    global _second
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    second, text = _second
    if seconds != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, text)
    return f"{text}.{nanoseconds // 1000:06d}Z"


def _render_json(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> str:
    """One JSON line (orjson: a sixth of the time of ``json.dumps``); values JSON has no
    notation for are written as their ``repr``."""
    try:
        return orjson.dumps(event_dict, default=repr, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson refuses (integers past 64 bits, nesting past 255)
        return json.dumps(event_dict, default=repr)


class LineWriter:
    """Log lines to a stream, those of one event-loop turn written together: one system call
    for all the lines a turn logged (a busy server logs a line per request), at the end of
    the turn. Outside a running loop (worker threads, start-up) a line is written at once,
    after those pending. A process killed outright loses at most its current turn's lines.

    A line is its text, or the fields of a JSON line (``HotLogger``), rendered when the
    turn's lines are written: rendering them one after the other there costs less than
    rendering each amid its request's work (measured: half the cost of the request line)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self._pending: list[str | dict[str, Any]] = []
        self._due: asyncio.AbstractEventLoop | None = None  # the loop a flush is due on
        self._lock = threading.Lock()
        atexit.register(self.flush)

    def write(self, line: str | dict[str, Any]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending.append(line)
            if loop is None or loop is self._due:
                due = False
            else:
                self._due, due = loop, True
        if loop is None:
            self.flush()
        elif due:
            loop.call_soon(self.flush)

    def flush(self) -> None:
        with self._lock:
            lines, self._pending, self._due = self._pending, [], None
            if lines:
                text = "\n".join(
                    line if isinstance(line, str) else _render_json(None, "", line)
                    for line in lines
                )
                self.stream.write(text + "\n")
                self.stream.flush()


class _NamedLineLogger:
    """What structlog writes a rendered line to: the ``LineWriter``, with a name for the
    ``logger`` key."""

    def __init__(self, writer: LineWriter, name: str) -> None:
        self._writer = writer
        self.name = name

    def msg(self, message: str) -> None:
        self._writer.write(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _LineHandler(logging.Handler):
    """The libraries' stdlib records, formatted, to the same ``LineWriter`` (in order with
    Recoverly's own lines)."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record))
        except Exception:
            self.handleError(record)


# Set by ``configure_logging`` in JSON mode: the writer and level of ``HotLogger`` lines.
_DIRECT: tuple[LineWriter, int] | None = None


class HotLogger:
    """A logger for a line written on a hot path (the request log's line, one a request),
    whose keys are declared up front and hold no secret and no free text.

    In JSON mode its lines are stamped directly (no structlog bound-logger machinery, no
    masking pass: ``keys`` are checked once, here) and rendered by the ``LineWriter`` with the
    other lines of the loop turn, the same as ``get_logger(name)`` would write them; values
    bound with ``bound`` (a job's) take the general way, which masks them. In the
    development format, or before logging is configured, it is ``get_logger(name)``."""

    __slots__ = ("_keys", "_structured", "name")

    def __init__(self, name: str, keys: frozenset[str]) -> None:
        unsafe = sorted(k for k in keys if _key_kind(k) != 0 or k in _STAMPED)
        if unsafe:
            raise ValueError(f"keys that need masking or are stamped: {unsafe}")
        self.name = name
        self._keys = keys
        self._structured = get_logger(name)

    def enabled(self, level: int) -> bool:
        """Whether a line at ``level`` would be written (JSON mode; else assumed so)."""
        direct = _DIRECT
        return direct is None or level >= direct[1]

    def write(self, level: int, event: str, fields: dict[str, Any]) -> None:
        """One line: ``event`` is a fixed text (no secret), ``fields`` has declared keys (and is
        the line's from now on: it is rendered later)."""
        direct = _DIRECT
        method = _METHODS[level]
        if direct is None:
            getattr(self._structured, method)(event, **fields)
            return
        writer, threshold = direct
        if level < threshold:
            return
        fields["event"] = event
        if _BOUND.get() or not self._keys.issuperset(fields.keys() - {"event"}):
            _stamp(self, method, fields)
            writer.write(_render_json(self, method, _redact(self, method, fields)))
            return
        request = CURRENT_REQUEST.get()
        if request is not None:
            fields.setdefault("request_id", request.request_id)
        fields["level"] = method
        fields["logger"] = self.name
        fields["timestamp"] = utc_timestamp()
        writer.write(fields)


_STAMPED = frozenset({"event", "level", "logger", "timestamp"})
_METHODS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning"}


def configure_logging(settings: Settings, *, stream: Any = None) -> None:
    """Send every log line of this process to ``stream`` (stderr) in the configured format.

    Recoverly's structured lines are rendered and written by structlog directly (no stdlib
    record on the request path); the libraries' stdlib lines get the same processors."""
    global _DIRECT
    writer = LineWriter(stream or sys.stderr)
    json_lines = settings.resolved_log_format() == "json"
    level = getattr(logging, settings.log_level.upper())
    _DIRECT = (writer, level) if json_lines else None
    shared: list[Processor] = [_stamp]
    renderer: Processor = (
        _render_json
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    finish: list[Processor] = [structlog.processors.format_exc_info, _redact, renderer]
    structlog.configure(
        processors=[*shared, *finish],
        logger_factory=lambda *args: _NamedLineLogger(writer, str(args[0]) if args else ""),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish],
    )
    handler = _LineHandler(writer)
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
            _add_context,
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
    values = _BOUND.get()
    if "job" in values:
        _BOUND.set({**values, "phase": phase})


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """``values`` on every line logged inside the block, and on nothing after it."""
    token = _BOUND.set({**_BOUND.get(), **values})
    try:
        yield
    finally:
        _BOUND.reset(token)
