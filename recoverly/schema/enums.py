"""GraphQL enums: the model enums themselves, registered with Strawberry, so there is one
list of values and the annotations stay real classes for type checkers."""

from __future__ import annotations

import strawberry

from recoverly.models import (
    AccessReviewStatus,
    BackupLocation,
    BackupStatus,
    ConflictPolicy,
    ProductKey,
    RestorePhase,
    RestoreStatus,
    Schedule,
    StorageMode,
)
from recoverly.services.errors import ErrorCode

for _enum, _name in (
    (ProductKey, "ProductKey"),
    (BackupStatus, "BackupStatus"),
    (BackupLocation, "BackupLocation"),
    (Schedule, "BackupSchedule"),
    (StorageMode, "StorageMode"),
    (RestoreStatus, "RestoreStatus"),
    (RestorePhase, "RestorePhase"),
    (AccessReviewStatus, "AccessReviewStatus"),
    (ConflictPolicy, "ConflictPolicy"),
    (ErrorCode, "ErrorCode"),
):
    strawberry.enum(_enum, name=_name)

PRODUCT_NAMES = {ProductKey.JIRA: "Jira", ProductKey.CONFLUENCE: "Confluence"}

__all__ = [
    "PRODUCT_NAMES",
    "AccessReviewStatus",
    "BackupLocation",
    "BackupStatus",
    "ConflictPolicy",
    "ErrorCode",
    "ProductKey",
    "RestorePhase",
    "RestoreStatus",
    "Schedule",
    "StorageMode",
]
