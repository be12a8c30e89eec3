"""SQLModel tables, one module per area; importing this package registers them all."""

from recoverly.models.access import AccessReview
from recoverly.models.audit import AuditEvent
from recoverly.models.backups import Backup, BackupCopy, BackupPolicy
from recoverly.models.base import (
    FINAL_BACKUP_STATUSES,
    FINAL_RESTORE_STATUSES,
    AccessReviewKind,
    AccessReviewStatus,
    BackupLocation,
    BackupStatus,
    ConflictPolicy,
    CopyStatus,
    JobStatus,
    ProductKey,
    RestoreItemAction,
    RestoreItemKind,
    RestorePhase,
    RestoreStatus,
    Schedule,
    StorageMode,
    TableRow,
    saved_id,
    table_of,
    utcnow,
)
from recoverly.models.confluence import (
    ConfluenceAttachment,
    ConfluenceComment,
    ConfluencePage,
    ConfluenceSpace,
)
from recoverly.models.directory import (
    GroupMembership,
    GroupProductAccess,
    HeldMembership,
    SiteGroup,
    SiteUser,
)
from recoverly.models.instances import InstanceOperation, ProductInstance
from recoverly.models.jira import JiraAttachment, JiraComment, JiraIssue, JiraProject
from recoverly.models.jobs import Job
from recoverly.models.organizations import Admin, ApiToken, Membership, Organization
from recoverly.models.restores import Restore

__all__ = [
    "FINAL_BACKUP_STATUSES",
    "FINAL_RESTORE_STATUSES",
    "AccessReview",
    "AccessReviewKind",
    "AccessReviewStatus",
    "Admin",
    "ApiToken",
    "AuditEvent",
    "Backup",
    "BackupCopy",
    "BackupLocation",
    "BackupPolicy",
    "BackupStatus",
    "ConflictPolicy",
    "ConfluenceAttachment",
    "ConfluenceComment",
    "ConfluencePage",
    "ConfluenceSpace",
    "CopyStatus",
    "GroupMembership",
    "GroupProductAccess",
    "HeldMembership",
    "InstanceOperation",
    "JiraAttachment",
    "JiraComment",
    "JiraIssue",
    "JiraProject",
    "Job",
    "JobStatus",
    "Membership",
    "Organization",
    "ProductInstance",
    "ProductKey",
    "Restore",
    "RestoreItemAction",
    "RestoreItemKind",
    "RestorePhase",
    "RestoreStatus",
    "Schedule",
    "SiteGroup",
    "SiteUser",
    "StorageMode",
    "TableRow",
    "saved_id",
    "table_of",
    "utcnow",
]
