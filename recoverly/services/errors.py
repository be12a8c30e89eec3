"""Expected failures of domain operations, with stable codes the API returns as UserErrors."""

from __future__ import annotations

from enum import StrEnum

from recoverly.errors import RecoverlyError


class ErrorCode(StrEnum):
    NOT_FOUND = "NOT_FOUND"
    INVALID_INPUT = "INVALID_INPUT"
    PRODUCT_MISMATCH = "PRODUCT_MISMATCH"
    DESTINATION_BUSY = "DESTINATION_BUSY"
    DESTINATION_NOT_EMPTY = "DESTINATION_NOT_EMPTY"
    BACKUP_NOT_AVAILABLE = "BACKUP_NOT_AVAILABLE"
    ALREADY_FINAL = "ALREADY_FINAL"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    STORAGE_UNREACHABLE = "STORAGE_UNREACHABLE"
    ORGANIZATION_MISMATCH = "ORGANIZATION_MISMATCH"


class ServiceError(RecoverlyError):
    """An expected failure: the operation changed nothing."""

    def __init__(self, code: ErrorCode, message: str, *, field: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def not_found(what: str, *, field: list[str] | None = None) -> ServiceError:
    return ServiceError(ErrorCode.NOT_FOUND, f"{what} not found", field=field)
