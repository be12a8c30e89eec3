"""GraphQL enums, built from the model enums so there is one list of values."""

from __future__ import annotations

import strawberry

from recoverly import models

ProductKey = strawberry.enum(models.ProductKey, name="ProductKey")
BackupStatus = strawberry.enum(models.BackupStatus, name="BackupStatus")
BackupLocation = strawberry.enum(models.BackupLocation, name="BackupLocation")
Schedule = strawberry.enum(models.Schedule, name="BackupSchedule")
StorageMode = strawberry.enum(models.StorageMode, name="StorageMode")
RestoreStatus = strawberry.enum(models.RestoreStatus, name="RestoreStatus")
RestorePhase = strawberry.enum(models.RestorePhase, name="RestorePhase")
AccessReviewStatus = strawberry.enum(models.AccessReviewStatus, name="AccessReviewStatus")

PRODUCT_NAMES = {models.ProductKey.JIRA: "Jira", models.ProductKey.CONFLUENCE: "Confluence"}
