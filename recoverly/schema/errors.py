"""Typed, stable errors of mutations: expected failures are never top-level GraphQL errors."""

from __future__ import annotations

import strawberry

from recoverly.schema.enums import ErrorCode
from recoverly.services import errors


@strawberry.type(description="An expected failure of a mutation; the mutation changed nothing.")
class UserError:
    code: ErrorCode
    message: str
    field: list[str] | None = None

    @classmethod
    def from_error(cls, error: errors.ServiceError) -> UserError:
        return cls(code=error.code, message=error.message, field=error.field)


def user_errors(errors: list[errors.ServiceError]) -> list[UserError]:
    return [UserError.from_error(error) for error in errors]
