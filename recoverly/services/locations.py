"""Storage location detection: where a restore would read a backup from, and why not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from recoverly.models import Backup, BackupCopy, BackupLocation, BackupStatus, CopyStatus

RESTORABLE_STATUSES = frozenset({BackupStatus.COMPLETED, BackupStatus.INCOMPLETE})
PLACES = {
    BackupLocation.INTERNAL_STORAGE: "internal storage",
    BackupLocation.CUSTOMER_STORAGE: "your bucket",
}
NO_COPY_HINT = (
    "create a backup policy with customer storage, or run a new backup, to have a restorable copy"
)


@dataclass(frozen=True)
class Availability:
    copy: BackupCopy | None
    reason: str | None

    @property
    def location(self) -> BackupLocation | None:
        return self.copy.location if self.copy else None

    @property
    def available(self) -> bool:
        return self.copy is not None


def copy_is_live(copy: BackupCopy, now: datetime) -> bool:
    if copy.status != CopyStatus.AVAILABLE:
        return False
    return copy.expires_at is None or copy.expires_at > now


def availability(backup: Backup, copies: Sequence[BackupCopy], now: datetime) -> Availability:
    """The internal copy while it exists, else the customer copy, else none with a reason."""
    if backup.status not in RESTORABLE_STATUSES and backup.status != BackupStatus.EXPIRED:
        return Availability(None, f"the backup is {backup.status.lower().replace('_', ' ')}")
    live = {c.location: c for c in copies if copy_is_live(c, now)}
    for location in (BackupLocation.INTERNAL_STORAGE, BackupLocation.CUSTOMER_STORAGE):
        if location in live:
            return Availability(live[location], None)
    missing = [PLACES[c.location] for c in copies if c.status == CopyStatus.MISSING]
    if missing:
        return Availability(
            None,
            f"the archive is missing or unreadable in {' and in '.join(sorted(set(missing)))}: "
            f"{NO_COPY_HINT}",
        )
    return Availability(
        None,
        "the copy in internal storage expired after the retention period and there is "
        f"no copy in customer storage: {NO_COPY_HINT}",
    )
