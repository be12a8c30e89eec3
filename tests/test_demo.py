"""The demo seed: sizes, shape, isolation between organizations, tokens, idempotency."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import SQLModel, col, select

from recoverly.database import Database
from recoverly.demo import INSTANCES, DemoInfo, seed_demo
from recoverly.models import (
    Admin,
    ApiToken,
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
    Membership,
    Organization,
    ProductInstance,
    SiteGroup,
    SiteUser,
)
from recoverly.services.auth import admin_for_token, hash_token

DEMO_TOKEN = "test-demo-admin-token"
OTHER_TOKEN = "test-globex-admin-token"
PRODUCT_TABLES = (
    SiteUser,
    SiteGroup,
    GroupMembership,
    GroupProductAccess,
    JiraProject,
    JiraIssue,
    JiraComment,
    JiraAttachment,
    ConfluenceSpace,
    ConfluencePage,
    ConfluenceComment,
    ConfluenceAttachment,
)


async def fresh_db(path: Path) -> Database:
    db = Database(f"sqlite+aiosqlite:///{path}")
    await db.migrate()
    return db


async def rows(db: Database, statement: Any) -> list[Any]:
    async with db.engine.connect() as conn:
        return list((await conn.execute(statement)).all())


async def scalar(db: Database, statement: Any) -> Any:
    async with db.engine.connect() as conn:
        return (await conn.execute(statement)).scalar_one()


async def count(db: Database, model: Any, instance_id: int | None = None) -> int:
    table = model.__table__
    statement = select(func.count()).select_from(table)
    if instance_id is not None:
        statement = statement.where(table.c.instance_id == instance_id)
    return int(await scalar(db, statement))


async def table_counts(db: Database) -> dict[str, int]:
    async with db.engine.connect() as conn:
        return {
            table.name: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


@pytest.fixture(scope="module")
async def seeded(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Database, DemoInfo]]:
    db = await fresh_db(tmp_path_factory.mktemp("demo") / "t.db")
    started = time.perf_counter()
    info = await seed_demo(db, demo_token=DEMO_TOKEN, other_token=OTHER_TOKEN)
    print(f"\nseed_demo at scale 1 took {time.perf_counter() - started:.2f} s")
    try:
        yield db, info
    finally:
        await db.dispose()


async def test_info_names_everything(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    assert info.created
    assert (info.admin_token, info.other_token) == (DEMO_TOKEN, OTHER_TOKEN)
    assert set(info.organizations) == {"acme", "initech", "globex"}
    assert set(info.instances) == {spec.key for spec in INSTANCES}
    assert set(info.instances) == {
        "acme_jira",
        "acme_confluence",
        "acme_jira_sandbox",
        "acme_confluence_target",
        "initech_jira",
        "globex_jira",
        "globex_confluence",
    }
    owners = dict(await rows(db, select(ProductInstance.id, ProductInstance.organization_id)))
    for spec in INSTANCES:
        assert owners[info.instances[spec.key]] == info.organizations[spec.org_slug]


async def test_acme_jira(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    jira = info.instances["acme_jira"]
    assert await count(db, JiraProject, jira) >= 10
    assert await count(db, JiraIssue, jira) >= 2000
    assert await count(db, JiraComment, jira) >= 3000
    assert await count(db, JiraAttachment, jira) >= 100
    assert await count(db, SiteUser, jira) >= 40
    assert await count(db, SiteGroup, jira) == 7
    access = await rows(
        db, select(GroupProductAccess.product).where(GroupProductAccess.instance_id == jira)
    )
    assert [product for (product,) in access] == ["JIRA"] * 5  # contractors until offboarded

    issues = await rows(
        db,
        select(JiraIssue.key, JiraProject.key, JiraIssue.reporter_account_id)
        .join(JiraProject, col(JiraProject.id) == JiraIssue.project_id)
        .where(JiraIssue.instance_id == jira),
    )
    assert len({key for key, _, _ in issues}) == len(issues)
    assert all(key.startswith(f"{project}-") for key, project, _ in issues)
    accounts = {
        a
        for (a,) in await rows(db, select(SiteUser.account_id).where(SiteUser.instance_id == jira))
    }
    assert {reporter for _, _, reporter in issues} <= accounts

    blobs = await rows(
        db,
        select(JiraAttachment.content, JiraAttachment.size, JiraAttachment.sha256).where(
            JiraAttachment.instance_id == jira
        ),
    )
    for content, size, sha256 in blobs:
        assert 1024 <= size == len(content) <= 20 * 1024
        assert hashlib.sha256(content).hexdigest() == sha256

    # Memberships overlap: some users belong to several groups, every group has members.
    members = await rows(
        db,
        select(GroupMembership.user_id, GroupMembership.group_id).where(
            GroupMembership.instance_id == jira
        ),
    )
    per_user: dict[int, int] = {}
    for user_id, _ in members:
        per_user[user_id] = per_user.get(user_id, 0) + 1
    assert max(per_user.values()) >= 3
    assert len({group_id for _, group_id in members}) == 7


async def test_acme_confluence(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    wiki = info.instances["acme_confluence"]
    assert await count(db, ConfluencePage, wiki) >= 1000
    assert await count(db, ConfluenceComment, wiki) >= 1000
    assert await count(db, ConfluenceAttachment, wiki) >= 60
    assert await count(db, SiteUser, wiki) >= 40
    assert await count(db, SiteGroup, wiki) == 6
    assert await count(db, GroupProductAccess, wiki) >= 1
    spaces = await rows(
        db,
        select(ConfluenceSpace.key, ConfluenceSpace.personal).where(
            ConfluenceSpace.instance_id == wiki
        ),
    )
    assert len(spaces) >= 8
    assert ("~ada", True) in spaces
    assert sum(personal for _, personal in spaces) == 1

    pages = await rows(
        db,
        select(ConfluencePage.id, ConfluencePage.space_id, ConfluencePage.parent_id).where(
            ConfluencePage.instance_id == wiki
        ),
    )
    space_of = {page_id: space_id for page_id, space_id, _ in pages}
    children = [(space, parent) for _, space, parent in pages if parent is not None]
    assert len(children) > 100
    assert all(space_of[parent] == space for space, parent in children)

    # Users are per instance, but the same people appear on both Acme sites.
    jira_accounts = await rows(
        db, select(SiteUser.account_id).where(SiteUser.instance_id == info.instances["acme_jira"])
    )
    wiki_accounts = await rows(db, select(SiteUser.account_id).where(SiteUser.instance_id == wiki))
    assert len(set(jira_accounts) & set(wiki_accounts)) >= 10


async def test_sandbox_is_empty(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    sandbox = info.instances["acme_jira_sandbox"]
    for model in PRODUCT_TABLES:
        assert await count(db, model, sandbox) == 0, model.__name__


async def test_confluence_target_shares_two_spaces(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded

    async def space_keys(instance_id: int) -> set[str]:
        keys = await rows(
            db, select(ConfluenceSpace.key).where(ConfluenceSpace.instance_id == instance_id)
        )
        return {key for (key,) in keys}

    target = info.instances["acme_confluence_target"]
    shared = await space_keys(target) & await space_keys(info.instances["acme_confluence"])
    assert len(shared) == 2
    assert await space_keys(target) == shared
    assert 0 < await count(db, ConfluencePage, target) < 20


async def test_small_sites(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    initech = info.instances["initech_jira"]
    assert await count(db, JiraProject, initech) == 1
    assert await count(db, JiraIssue, initech) == 50
    assert await count(db, SiteUser, initech) == 5
    assert await count(db, SiteGroup, initech) == 2
    globex = info.instances["globex_jira"]
    assert await count(db, JiraProject, globex) == 1
    assert await count(db, JiraIssue, globex) == 30
    assert await count(db, SiteUser, globex) == 5
    assert await count(db, SiteGroup, globex) == 1
    globex_wiki = info.instances["globex_confluence"]
    assert await count(db, ConfluenceSpace, globex_wiki) == 1
    assert await count(db, ConfluencePage, globex_wiki) == 20


async def test_memberships(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded

    async def slugs_of(admin_id: int) -> set[str]:
        found = await rows(
            db,
            select(Organization.slug)
            .join(Membership, col(Membership.organization_id) == Organization.id)
            .where(Membership.admin_id == admin_id),
        )
        return {slug for (slug,) in found}

    assert await slugs_of(info.admin_id) == {"acme", "initech"}
    assert await slugs_of(info.other_admin_id) == {"globex"}


async def test_tokens_authenticate(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    async with db.session() as session:
        admin = await admin_for_token(session, info.admin_token)
        other = await admin_for_token(session, info.other_token)
    assert admin is not None and admin.email == "admin@acme.example"
    assert admin.name == "Ada Admin" and admin.id == info.admin_id
    assert other is not None and other.email == "admin@globex.example"
    assert other.id == info.other_admin_id
    stored = await rows(db, select(ApiToken.token_hash, ApiToken.admin_id))
    assert (hash_token(DEMO_TOKEN), info.admin_id) in stored
    assert DEMO_TOKEN not in {token_hash for token_hash, _ in stored}


async def test_second_call_adds_nothing(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    before = await table_counts(db)
    again = await seed_demo(db, demo_token=DEMO_TOKEN, other_token=OTHER_TOKEN)
    assert again == replace(info, created=False)
    assert await table_counts(db) == before


async def test_rerun_without_tokens_adds_only_tokens(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    before = await table_counts(db)
    again = await seed_demo(db)
    assert not again.created
    assert again.admin_token not in (DEMO_TOKEN, again.other_token)
    assert again.other_token != OTHER_TOKEN
    after = await table_counts(db)
    assert after.pop("apitoken") == before.pop("apitoken") + 2
    assert after == before
    async with db.session() as session:
        for token, admin_id in ((again.admin_token, info.admin_id), (DEMO_TOKEN, info.admin_id)):
            admin = await admin_for_token(session, token)
            assert admin is not None and admin.id == admin_id
        other = await admin_for_token(session, again.other_token)
        assert other is not None and other.id == info.other_admin_id


async def test_rerun_with_a_new_explicit_token(seeded: tuple[Database, DemoInfo]) -> None:
    db, info = seeded
    again = await seed_demo(db, demo_token="changed-demo-token", other_token=OTHER_TOKEN)
    assert again.admin_token == "changed-demo-token" and not again.created
    async with db.session() as session:
        admin = await admin_for_token(session, "changed-demo-token")
    assert admin is not None and admin.id == info.admin_id
    with pytest.raises(ValueError, match="another admin"):
        await seed_demo(db, demo_token=OTHER_TOKEN)
    with pytest.raises(ValueError, match="different tokens"):
        await seed_demo(db, demo_token="same", other_token="same")


async def test_content_is_deterministic(seeded: tuple[Database, DemoInfo], tmp_path: Path) -> None:
    db, info = seeded
    other = await fresh_db(tmp_path / "t.db")
    try:
        info2 = await seed_demo(other, demo_token=DEMO_TOKEN, other_token=OTHER_TOKEN)
        assert info2.instances == info.instances

        def issues(instance_id: int) -> Any:
            return (
                select(JiraIssue.key, JiraIssue.summary, JiraIssue.status, JiraIssue.description)
                .where(JiraIssue.instance_id == instance_id)
                .order_by(col(JiraIssue.id))
            )

        jira = info.instances["acme_jira"]
        assert await rows(db, issues(jira)) == await rows(other, issues(jira))
        blobs = select(JiraAttachment.sha256).order_by(col(JiraAttachment.id))
        assert await rows(db, blobs) == await rows(other, blobs)
        pages = select(ConfluencePage.title, ConfluencePage.parent_id).order_by(
            col(ConfluencePage.id)
        )
        assert await rows(db, pages) == await rows(other, pages)
    finally:
        await other.dispose()


async def test_scale_multiplies_acme_data(tmp_path: Path) -> None:
    db = await fresh_db(tmp_path / "t.db")
    try:
        info = await seed_demo(db, scale=2, demo_token=None, other_token=None)
        assert info.admin_token.startswith("rcv_") and info.other_token.startswith("rcv_")
        jira, wiki = info.instances["acme_jira"], info.instances["acme_confluence"]
        assert await count(db, JiraIssue, jira) == 4000
        assert await count(db, JiraAttachment, jira) == 200
        assert await count(db, SiteUser, jira) == 80
        assert await count(db, ConfluencePage, wiki) == 2000
        assert await count(db, ConfluenceAttachment, wiki) == 120
        assert await count(db, JiraIssue, info.instances["initech_jira"]) == 50
        assert await scalar(db, select(func.count()).select_from(Admin)) == 2
    finally:
        await db.dispose()
