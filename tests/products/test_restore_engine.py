"""Restoring archives: exact copies, resumable after a crash, purgeable, Confluence merge rules."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from recoverly.database import Database
from recoverly.models import (
    AccessReview,
    AccessReviewKind,
    AccessReviewStatus,
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
    ProductInstance,
    ProductKey,
    Restore,
    SiteGroup,
    SiteUser,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.digest import content_digest
from recoverly.products.restore_engine import (
    Checkpoint,
    RestoreIncompleteError,
    RestoreOptions,
    RestoreResult,
    RestoreStopped,
    plan_restore,
    restore_archive,
)
from recoverly.products.restore_plan import destination_is_empty
from recoverly.services.restore_job import RestoreRowStore, purge
from tests.products.conftest import LIMIT, MakeDb, Seeded, count, export, instance, new_restore

PRODUCT_TABLES = (
    SiteUser,
    SiteGroup,
    GroupMembership,
    GroupProductAccess,
    AccessReview,
    JiraProject,
    JiraIssue,
    JiraComment,
    JiraAttachment,
    ConfluenceSpace,
    ConfluencePage,
    ConfluenceComment,
    ConfluenceAttachment,
)
PHASES = ["USERS_AND_GROUPS", "CONTENT", "ATTACHMENTS", "FINALIZING"]


class Crash(Exception):
    """Stands in for the process dying."""


@dataclass
class Progress:
    """Records progress calls; raises ``Crash`` on call number ``crash_at``."""

    crash_at: int | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, phase: str, done: int) -> None:
        self.calls.append((phase, done))
        if len(self.calls) == self.crash_at:
            raise Crash(f"crash after progress call {self.crash_at}")

    @property
    def done(self) -> list[int]:
        return [done for _, done in self.calls]


async def never_stop() -> bool:
    return False


async def restore(
    db: Database,
    seeded: Seeded,
    restore_id: int,
    *,
    destination: str,
    progress: Progress | None = None,
    chunk_size: int = 2000,
    should_stop: Any = never_stop,
    **options: bool,
) -> RestoreResult:
    archive = seeded.jira_archive if "jira" in destination else seeded.confluence_archive
    store = RestoreRowStore(
        db, restore_id, on_progress=progress or Progress(), should_stop=should_stop
    )
    order = replace(
        await store.order(),
        destination_id=seeded.info.instances[destination],
        options=RestoreOptions(**options),
    )
    with ArchiveReader(archive, max_expansion_bytes=LIMIT) as reader:
        return await restore_archive(db, reader, order, store, chunk_size=chunk_size)


async def digest(db: Database, seeded: Seeded, name: str) -> dict[str, Any]:
    return await content_digest(db, seeded.info.instances[name])


async def jira_restore(db: Database, seeded: Seeded) -> int:
    return await new_restore(db, seeded.info, source="acme_jira", destination="acme_jira_sandbox")


async def confluence_restore(db: Database, seeded: Seeded) -> int:
    return await new_restore(
        db, seeded.info, source="acme_confluence", destination="acme_confluence_target"
    )


async def empty(db: Database, destination: ProductInstance) -> bool:
    async with db.session() as session:
        return await destination_is_empty(await session.connection(), destination)


async def rows(db: Database, statement: Any) -> list[Any]:
    async with db.session() as session:
        return list((await (await session.connection()).execute(statement)).all())


async def access_reviews(db: Database, restore_id: int) -> list[tuple[str, str, str]]:
    """(group name, product, status) of the restore's access reviews."""
    review, group = AccessReview.__table__, SiteGroup.__table__  # type: ignore[attr-defined]
    statement = (
        select(group.c.name, review.c.product, review.c.status)
        .join(group, group.c.id == review.c.group_id)
        .where(review.c.restore_id == restore_id)
    )
    return sorted(tuple(row) for row in await rows(db, statement))


