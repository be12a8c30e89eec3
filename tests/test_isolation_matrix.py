"""Cross-organization matrix generated from the schema: every ID argument of every root
field, mutation and subscription, fed the other organization's IDs of every type, answers
exactly as for an unknown ID, and the other organization's data is unchanged."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select as sa_select
from sqlmodel import SQLModel, col, select

from recoverly.models import (
    AccessReview,
    Backup,
    BackupPolicy,
    BackupStatus,
    ProductKey,
    Restore,
    RestoreStatus,
    SiteGroup,
)
from recoverly.resolvers.global_ids import MAX_ROW_ID, to_global_id
from tests.conftest import DEMO_TOKEN, OTHER_TOKEN, Deployment
from tests.schema_walk import Path, Probe, probes

UNKNOWN = to_global_id("Nothing", 1)
SLOT_TYPES = {
    "id": "Organization",
    "organizationId": "Organization",
    "instanceId": "ProductInstance",
    "destinationId": "ProductInstance",
    "backupId": "Backup",
    "restoreId": "Restore",
    "policyId": "BackupPolicy",
    "groupId": "Group",
    "reviewIds": "AccessReview",
}


async def plant(deployment: Deployment, org: str, instance: str) -> dict[str, str]:
    """One row of every node type in ``org``; returns their global IDs by type."""
    org_id, instance_id = deployment.demo.organizations[org], deployment.demo.instances[instance]
    async with deployment.runtime.db.transaction() as session:
        backup = Backup(
            organization_id=org_id,
            instance_id=instance_id,
            product=ProductKey.JIRA,
            status=BackupStatus.COMPLETED,
        )
        policy = BackupPolicy(
            organization_id=org_id, instance_id=instance_id, name="p", active=False
        )
        group = SiteGroup(instance_id=instance_id, name=f"{org}-matrix-group")
        session.add_all([backup, policy, group])
        await session.flush()
        assert backup.id is not None and group.id is not None
        restore = Restore(
            organization_id=org_id,
            backup_id=backup.id,
            destination_id=instance_id,
            status=RestoreStatus.COMPLETED,
        )
        session.add(restore)
        await session.flush()
        assert restore.id is not None
        review = AccessReview(
            organization_id=org_id,
            instance_id=instance_id,
            group_id=group.id,
            product=ProductKey.JIRA,
            restore_id=restore.id,
        )
        session.add(review)
        await session.flush()
        rows = {"Backup": backup, "BackupPolicy": policy, "Group": group, "Restore": restore}
        ids = {name: to_global_id(name, row.id) for name, row in rows.items()}  # type: ignore[attr-defined]
        assert review.id is not None
        ids["AccessReview"] = to_global_id("AccessReview", review.id)
    ids["Organization"] = to_global_id("Organization", org_id)
    ids["ProductInstance"] = to_global_id("ProductInstance", instance_id)
    return ids


async def organization_rows(deployment: Deployment, org: str) -> list[str]:
    """Every row the organization owns, in every table, as text."""
    org_id = deployment.demo.organizations[org]
    instance_ids = [i for key, i in deployment.demo.instances.items() if key.startswith(f"{org}_")]
    groups = sa_select(SiteGroup.id).where(col(SiteGroup.instance_id).in_(instance_ids))
    found = []
    async with deployment.runtime.db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = table.columns
            if "organization_id" in columns:
                condition = columns["organization_id"] == org_id
            elif "instance_id" in columns:
                condition = columns["instance_id"].in_(instance_ids)
            elif "group_id" in columns:
                condition = columns["group_id"].in_(groups)
            else:
                continue
            rows = (await session.exec(sa_select(table).where(condition))).all()  # type: ignore[call-overload]
            found += [f"{table.name}:{tuple(row)}" for row in rows]
    return sorted(found)


@dataclass
class Caller:
    deployment: Deployment
    token: str
    client: httpx.AsyncClient


async def answer(caller: Caller, probe: Probe, ids: dict[Path, str]) -> Any:
    if probe.kind == "subscription":
        async with caller.deployment.websocket(caller.token) as ws:
            operation = await ws.subscribe(probe.document, probe.variables(ids))
            message = json.loads(await ws.ws.recv())
            assert message["id"] == operation
            message["payload"].pop("extensions", None)
            return message
    response = await caller.client.post(
        "/graphql", json={"query": probe.document, "variables": probe.variables(ids)}
    )
    body = response.json()
    assert response.status_code == 200, body
    coded = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert coded <= {"NOT_FOUND", "BAD_USER_INPUT"}, body
    # What a client sees, less the cost report (the budget left changes with each call).
    errors = [
        (e["message"], e.get("path"), e["extensions"]["code"]) for e in body.get("errors", [])
    ]
    return {"data": body["data"], "errors": errors}


def _slot_type(slot: Path) -> str:
    name = next((str(s) for s in reversed(slot) if isinstance(s, str)), "")
    return SLOT_TYPES.get(name, "")


def own_ids(probe: Probe, own: dict[str, str]) -> dict[Path, str]:
    """Each slot filled with the caller's own ID of the slot's type (unknown if none)."""
    return {slot: own.get(_slot_type(slot), UNKNOWN) for slot in probe.id_slots}


async def attack(
    deployment: Deployment, token: str, own: dict[str, str], foreign: dict[str, str]
) -> int:
    attempts = 0
    async with deployment.client(token) as client:
        caller = Caller(deployment, token, client)
        for probe in probes():
            base = own_ids(probe, own)
            for slot in probe.id_slots:
                expected = await answer(caller, probe, {**base, slot: UNKNOWN})
                tried = list(foreign.values())
                if _slot_type(slot):  # a well-formed ID of the right type matching no row
                    tried.append(to_global_id(_slot_type(slot), MAX_ROW_ID))
                answers = await asyncio.gather(
                    *(answer(caller, probe, {**base, slot: i}) for i in tried)
                )
                for tried_id, got in zip(tried, answers, strict=True):
                    assert got == expected, json.dumps([probe.field, slot, tried_id, got, expected])
                attempts += len(tried)
    return attempts


async def test_other_organizations_ids_behave_as_unknown(own_deployment: Deployment) -> None:
    deployment = own_deployment
    acme = await plant(deployment, "acme", "acme_jira_sandbox")
    globex = await plant(deployment, "globex", "globex_jira")
    async with deployment.runtime.db.session() as session:
        rows = (
            await session.exec(
                select(Backup).where(
                    col(Backup.organization_id) == deployment.demo.organizations["acme"],
                    col(Backup.status) == BackupStatus.COMPLETED,
                )
            )
        ).all()
    acme["Backup"] = to_global_id("Backup", rows[0].id)  # type: ignore[arg-type]
    before = {org: await organization_rows(deployment, org) for org in ("acme", "globex")}
    attempts = await attack(deployment, DEMO_TOKEN, own=acme, foreign=globex)
    attempts += await attack(deployment, OTHER_TOKEN, own=globex, foreign=acme)
    assert attempts > 200
    after = {org: await organization_rows(deployment, org) for org in ("acme", "globex")}
    assert after == before
