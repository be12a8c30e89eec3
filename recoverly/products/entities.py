"""What a backup holds, per product: one ordered list of entity specs drives export and restore.

Order matters: an entity comes after every entity it references, so a restore can map the
archive's foreign keys to new IDs as it goes (a self-reference, such as a page's parent, may
point forwards and is fixed up once the member is done).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from sqlalchemy import Table

from recoverly.models import (
    AccessReview,
    ConfluenceAttachment,
    ConfluenceComment,
    ConfluencePage,
    ConfluenceSpace,
    GroupMembership,
    GroupProductAccess,
    HeldMembership,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    ProductKey,
    RestorePhase,
    SiteGroup,
    SiteUser,
)
from recoverly.models.base import UTCDateTime, table_of

USERS_AND_GROUPS = RestorePhase.USERS_AND_GROUPS.value
CONTENT = RestorePhase.CONTENT.value
ATTACHMENTS = RestorePhase.ATTACHMENTS.value


@dataclass(frozen=True)
class EntitySpec:
    """One entity type: its archive member, table, copied columns and foreign keys.

    ``references`` maps a column to the entity it points at (values are source IDs in the
    archive). ``match_key`` names the columns (after mapping) that find a row already in
    the destination: ``on_existing`` says whether the record then maps to that row or is
    skipped together with everything that references it. ``skip_existing_refs`` skips a
    record whose reference resolves to such a pre-existing row. ``label`` identifies a row
    independently of database IDs (for content digests). ``held_by`` names a reference: a
    record whose referenced row pre-existed and grants product access (a membership of such
    a group) is written to ``held_model`` instead, where it waits for an access review.
    ``transform``, set for one restore (``selection.selected_specs``), gives the record as
    restored, or None to leave it out with everything that references it.
    """

    name: str
    member: str
    model: Any
    phase: str
    fields: tuple[str, ...]
    references: dict[str, str] = field(default_factory=dict)
    match_key: tuple[str, ...] = ()
    on_existing: Literal["map", "skip"] = "map"
    skip_existing_refs: tuple[str, ...] = ()
    restore_model: Any = None
    blob_column: str | None = None
    personal_column: str | None = None
    label: tuple[str, ...] = ()
    held_by: str | None = None
    held_model: Any = None
    transform: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None

    @property
    def table(self) -> Table:
        """The table the export reads."""
        return table_of(self.model)

    @property
    def target(self) -> Table:
        """The table a restore writes (access is restored as reviews, not applied)."""
        return table_of(self.restore_model or self.model)

    @property
    def held_target(self) -> Table | None:
        """The table of records held for review (``held_by``), if the entity has one."""
        return table_of(self.held_model) if self.held_model is not None else None

    @property
    def restored_as_is(self) -> bool:
        return self.restore_model is None

    @cached_property
    def datetime_fields(self) -> frozenset[str]:
        return frozenset(f for f in self.fields if isinstance(self.table.c[f].type, UTCDateTime))

    @cached_property
    def self_references(self) -> tuple[str, ...]:
        return tuple(c for c, target in self.references.items() if target == self.name)

    def included(self, *, include_attachments: bool, include_users_and_groups: bool) -> bool:
        if self.phase == USERS_AND_GROUPS:
            return include_users_and_groups
        if self.phase == ATTACHMENTS:
            return include_attachments
        return True


def _directory() -> list[EntitySpec]:
    return [
        EntitySpec(
            "users",
            "directory/users.jsonl",
            SiteUser,
            USERS_AND_GROUPS,
            ("account_id", "display_name", "email", "active"),
            match_key=("account_id",),
            label=("account_id",),
        ),
        EntitySpec(
            "groups",
            "directory/groups.jsonl",
            SiteGroup,
            USERS_AND_GROUPS,
            ("name",),
            match_key=("name",),
            label=("name",),
        ),
        EntitySpec(
            "group_memberships",
            "directory/group_memberships.jsonl",
            GroupMembership,
            USERS_AND_GROUPS,
            (),
            {"group_id": "groups", "user_id": "users"},
            match_key=("group_id", "user_id"),
            held_by="group_id",
            held_model=HeldMembership,
        ),
        EntitySpec(
            "group_product_access",
            "directory/group_product_access.jsonl",
            GroupProductAccess,
            USERS_AND_GROUPS,
            ("product",),
            {"group_id": "groups"},
            skip_existing_refs=("group_id",),
            restore_model=AccessReview,
        ),
    ]


JIRA_ENTITIES: tuple[EntitySpec, ...] = (
    *_directory(),
    EntitySpec(
        "projects",
        "jira/projects.jsonl",
        JiraProject,
        CONTENT,
        ("key", "name", "description", "lead_account_id"),
        label=("key",),
    ),
    EntitySpec(
        "issues",
        "jira/issues.jsonl",
        JiraIssue,
        CONTENT,
        (
            "key",
            "summary",
            "description",
            "status",
            "issue_type",
            "reporter_account_id",
            "assignee_account_id",
            "created_at",
        ),
        {"project_id": "projects"},
        label=("key",),
    ),
    EntitySpec(
        "comments",
        "jira/comments.jsonl",
        JiraComment,
        CONTENT,
        ("author_account_id", "body", "created_at"),
        {"issue_id": "issues"},
    ),
    EntitySpec(
        "attachments",
        "jira/attachments.jsonl",
        JiraAttachment,
        ATTACHMENTS,
        ("filename", "media_type", "size", "sha256"),
        {"issue_id": "issues"},
        blob_column="content",
    ),
)

CONFLUENCE_ENTITIES: tuple[EntitySpec, ...] = (
    *_directory(),
    EntitySpec(
        "spaces",
        "confluence/spaces.jsonl",
        ConfluenceSpace,
        CONTENT,
        ("key", "name", "personal"),
        match_key=("key",),
        on_existing="skip",
        personal_column="personal",
        label=("key",),
    ),
    EntitySpec(
        "pages",
        "confluence/pages.jsonl",
        ConfluencePage,
        CONTENT,
        ("title", "body", "author_account_id", "created_at"),
        {"space_id": "spaces", "parent_id": "pages"},
        label=("space_id", "title"),
    ),
    EntitySpec(
        "comments",
        "confluence/comments.jsonl",
        ConfluenceComment,
        CONTENT,
        ("author_account_id", "body", "created_at"),
        {"page_id": "pages"},
    ),
    EntitySpec(
        "attachments",
        "confluence/attachments.jsonl",
        ConfluenceAttachment,
        ATTACHMENTS,
        ("filename", "media_type", "size", "sha256"),
        {"page_id": "pages"},
        blob_column="content",
    ),
)

_BY_PRODUCT = {
    ProductKey.JIRA.value: JIRA_ENTITIES,
    ProductKey.CONFLUENCE.value: CONFLUENCE_ENTITIES,
}


def entities_for(product: str) -> tuple[EntitySpec, ...]:
    """The ordered entity specs of a product (``JIRA`` or ``CONFLUENCE``)."""
    return _BY_PRODUCT[str(product)]


def container_spec(product: str) -> EntitySpec:
    """The product's container: Jira projects, Confluence spaces (the first content entity)."""
    return next(spec for spec in entities_for(product) if spec.phase == CONTENT)


def referenced(specs: tuple[EntitySpec, ...] | list[EntitySpec]) -> frozenset[str]:
    """Names of the entities some spec points at: those need a source-to-new ID map."""
    return frozenset(target for spec in specs for target in spec.references.values())


def purge_order() -> list[Table]:
    """Every table a restore writes, children before parents (for deleting a restore's rows)."""
    rank = {ATTACHMENTS: 0, CONTENT: 1, USERS_AND_GROUPS: 2}
    specs = [
        (rank[spec.phase], -position, table)
        for entities in _BY_PRODUCT.values()
        for position, spec in enumerate(entities)
        for table in (spec.target, spec.held_target)
        if table is not None
    ]
    tables: list[Table] = []
    for _, _, table in sorted(specs, key=lambda item: item[:2]):
        if table not in tables:
            tables.append(table)
    return tables
