"""GraphQL enums: the model enums themselves, registered with Strawberry, so there is one
list of values and the annotations stay real classes for type checkers."""

from __future__ import annotations

import strawberry

from recoverly.models import (
    AccessReviewKind,
    AccessReviewStatus,
    BackupLocation,
    BackupStatus,
    ConflictPolicy,
    ProductKey,
    RestoreItemAction,
    RestoreItemKind,
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
    (AccessReviewKind, "AccessReviewKind"),
    (RestoreItemKind, "RestoreItemKind"),
    (RestoreItemAction, "RestoreItemAction"),
    (ConflictPolicy, "ConflictPolicy"),
    (ErrorCode, "ErrorCode"),
):
    strawberry.enum(_enum, name=_name)

PRODUCT_NAMES = {ProductKey.JIRA: "Jira", ProductKey.CONFLUENCE: "Confluence"}

__all__ = [
    "PRODUCT_NAMES",
    "AccessReviewKind",
    "AccessReviewStatus",
    "BackupLocation",
    "BackupStatus",
    "ConflictPolicy",
    "ErrorCode",
    "ProductKey",
    "RestoreItemAction",
    "RestoreItemKind",
    "RestorePhase",
    "RestoreStatus",
    "Schedule",
    "StorageMode",
]
