"""Error IDs: an unexpected failure is logged in full under a short ID, and users see only
a plain message that cites the ID (never paths, SQL or stack traces)."""

from __future__ import annotations

import logging
import secrets

log = logging.getLogger("recoverly.errors")


def new_error_id() -> str:
    return secrets.token_hex(6)


def report(summary: str, error: BaseException | None = None) -> str:
    """Log ``summary`` (and ``error`` with its traceback) under a new error ID; return it."""
    error_id = new_error_id()
    log.error("%s [error ID %s]", summary, error_id, exc_info=error)
    return error_id


def cite(message: str, error_id: str) -> str:
    """A user-facing message that cites the error ID the log holds."""
    return f"{message} (error ID {error_id})"
