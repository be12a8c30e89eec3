"""The demo's product sites: users, groups, access, and Jira or Confluence content."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.demo import content
from recoverly.demo.bulk import BLOB_BATCH_SIZE, BatchWriter, insert_rows
from recoverly.demo.content import Person
from recoverly.models import (
    ConfluenceAttachment,
    ConfluenceComment,
    ConfluencePage,
    ConfluenceSpace,
    GroupMembership,
    GroupProductAccess,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    ProductKey,
    SiteGroup,
    SiteUser,
)

JIRA, CONFLUENCE = ProductKey.JIRA, ProductKey.CONFLUENCE


@dataclass(frozen=True)
class GroupSpec:
    """A group: the share of users in it, the product access it grants, whether admins join."""

    name: str
    share: float
    product: ProductKey | None = None
    admins: bool = False
    # Members are the users no other group gives product access: they are billable only
    # through this group (chosen after the others, so their draws are unchanged).
    outsiders: bool = False


@dataclass
class SitePlan:
    """The data of one product instance."""

    instance_id: int
    product: ProductKey
    seed: str
    people: Sequence[Person] = ()
    admins: Sequence[Person] = ()
    groups: Sequence[GroupSpec] = ()
    containers: Sequence[tuple[str, str]] = ()  # Jira projects or Confluence spaces
    personal_space: Person | None = None
    items: int = 0  # issues or pages
    max_comments: int = 0  # per item; the average is half of it
    attachments: int = 0
    rng: random.Random = field(init=False)

    async def write(self, conn: AsyncConnection) -> None:
        self.rng = random.Random(f"recoverly-demo:{self.seed}")
        await self._directory(conn)
        if self.product is JIRA:
            await self._jira(conn)
        else:
            await self._confluence(conn)

    def _author(self) -> str | None:
        return self.rng.choice(self.people).account_id if self.people else None

    async def _directory(self, conn: AsyncConnection) -> None:
        """Users, groups (overlapping memberships) and applied product access."""
        if not self.people:
            return
        user_rows = [
            {
                "instance_id": self.instance_id,
                "account_id": p.account_id,
                "display_name": p.display_name,
                "email": p.email,
                "active": p.active,
            }
            for p in self.people
        ]
        user_ids = await insert_rows(conn, SiteUser, user_rows, returning=True)
        group_rows = [{"instance_id": self.instance_id, "name": g.name} for g in self.groups]
        group_ids = await insert_rows(conn, SiteGroup, group_rows, returning=True)
        admin_accounts = {p.account_id for p in self.admins}
        members: list[dict[str, Any]] = []
        with_access: set[int] = set()
        for spec, group_id in zip(self.groups, group_ids, strict=True):
            if spec.outsiders:
                chosen = [u for u in user_ids if u not in with_access]
            else:
                chosen = [
                    user_id
                    for person, user_id in zip(self.people, user_ids, strict=True)
                    if (spec.admins and person.account_id in admin_accounts)
                    or self.rng.random() < spec.share
                ] or [self.rng.choice(user_ids)]
            if spec.product is not None:
                with_access.update(chosen)
            members.extend(
                {"instance_id": self.instance_id, "group_id": group_id, "user_id": u}
                for u in chosen
            )
        await insert_rows(conn, GroupMembership, members)
        access = [
            {"instance_id": self.instance_id, "group_id": gid, "product": spec.product.value}
            for spec, gid in zip(self.groups, group_ids, strict=True)
            if spec.product is not None
        ]
        await insert_rows(conn, GroupProductAccess, access)

    async def _jira(self, conn: AsyncConnection) -> None:
        """Projects, issues (keys numbered in creation order), comments, attachments."""
        rng, iid = self.rng, self.instance_id
        project_rows = [
            {
                "instance_id": iid,
                "key": key,
                "name": name,
                "description": f"Work tracked by the {name} team.",
                "lead_account_id": self._author(),
            }
            for key, name in self.containers
        ]
        project_ids = await insert_rows(conn, JiraProject, project_rows, returning=True)
        weights = [len(self.containers) - i + 2 for i in range(len(self.containers))]
        counters = [0] * len(self.containers)
        issue_rows: list[dict[str, Any]] = []
        times = sorted(content.content_time(rng) for _ in range(self.items))
        for n, created_at in enumerate(times):
            p = rng.choices(range(len(self.containers)), weights)[0]
            counters[p] += 1
            issue_type = rng.choices(content.ISSUE_TYPES, content.ISSUE_TYPE_WEIGHTS)[0]
            status = rng.choices(content.STATUSES, content.STATUS_WEIGHTS)[0]
            if rng.random() < 0.8 * (1 - n / len(times)):
                status = "Done"  # older issues are mostly done
            assignee = None if status == "To Do" and rng.random() < 0.5 else self._author()
            issue_rows.append(
                {
                    "instance_id": iid,
                    "project_id": project_ids[p],
                    "key": f"{self.containers[p][0]}-{counters[p]}",
                    "summary": content.issue_summary(rng),
                    "description": content.issue_description(rng, issue_type),
                    "status": status,
                    "issue_type": issue_type,
                    "reporter_account_id": self._author(),
                    "assignee_account_id": assignee,
                    "created_at": created_at,
                }
            )
        issue_ids = await insert_rows(conn, JiraIssue, issue_rows, returning=True)
        await self._comments(conn, JiraComment, "issue_id", issue_ids, times)
        await self._attachments(conn, JiraAttachment, "issue_id", issue_ids)

    async def _confluence(self, conn: AsyncConnection) -> None:
        """Spaces (and a personal space), page trees, comments, attachments."""
        rng, iid = self.rng, self.instance_id
        space_rows = [
            {"instance_id": iid, "key": key, "name": name, "personal": False}
            for key, name in self.containers
        ]
        owner = self.personal_space
        if owner is not None:
            key = "~" + owner.display_name.split()[0].lower()
            space_rows.append(
                {"instance_id": iid, "key": key, "name": owner.display_name, "personal": True}
            )
        space_ids = await insert_rows(conn, ConfluenceSpace, space_rows, returning=True)
        # Team spaces share the pages by weight; a personal space gets a small slice.
        weights = [1.0 if not row["personal"] else 0.2 for row in space_rows]
        plan: list[tuple[int, int]] = []  # (space index, tree depth)
        for _ in range(self.items):
            plan.append((rng.choices(range(len(space_ids)), weights)[0], rng.choice((0, 1, 1, 2))))
        seen: list[set[str]] = [set() for _ in space_ids]
        # Pages are inserted level by level so that a child's parent id is known.
        by_level: list[list[list[int]]] = [[[] for _ in space_ids] for _ in range(3)]
        page_ids: list[int] = []
        times: list[Any] = []
        for depth in range(3):
            rows, spaces = [], []
            for space, wanted in plan:
                if wanted != depth:
                    continue
                parents = by_level[depth - 1][space] if depth else []
                title = content.page_title(rng, seen[space])
                personal = owner is not None and bool(space_rows[space]["personal"])
                author = owner.account_id if personal and owner else self._author()
                created_at = content.content_time(rng)
                rows.append(
                    {
                        "instance_id": iid,
                        "space_id": space_ids[space],
                        "parent_id": rng.choice(parents) if parents else None,
                        "title": title,
                        "body": content.page_body(rng, title),
                        "author_account_id": author,
                        "created_at": created_at,
                    }
                )
                spaces.append(space)
                times.append(created_at)
            ids = await insert_rows(conn, ConfluencePage, rows, returning=True)
            for space, page_id in zip(spaces, ids, strict=True):
                by_level[depth][space].append(page_id)
            page_ids.extend(ids)
        await self._comments(conn, ConfluenceComment, "page_id", page_ids, times)
        await self._attachments(conn, ConfluenceAttachment, "page_id", page_ids)

    async def _comments(
        self, conn: AsyncConnection, model: Any, parent: str, ids: list[int], times: list[Any]
    ) -> None:
        writer = BatchWriter(conn, model)
        for parent_id, created_at in zip(ids, times, strict=True):
            for n in range(self.rng.randint(0, self.max_comments)):
                row = {
                    "instance_id": self.instance_id,
                    parent: parent_id,
                    "author_account_id": self._author(),
                    "body": content.comment_body(self.rng),
                    "created_at": created_at + timedelta(hours=n * 7 + self.rng.randrange(48)),
                }
                await writer.add(row)
        await writer.flush()

    async def _attachments(
        self, conn: AsyncConnection, model: Any, parent: str, ids: list[int]
    ) -> None:
        if not ids:
            return
        writer = BatchWriter(conn, model, BLOB_BATCH_SIZE)
        for number in range(1, self.attachments + 1):
            blob = content.attachment(self.rng, number)
            row = {
                "instance_id": self.instance_id,
                parent: self.rng.choice(ids),
                "filename": blob.filename,
                "media_type": blob.media_type,
                "size": len(blob.content),
                "sha256": blob.sha256,
                "content": blob.content,
            }
            await writer.add(row)
        await writer.flush()


# --- The demo's sites ----------------------------------------------------------------

ADA = content.fixed_person("Ada Admin", "ada@acme.example", "recoverly-demo:ada")

CONTRACTORS = "contractors"
JIRA_GROUPS = (
    GroupSpec("jira-software-users", 0.85, JIRA),
    GroupSpec("jira-admins", 0.08, JIRA, admins=True),
    GroupSpec("developers", 0.45, JIRA),
    GroupSpec("qa", 0.15, JIRA),
    GroupSpec("support", 0.2),
    GroupSpec("site-admins", 0.03, admins=True),
    # Offboarded after the demo backups (their Jira access revoked): a restore brings the
    # group back, and approving its review adds billable users.
    GroupSpec(CONTRACTORS, 0.0, JIRA, outsiders=True),
)
CONFLUENCE_GROUPS = (
    GroupSpec("confluence-users", 0.9, CONFLUENCE),
    GroupSpec("confluence-admins", 0.05, CONFLUENCE, admins=True),
    GroupSpec("writers", 0.3, CONFLUENCE),
    GroupSpec("marketing", 0.15),
    GroupSpec("support", 0.2),
    GroupSpec("site-admins", 0.03, admins=True),
)
# Spaces of Acme Confluence that the restore target already holds (with other pages).
TARGET_SPACE_KEYS = ("HR", "MKT")


def site_plans(scale: int, ids: dict[str, int]) -> list[SitePlan]:
    """What each instance holds; ``scale`` multiplies the Acme sites' data."""
    acme = content.make_people(
        random.Random("recoverly-demo:acme-people"), 50 * scale, "acme.example", first=ADA
    )
    jira_people = acme[: 40 * scale]  # Ada plus 40N - 1 others ...
    confluence_people = [ADA, *acme[10 * scale + 1 :]]  # ... 30N of them in both sites
    initech = content.make_people(random.Random("recoverly-demo:initech"), 5, "initech.example")
    globex = content.make_people(random.Random("recoverly-demo:globex"), 5, "globex.example")
    spaces = {key: name for key, name in content.CONFLUENCE_SPACES}
    return [
        SitePlan(
            ids["acme_jira"], JIRA, "acme-jira", jira_people, [ADA], JIRA_GROUPS,
            content.JIRA_PROJECTS, items=2000 * scale, max_comments=4,
            attachments=100 * scale,
        ),
        SitePlan(
            ids["acme_confluence"], CONFLUENCE, "acme-confluence", confluence_people, [ADA],
            CONFLUENCE_GROUPS, content.CONFLUENCE_SPACES, personal_space=ADA,
            items=1000 * scale, max_comments=3, attachments=60 * scale,
        ),
        SitePlan(
            ids["acme_confluence_target"], CONFLUENCE, "acme-confluence-target",
            containers=[(key, spaces[key]) for key in TARGET_SPACE_KEYS], items=6,
        ),
        SitePlan(
            ids["initech_jira"], JIRA, "initech-jira", initech, initech[:1],
            (
                GroupSpec("jira-software-users", 1.0, JIRA),
                GroupSpec("jira-admins", 0.0, JIRA, admins=True),
            ),
            [("TPS", "TPS Reports")], items=50, max_comments=2, attachments=5,
        ),
        SitePlan(
            ids["globex_jira"], JIRA, "globex-jira", globex, globex[:1],
            (GroupSpec("jira-software-users", 1.0, JIRA),), [("GLX", "Globex Operations")],
            items=30, max_comments=2, attachments=3,
        ),
        SitePlan(
            ids["globex_confluence"], CONFLUENCE, "globex-confluence", globex, globex[:1],
            (GroupSpec("confluence-users", 1.0, CONFLUENCE),), [("GLX", "Globex Handbook")],
            items=20, max_comments=2, attachments=2,
        ),
    ]  # fmt: skip
