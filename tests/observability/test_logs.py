"""Log set-up as ``serve`` and ``worker`` do it, in a process of its own: the two formats,
the level, and masking of secrets whoever logs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

SCRIPT = """
import logging
from recoverly.observability.logs import configure_logging, get_logger
from recoverly.settings import Settings

configure_logging(Settings())
log = get_logger("recoverly.test")
log.debug("hidden at info")
log.info("restore queued", restore_id=7, token="tok-in-a-field")
logging.getLogger("library").warning(
    "retrying with Authorization: Bearer tok-in-text and {'secretAccessKey': 'sk-in-repr'}"
)
logging.getLogger("sqlalchemy.engine").info("SELECT 1 (a statement line)")
try:
    raise RuntimeError("connect to postgresql://app:pw-in-url@db/recoverly failed")
except RuntimeError:
    log.exception("job failed")
"""
SECRETS = ("tok-in-a-field", "tok-in-text", "sk-in-repr", "pw-in-url")


def run(script: str = SCRIPT, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, **env},
    )
    return result.stderr


def test_production_logs_are_json_lines_without_secrets() -> None:
    out = run(RECOVERLY_PRODUCTION="true")
    lines = [json.loads(line) for line in out.splitlines()]
    events = [line["event"] for line in lines]
    assert events[0] == "restore queued" and "hidden at info" not in events
    assert lines[0]["restore_id"] == 7 and lines[0]["level"] == "info"
    assert lines[0]["logger"] == "recoverly.test"
    assert lines[1]["logger"] == "library" and "[redacted]" in lines[1]["event"]
    assert not any("a statement line" in event for event in events)
    assert "RuntimeError" in lines[-1]["exception"]
    for secret in SECRETS:
        assert secret not in out


def test_development_logs_are_readable_lines_and_debug_is_a_setting() -> None:
    out = run(RECOVERLY_PRODUCTION="false", RECOVERLY_LOG_LEVEL="DEBUG")
    assert not out.lstrip().startswith("{")
    assert "hidden at info" in out
    assert "restore queued" in out and "restore_id=7" in out
    for secret in SECRETS:
        assert secret not in out


CONTEXT_SCRIPT = """
from recoverly.observability.logs import bound, configure_logging, get_logger, set_phase
from recoverly.settings import Settings

configure_logging(Settings(production=True))
log = get_logger("recoverly.test")
with bound(job="restore.run", restore_id=7, attempt=1, phase="start"):
    set_phase("CONTENT")
    log.info("inside", restore_id=8)
log.info("after")
set_phase("outside a job")
log.info("no phase", big=2**70, tags={"a"})
"""


def test_bound_values_reach_the_lines_of_their_block_only() -> None:
    inside, after, odd = (json.loads(line) for line in run(CONTEXT_SCRIPT).splitlines())
    assert inside["event"] == "inside" and inside["job"] == "restore.run"
    assert inside["phase"] == "CONTENT" and inside["attempt"] == 1
    assert inside["restore_id"] == 8  # what the call passes wins over the bound value
    assert after["event"] == "after" and not {"job", "phase", "restore_id"} & set(after)
    # set_phase names a job's phase and nothing else; values JSON cannot hold still log.
    assert "phase" not in odd and odd["big"] == 2**70 and odd["tags"] == "{'a'}"


class _Stream:
    """A stream that records each write separately."""

    def __init__(self) -> None:
        self.writes: list[str] = []

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        pass


def test_the_lines_of_one_loop_turn_are_written_together_at_its_end() -> None:
    import asyncio

    from recoverly.observability.logs import LineWriter

    stream = _Stream()
    writer = LineWriter(stream)
    writer.write("before the loop")
    assert stream.writes == ["before the loop\n"]  # outside a loop: at once

    async def requests() -> list[str]:
        writer.write("request 1")
        writer.write("request 2")
        written_meanwhile = list(stream.writes)
        await asyncio.sleep(0)  # the end of the turn
        writer.write("request 3")
        await asyncio.sleep(0)
        return written_meanwhile

    assert asyncio.run(requests()) == ["before the loop\n"]
    assert stream.writes == ["before the loop\n", "request 1\nrequest 2\n", "request 3\n"]
    # A flush due on a loop that is gone does not hold back the next loop's lines.
    writer.write("outside again")

    async def late() -> None:
        writer.write("next loop")
        await asyncio.sleep(0)

    asyncio.run(late())
    assert stream.writes[-2:] == ["outside again\n", "next loop\n"]


HOT_SCRIPT = """
import sys
from recoverly.observability.logs import HotLogger, bound, configure_logging, get_logger
from recoverly.settings import Settings

configure_logging(Settings())
keys = frozenset({"request_id", "path", "status", "admin_id", "error_codes"})
fields = {"request_id": "r" * 32, "path": "/graphql", "status": 200, "admin_id": 7,
          "error_codes": ["NOT_FOUND"]}
HotLogger("recoverly.request", keys).write(20, "http request", dict(fields))
get_logger("recoverly.request").info("http request", **fields)
HotLogger("recoverly.request", keys).write(10, "hidden at info", dict(fields))
with bound(job="restore", restore_id=3, token="tok-bound"):
    HotLogger("recoverly.request", keys).write(20, "in a job", dict(fields))
try:
    HotLogger("recoverly.request", frozenset({"path", "api_key"}))
except ValueError as error:
    print(error, file=sys.stderr)
"""


def test_a_hot_path_line_is_the_line_the_general_logger_writes() -> None:
    """The request line's direct rendering writes what structlog's way would, but for the
    time; lines in a block with bound values take the general way, which masks them; a
    key that would need masking cannot be declared."""
    *lines, refused = run(HOT_SCRIPT, RECOVERLY_PRODUCTION="true").splitlines()
    hot, general, in_job = (json.loads(line) for line in lines)
    assert hot.pop("timestamp") and general.pop("timestamp")
    assert hot == general
    assert list(hot) == list(general)  # the same order of keys, too
    assert in_job["restore_id"] == 3 and in_job["token"] == "[redacted]"
    assert refused == "keys that need masking or are stamped: ['api_key']"
