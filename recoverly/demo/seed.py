"""``seed_demo``: organizations, admins, tokens, product instances and their data.

Everything is written with SQLAlchemy Core bulk inserts (about a thousand rows per
statement) in a single transaction, so a crash mid-way leaves nothing behind and the
presence of the ``acme`` organization means the demo data is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from recoverly.database import Database
from recoverly.demo.bulk import insert_rows
from recoverly.demo.sites import site_plans
from recoverly.models import (
    Admin,
    ApiToken,
    Membership,
    Organization,
    ProductInstance,
    ProductKey,
    utcnow,
)
from recoverly.models.base import table_of
from recoverly.services.auth import hash_token, new_token

DEMO_ADMIN = ("admin@acme.example", "Ada Admin")
OTHER_ADMIN = ("admin@globex.example", "Gia Globex")
ORGANIZATIONS = (("acme", "Acme"), ("initech", "Initech"), ("globex", "Globex"))
MARKER_SLUG = "acme"


@dataclass(frozen=True)
class InstanceSpec:
    """A demo product instance: its short name, organization, product, name and URL."""

    key: str
    org_slug: str
    product: ProductKey
    name: str
    url: str


JIRA, CONFLUENCE = ProductKey.JIRA, ProductKey.CONFLUENCE
INSTANCES = (
    InstanceSpec("acme_jira", "acme", JIRA, "Acme Jira", "https://acme.example.net"),
    InstanceSpec(
        "acme_confluence", "acme", CONFLUENCE, "Acme Confluence", "https://acme.example.net/wiki"
    ),
    InstanceSpec(
        "acme_jira_sandbox", "acme", JIRA, "Acme Jira Sandbox", "https://acme-sandbox.example.net"
    ),
    InstanceSpec(
        "acme_confluence_target",
        "acme",
        CONFLUENCE,
        "Acme Confluence Restore Target",
        "https://acme-restore.example.net/wiki",
    ),
    InstanceSpec("initech_jira", "initech", JIRA, "Initech Jira", "https://initech.example.net"),
    InstanceSpec("globex_jira", "globex", JIRA, "Globex Jira", "https://globex.example.net"),
    InstanceSpec(
        "globex_confluence",
        "globex",
        CONFLUENCE,
        "Globex Confluence",
        "https://globex.example.net/wiki",
    ),
)


@dataclass(frozen=True)
class DemoInfo:
    """What the demo holds; later steps (backups, start-up banner) build on these ids."""

    admin_token: str
    other_token: str
    admin_id: int
    other_admin_id: int
    organizations: dict[str, int]  # by slug: acme, initech, globex
    instances: dict[str, int]  # by short name, see INSTANCES
    created: bool  # False when the demo data already existed


async def seed_demo(
    db: Database,
    *,
    scale: int = 1,
    demo_token: str | None = None,
    other_token: str | None = None,
) -> DemoInfo:
    """Seed the demo once; later calls add nothing but make sure the tokens work.

    A token passed explicitly is added when not stored yet. Without one, a fresh token is
    generated and stored (old ones cannot be shown again: only hashes are kept).
    ``scale`` multiplies the Acme sites' users, issues, pages, comments and attachments.
    """
    if scale < 1:
        raise ValueError("scale must be at least 1")
    if demo_token and demo_token == other_token:
        raise ValueError("the demo admin and the Globex admin need different tokens")
    try:
        return await _seed_or_load(db, scale, demo_token, other_token)
    except IntegrityError:
        # Another process seeded concurrently and won; its data is complete: load it.
        return await _seed_or_load(db, scale, demo_token, other_token)


async def _seed_or_load(
    db: Database, scale: int, demo_token: str | None, other_token: str | None
) -> DemoInfo:
    async with db.transaction() as session:
        conn = await session.connection()
        org_table = table_of(Organization)
        exists = (
            await conn.execute(select(org_table.c.id).where(org_table.c.slug == MARKER_SLUG))
        ).first()
        if exists is None:
            admin_id, other_id, orgs, instances = await _create(conn, scale)
        else:
            admin_id, other_id, orgs, instances = await _load(conn)
        admin_token = await _ensure_token(conn, admin_id, demo_token)
        other = await _ensure_token(conn, other_id, other_token)
        return DemoInfo(admin_token, other, admin_id, other_id, orgs, instances, exists is None)


# --- Tokens and ids ------------------------------------------------------------------


async def _ensure_token(conn: AsyncConnection, admin_id: int, token: str | None) -> str:
    """Store ``token`` (or a new one) for the admin unless its hash is stored already."""
    table = table_of(ApiToken)
    token = token or new_token()
    token_hash = hash_token(token)
    owner = (
        await conn.execute(select(table.c.admin_id).where(table.c.token_hash == token_hash))
    ).scalar_one_or_none()
    if owner is None:
        row = {"admin_id": admin_id, "token_hash": token_hash, "name": "demo"}
        await insert_rows(conn, ApiToken, [{**row, "created_at": utcnow(), "last_used_at": None}])
    elif owner != admin_id:
        raise ValueError("this token already belongs to another admin")
    return token


async def _load(conn: AsyncConnection) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """The ids of data seeded earlier."""
    admins, orgs, instances = table_of(Admin), table_of(Organization), table_of(ProductInstance)
    wanted = admins.c.email.in_([DEMO_ADMIN[0], OTHER_ADMIN[0]])
    emails = await _pairs(conn, select(admins.c.email, admins.c.id).where(wanted))
    slugs = await _pairs(conn, select(orgs.c.slug, orgs.c.id))
    urls = await _pairs(conn, select(instances.c.url, instances.c.id))
    try:
        return (
            emails[DEMO_ADMIN[0]],
            emails[OTHER_ADMIN[0]],
            {slug: slugs[slug] for slug, _ in ORGANIZATIONS},
            {spec.key: urls[spec.url] for spec in INSTANCES},
        )
    except KeyError as missing:
        raise RuntimeError(f"incomplete demo data: {missing} is missing") from None


async def _pairs(conn: AsyncConnection, statement: Any) -> dict[str, int]:
    """A two-column query as a dict."""
    return {row[0]: row[1] for row in (await conn.execute(statement)).all()}


# --- Creation ------------------------------------------------------------------------


async def _create(
    conn: AsyncConnection, scale: int
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """Admins, organizations, memberships, instances and all product data."""
    now = utcnow()
    admin_ids = [await _admin(conn, email, name) for email, name in (DEMO_ADMIN, OTHER_ADMIN)]
    org_rows = [{"name": name, "slug": slug, "created_at": now} for slug, name in ORGANIZATIONS]
    org_ids = await insert_rows(conn, Organization, org_rows, returning=True)
    orgs = {slug: id_ for (slug, _), id_ in zip(ORGANIZATIONS, org_ids, strict=True)}
    memberships = [(admin_ids[0], orgs["acme"]), (admin_ids[0], orgs["initech"])]
    memberships.append((admin_ids[1], orgs["globex"]))
    await insert_rows(
        conn,
        Membership,
        [{"admin_id": a, "organization_id": o, "role": "ORG_ADMIN"} for a, o in memberships],
    )
    instance_rows = [
        {
            "organization_id": orgs[spec.org_slug],
            "product": spec.product.value,
            "name": spec.name,
            "url": spec.url,
            "created_at": now,
        }
        for spec in INSTANCES
    ]
    ids = await insert_rows(conn, ProductInstance, instance_rows, returning=True)
    instances = {spec.key: id_ for spec, id_ in zip(INSTANCES, ids, strict=True)}
    for plan in site_plans(scale, instances):
        await plan.write(conn)
    return admin_ids[0], admin_ids[1], orgs, instances


async def _admin(conn: AsyncConnection, email: str, name: str) -> int:
    """Get or create an admin by email."""
    table = table_of(Admin)
    found = (
        await conn.execute(select(table.c.id).where(table.c.email == email))
    ).scalar_one_or_none()
    if found is not None:
        return int(found)
    row = {"email": email, "name": name, "created_at": utcnow()}
    return (await insert_rows(conn, Admin, [row], returning=True))[0]