async def groups_with_access(db: Database, instance_id: int) -> list[tuple[str, str]]:
    access, group = GroupProductAccess.__table__, SiteGroup.__table__  # type: ignore[attr-defined]
    statement = (
        select(group.c.name, access.c.product)
        .join(group, group.c.id == access.c.group_id)
        .where(access.c.instance_id == instance_id)
    )
    return sorted(tuple(row) for row in await rows(db, statement))


# --- Jira into the empty sandbox -----------------------------------------------------


async def test_restore_into_empty_sandbox_reproduces_the_site(db: Database, seeded: Seeded) -> None:
    restore_id = await jira_restore(db, seeded)
    progress = Progress()
    result = await restore(
        db, seeded, restore_id, destination="acme_jira_sandbox", progress=progress
    )

    assert await digest(db, seeded, "acme_jira_sandbox") == await digest(db, seeded, "acme_jira")
    with ArchiveReader(seeded.jira_archive, max_expansion_bytes=LIMIT) as reader:
        manifest = reader.manifest
    assert result.entity_counts == manifest.entity_counts
    assert result.skipped_spaces == []
    jira, sandbox = seeded.info.instances["acme_jira"], seeded.info.instances["acme_jira_sandbox"]
    pending = [(name, product, "PENDING") for name, product in await groups_with_access(db, jira)]
    assert await access_reviews(db, restore_id) == pending
    assert result.access_reviews == len(pending) == 5
    assert await count(db, GroupProductAccess, instance_id=sandbox) == 0

    total = manifest.total_records
    # Into an empty site every record is written: progress ends at the record count.
    assert progress.done == sorted(progress.done) and progress.calls[-1][1] == total
    phases = [phase for phase, _ in progress.calls]
    assert sorted(set(phases), key=phases.index) == PHASES
    async with db.session() as session:
        row = await session.get(Restore, restore_id)
    assert row is not None and row.items_done == total
    assert row.checkpoint is not None and row.checkpoint["entity"] == "attachments"


@pytest.mark.parametrize("crash_at", [2, 7, 13, 20])
async def test_crashed_restore_resumes_to_the_same_result(
    db: Database, seeded: Seeded, crash_at: int
) -> None:
    restore_id = await jira_restore(db, seeded)
    first = Progress(crash_at=crash_at)
    with pytest.raises(Crash):
        await restore(
            db, seeded, restore_id, destination="acme_jira_sandbox", progress=first, chunk_size=500
        )

    second = Progress()  # the chunk size may change: the checkpoint counts records
    await restore(db, seeded, restore_id, destination="acme_jira_sandbox", progress=second)

    assert await digest(db, seeded, "acme_jira_sandbox") == await digest(db, seeded, "acme_jira")
    assert len(await access_reviews(db, restore_id)) == 5
    done = first.done + second.done
    assert done == sorted(done), "items_done went backwards across the resume"


async def test_crash_inside_a_chunk_transaction_writes_nothing_of_it(
    db: Database, seeded: Seeded, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows and checkpoint commit together: a crash between them loses both, not one."""
    restore_id = await jira_restore(db, seeded)
    save = RestoreRowStore.save_checkpoint
    calls = 0

    async def crash_on_the_ninth(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal calls
        calls += 1
        await save(self, *args, **kwargs)
        if calls == 9:
            raise Crash("killed after the insert, before the commit")

    monkeypatch.setattr(RestoreRowStore, "save_checkpoint", crash_on_the_ninth)
    with pytest.raises(Crash):
        await restore(db, seeded, restore_id, destination="acme_jira_sandbox", chunk_size=700)
    monkeypatch.undo()

    await restore(db, seeded, restore_id, destination="acme_jira_sandbox", chunk_size=700)
    assert await digest(db, seeded, "acme_jira_sandbox") == await digest(db, seeded, "acme_jira")


async def test_lost_rows_fail_the_final_check(db: Database, seeded: Seeded) -> None:
    restore_id = await jira_restore(db, seeded)
    with pytest.raises(Crash):
        await restore(
            db, seeded, restore_id, destination="acme_jira_sandbox", progress=Progress(crash_at=14)
        )
    comments = JiraComment.__table__  # type: ignore[attr-defined]
    async with db.transaction() as session:
        lost = delete(comments).where(comments.c.restore_id == restore_id, comments.c.id % 50 == 0)
        assert (await (await session.connection()).execute(lost)).rowcount > 0

    with pytest.raises(RestoreIncompleteError, match="comments"):
        await restore(db, seeded, restore_id, destination="acme_jira_sandbox")


async def test_should_stop_stops_before_writing_more(db: Database, seeded: Seeded) -> None:
    restore_id = await jira_restore(db, seeded)
    asked = 0

    async def stop_on_the_fourth_chunk() -> bool:
        nonlocal asked
        asked += 1
        return asked >= 4

    with pytest.raises(RestoreStopped):
        await restore(
            db,
            seeded,
            restore_id,
            destination="acme_jira_sandbox",
            should_stop=stop_on_the_fourth_chunk,
        )
    sandbox = seeded.info.instances["acme_jira_sandbox"]
    assert await count(db, GroupMembership, instance_id=sandbox) > 0
    assert await count(db, JiraProject, instance_id=sandbox) == 0  # the 4th chunk

    await restore(db, seeded, restore_id, destination="acme_jira_sandbox")
    assert await digest(db, seeded, "acme_jira_sandbox") == await digest(db, seeded, "acme_jira")


async def test_purge_after_a_partial_restore_empties_the_sandbox(
    db: Database, seeded: Seeded
) -> None:
    restore_id = await jira_restore(db, seeded)
    with pytest.raises(Crash):
        await restore(
            db, seeded, restore_id, destination="acme_jira_sandbox", progress=Progress(crash_at=12)
        )
    sandbox = seeded.info.instances["acme_jira_sandbox"]
    tagged = [m for m in PRODUCT_TABLES if "restore_id" in m.__table__.c]  # type: ignore[union-attr]
    written = [await count(db, model, restore_id=restore_id) for model in tagged]
    assert sum(written) > 0

    # An admin approved one review while the restore ran: that access goes with the group.
    review = AccessReview.__table__  # type: ignore[attr-defined]
    (group_id,) = (await rows(db, select(review.c.group_id).limit(1)))[0]
    async with db.transaction() as session:
        session.add(GroupProductAccess(instance_id=sandbox, group_id=group_id, product="JIRA"))

    assert await purge(db, restore_id=restore_id, chunk_size=300) == sum(written) + 1
    for model in PRODUCT_TABLES:
        assert await count(db, model, instance_id=sandbox) == 0, model.__name__
    async with db.session() as session:
        row = await session.get(Restore, restore_id)
    assert row is not None and row.checkpoint is None


async def test_options_skip_users_groups_and_attachments(db: Database, seeded: Seeded) -> None:
    restore_id = await jira_restore(db, seeded)
    progress = Progress()
    result = await restore(
        db,
        seeded,
        restore_id,
        destination="acme_jira_sandbox",
        progress=progress,
        include_users_and_groups=False,
        include_attachments=False,
    )
    sandbox = seeded.info.instances["acme_jira_sandbox"]
    assert set(result.entity_counts) == {"projects", "issues", "comments"}
    for model in (SiteUser, SiteGroup, GroupMembership, AccessReview, JiraAttachment):
        assert await count(db, model, instance_id=sandbox) == 0
    assert await count(db, JiraIssue, instance_id=sandbox) == 2000
    assert progress.calls[-1][1] == sum(result.entity_counts.values())


# --- Confluence into a site that already has some of the spaces ----------------------


async def test_confluence_restore_skips_the_spaces_the_target_has(
    db: Database, seeded: Seeded
) -> None:
    target = seeded.info.instances["acme_confluence_target"]
    space = ConfluenceSpace.__table__  # type: ignore[attr-defined]
    page = ConfluencePage.__table__  # type: ignore[attr-defined]
    pages_in_shared = (
        select(page.c.id)
        .join(space, space.c.id == page.c.space_id)
        .where(space.c.instance_id == target, space.c.key.in_(["HR", "MKT"]))
    )
    before = await rows(db, pages_in_shared)
    with ArchiveReader(seeded.confluence_archive, max_expansion_bytes=LIMIT) as reader:
        keys = {record["key"] for record in reader.records("confluence/spaces.jsonl")}
        archived_pages = reader.manifest.entity_counts["pages"]

    restore_id = await confluence_restore(db, seeded)
    result = await restore(db, seeded, restore_id, destination="acme_confluence_target")

    assert result.skipped_spaces == ["HR", "MKT"]
    assert result.entity_counts["spaces"] == len(keys) - 2
    assert result.skipped["pages"] > 0
    assert result.entity_counts["pages"] + result.skipped["pages"] == archived_pages
    target_keys = {
        key for (key,) in await rows(db, select(space.c.key).where(space.c.instance_id == target))
    }
    assert target_keys == keys
    assert await rows(db, pages_in_shared) == before, "pages of existing spaces were touched"
    assert len(await access_reviews(db, restore_id)) == result.access_reviews == 3


async def test_confluence_resume_rebuilds_skipped_spaces(make_db: MakeDb, seeded: Seeded) -> None:
    reference, db = await make_db(), await make_db()
    await restore(
        reference,
        seeded,
        await confluence_restore(reference, seeded),
        destination="acme_confluence_target",
    )

    restore_id = await confluence_restore(db, seeded)
    for crash_at in (9, 15):  # in pages, then in comments
        with pytest.raises(Crash):
            await restore(
                db,
                seeded,
                restore_id,
                destination="acme_confluence_target",
                progress=Progress(crash_at=crash_at),
                chunk_size=150,
            )
    result = await restore(db, seeded, restore_id, destination="acme_confluence_target")

    assert result.skipped_spaces == ["HR", "MKT"]
    expected = await digest(reference, seeded, "acme_confluence_target")
    assert await digest(db, seeded, "acme_confluence_target") == expected


async def test_second_restore_maps_users_groups_and_memberships(
    db: Database, seeded: Seeded
) -> None:
    target = seeded.info.instances["acme_confluence_target"]
    await restore(
        db, seeded, await confluence_restore(db, seeded), destination="acme_confluence_target"
    )
    after_first = await digest(db, seeded, "acme_confluence_target")

    restore_id = await confluence_restore(db, seeded)
    result = await restore(db, seeded, restore_id, destination="acme_confluence_target")

    assert sum(result.entity_counts.values()) == 0
    assert result.existing["users"] == 40 and result.existing["groups"] == 6
    assert result.existing["group_memberships"] > 0
    assert result.access_reviews == 0 and await access_reviews(db, restore_id) == []
    assert len(result.skipped_spaces) == 8
    assert await digest(db, seeded, "acme_confluence_target") == after_first
    assert await count(db, SiteUser, instance_id=target) == 40


async def test_purge_leaves_a_non_empty_target_as_it_was(db: Database, seeded: Seeded) -> None:
    before = await digest(db, seeded, "acme_confluence_target")
    restore_id = await confluence_restore(db, seeded)
    await restore(db, seeded, restore_id, destination="acme_confluence_target")
    assert await digest(db, seeded, "acme_confluence_target") != before

    assert await purge(db, restore_id=restore_id) > 0
    assert await digest(db, seeded, "acme_confluence_target") == before
    assert await access_reviews(db, restore_id) == []


async def test_pages_whose_parent_comes_later_are_linked(
    db: Database, seeded: Seeded, tmp_path: Path
) -> None:
    """Export is in ID order; a page moved under a newer page points forwards in the archive."""
    source = seeded.info.instances["acme_confluence"]
    page = ConfluencePage.__table__  # type: ignore[attr-defined]
    roots = await rows(
        db,
        select(page.c.id, page.c.space_id)
        .where(page.c.instance_id == source, page.c.parent_id.is_(None))
        .order_by(page.c.id),
    )
    moved, space_id = roots[0]
    newest = await rows(
        db,
        select(page.c.id)
        .where(page.c.space_id == space_id, page.c.parent_id.is_not(None))
        .order_by(page.c.id.desc())
        .limit(1),
    )
    async with db.transaction() as session:
        move = update(page).where(page.c.id == moved).values(parent_id=newest[0][0])
        await (await session.connection()).execute(move)
    archive = tmp_path / "moved.zip"
    await export(db, source, archive, include_personal_spaces=True)

    empty = await new_confluence_site(db, seeded)
    restore_id = await confluence_restore(db, seeded)
    assert empty.id is not None
    store = RestoreRowStore(db, restore_id, on_progress=Progress(), should_stop=never_stop)
    order = replace(await store.order(), destination_id=empty.id)
    with ArchiveReader(archive, max_expansion_bytes=LIMIT) as reader:
        await restore_archive(db, reader, order, store, chunk_size=100)
    assert await content_digest(db, empty.id) == await content_digest(db, source)


async def new_confluence_site(db: Database, seeded: Seeded) -> ProductInstance:
    site = ProductInstance(
        organization_id=seeded.info.organizations["acme"],
        product=ProductKey.CONFLUENCE,
        name="Empty Confluence",
        url="https://empty.example.net/wiki",
    )
    async with db.transaction() as session:
        session.add(site)
    return site


# --- Planning ------------------------------------------------------------------------


async def test_plan_matches_what_the_restore_then_does(db: Database, seeded: Seeded) -> None:
    target = await instance(db, seeded.info.instances["acme_confluence_target"])
    with ArchiveReader(seeded.confluence_archive, max_expansion_bytes=LIMIT) as reader:
        assert target.id is not None
        plan = await plan_restore(db, reader, destination_id=target.id, options=RestoreOptions())
        total = reader.manifest.total_records
    assert plan.skipped_spaces == ["HR", "MKT"]
    assert await empty(db, target) is False
    # Records of the skipped spaces are not part of the restore's progress.
    assert plan.items_total == sum(plan.entity_counts.values()) < total
    assert sorted(plan.groups_with_access) == [
        ("confluence-admins", "CONFLUENCE"),
        ("confluence-users", "CONFLUENCE"),
        ("writers", "CONFLUENCE"),
    ]
    assert 0 < plan.attachments < 60 and plan.attachment_bytes > 0

    result = await restore(
        db, seeded, await confluence_restore(db, seeded), destination="acme_confluence_target"
    )
    assert plan.entity_counts == result.entity_counts
    assert plan.attachments == result.entity_counts["attachments"]
    pending = await count(db, AccessReview, status=AccessReviewStatus.PENDING.value)
    assert pending == result.access_reviews == len(plan.groups_with_access)


async def test_plan_for_the_empty_sandbox(db: Database, seeded: Seeded) -> None:
    sandbox = await instance(db, seeded.info.instances["acme_jira_sandbox"])
    with ArchiveReader(seeded.jira_archive, max_expansion_bytes=LIMIT) as reader:
        assert sandbox.id is not None
        options = RestoreOptions(include_attachments=False, include_users_and_groups=True)
        plan = await plan_restore(db, reader, destination_id=sandbox.id, options=options)
        counts = reader.manifest.entity_counts
    assert await empty(db, sandbox) is True
    assert plan.skipped_spaces == []
    assert plan.attachments == plan.attachment_bytes == 0
    assert plan.entity_counts == {name: n for name, n in counts.items() if name != "attachments"}
    assert len(plan.groups_with_access) == 5
    assert plan.items_total == sum(plan.entity_counts.values())


# --- Checkpoints ---------------------------------------------------------------------


def test_checkpoint_reads_back_what_every_version_stored() -> None:
    checkpoint = Checkpoint(
        entity="comments",
        index=1400,
        items_done=2310,
        deferred=3,
        counts={"issues": {"written": 2000, "existing": 0, "skipped": 0}},
    )
    stored = {
        "entity": "comments",
        "index": 1400,
        "items_done": 2310,
        "deferred": 3,
        "counts": {"issues": {"written": 2000, "existing": 0, "skipped": 0}},
    }
    assert checkpoint.to_json() == stored
    assert Checkpoint.from_json(stored) == checkpoint
    # Without its own progress and counts, the row's progress stands in.
    assert Checkpoint.from_json({"entity": "issues", "index": 500}, items_done=700) == Checkpoint(
        entity="issues", index=500, items_done=700
    )


# --- Members held for review ---------------------------------------------------------


async def leave_granting_groups(db: Database, instance_id: int, users: int) -> None:
    """The first ``users`` members of the site's groups with access leave all of them."""
    access = GroupProductAccess.__table__  # type: ignore[attr-defined]
    member = GroupMembership.__table__  # type: ignore[attr-defined]
    granting = select(access.c.group_id).where(access.c.instance_id == instance_id)
    leavers = sorted(
        {
            r.user_id
            for r in await rows(db, select(member.c.user_id).where(member.c.group_id.in_(granting)))
        }
    )[:users]
    async with db.transaction() as session:
        await (await session.connection()).execute(
            delete(member).where(member.c.user_id.in_(leavers), member.c.group_id.in_(granting))
        )


@pytest.mark.parametrize("crash_at", [None, 5, 8])
async def test_held_members_resume_to_the_same_reviews_and_purge_away(
    db: Database, seeded: Seeded, crash_at: int | None
) -> None:
    """Restoring the Confluence backup into its own site after people left its groups with
    access: their memberships are held behind one MEMBERS review per group, not written;
    a crash and resume ends the same, and a purge leaves the site as it was."""
    site = seeded.info.instances["acme_confluence"]
    await leave_granting_groups(db, site, users=4)
    before = await digest(db, seeded, "acme_confluence")
    with ArchiveReader(seeded.confluence_archive, max_expansion_bytes=LIMIT) as reader:
        plan = await plan_restore(db, reader, destination_id=site, options=RestoreOptions())
    assert plan.entity_counts["held_memberships"] > 0
    restore_id = await new_restore(
        db, seeded.info, source="acme_confluence", destination="acme_confluence"
    )
    if crash_at is not None:
        with pytest.raises(Crash):
            await restore(
                db, seeded, restore_id, destination="acme_confluence",
                progress=Progress(crash_at=crash_at), chunk_size=20,
            )  # fmt: skip
    result = await restore(db, seeded, restore_id, destination="acme_confluence")

    assert result.entity_counts == plan.entity_counts
    assert result.held == {"group_memberships": plan.entity_counts["held_memberships"]}
    assert (
        await count(db, HeldMembership, restore_id=restore_id) == result.held["group_memberships"]
    )
    reviews = await access_reviews(db, restore_id)
    assert sorted(name for name, _, _ in reviews) == sorted(plan.held_members)
    assert {(product, status) for _, product, status in reviews} == {("CONFLUENCE", "PENDING")}
    assert await count(db, AccessReview, kind=AccessReviewKind.MEMBERS.value) == len(reviews)
    assert await digest(db, seeded, "acme_confluence") == before, "no member added yet"

    await purge(db, restore_id=restore_id)
    assert await access_reviews(db, restore_id) == []
    assert await count(db, HeldMembership, restore_id=restore_id) == 0
    assert await digest(db, seeded, "acme_confluence") == before
