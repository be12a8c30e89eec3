"""Global IDs and cursors are decoded strictly on every ID argument of every root field:
out-of-range numbers, wrong types and garbage answer exactly like an unknown ID."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from recoverly.resolvers.global_ids import to_global_id
from recoverly.resolvers.pagination import encode_cursor
from tests.conftest import Deployment
from tests.schema_walk import Probe, probes

UNKNOWN = to_global_id("Nothing", 1)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BAD_IDS = [
    to_global_id("Backup", 2**31),
    to_global_id("Organization", 2**63),
    to_global_id("Restore", 2**64 + 7),
    _b64("Backup:-1"),
    _b64("Backup:007"),
    _b64("Backup:\u0661"),
    _b64("Backup:1 "),
    to_global_id("Backup", 1) + "==",
    "garbage!",
    "",
    "x" * 5000,
    "\x00",
]
HTTP_PROBES = [p for p in probes() if p.kind != "subscription" and p.id_slots]


async def answer(deployment: Deployment, probe: Probe, ids: dict[Any, str]) -> dict[str, Any]:
    async with deployment.client() as client:
        response = await client.post(
            "/graphql", json={"query": probe.document, "variables": probe.variables(ids)}
        )
    assert response.status_code == 200, response.text
    body = response.json()
    coded = {e["extensions"]["code"] for e in body.get("errors", [])}
    assert coded <= {"NOT_FOUND", "BAD_USER_INPUT"}, body
    # What a client sees, less the cost report (the budget left changes with each call).
    errors = [
        (e["message"], e.get("path"), e["extensions"]["code"]) for e in body.get("errors", [])
    ]
    return {"data": body["data"], "errors": errors}


@pytest.mark.parametrize("probe", HTTP_PROBES, ids=lambda p: p.field)
async def test_bad_ids_answer_like_unknown_ids(deployment: Deployment, probe: Probe) -> None:
    unknown = {slot: UNKNOWN for slot in probe.id_slots}
    expected = await answer(deployment, probe, unknown)
    for slot in probe.id_slots:
        answers = await deployment.answered_meanwhile(
            asyncio.gather(*(answer(deployment, probe, {**unknown, slot: b}) for b in BAD_IDS))
        )
        for bad, got in zip(BAD_IDS, answers, strict=True):
            assert got == expected, (slot, bad)


async def test_unknown_ids_are_not_found_in_mutations(deployment: Deployment) -> None:
    for probe in HTTP_PROBES:
        if probe.kind != "mutation":
            continue
        body = await answer(deployment, probe, {s: UNKNOWN for s in probe.id_slots})
        errors = body["data"][probe.field]["errors"]
        assert errors and errors[0]["code"] == "NOT_FOUND", probe.field
        assert errors[0]["field"][0] == "input"


@pytest.mark.parametrize(
    "cursor",
    [
        encode_cursor(2**31),
        base64.urlsafe_b64encode(f"cursor:{2**63}".encode()).decode(),
        base64.urlsafe_b64encode(b"cursor:-5").decode(),
        base64.urlsafe_b64encode(b"other:5").decode(),
        "garbage",
        "",
        "x" * 5000,
    ],
)
async def test_malformed_cursors_are_bad_user_input(deployment: Deployment, cursor: str) -> None:
    org = to_global_id("Organization", deployment.demo.organizations["acme"])
    query = """query($org: ID!, $after: String) {
        backups(organizationId: $org, after: $after) { totalCount } }"""
    async with deployment.client() as client:
        response = await client.post(
            "/graphql", json={"query": query, "variables": {"org": org, "after": cursor}}
        )
    assert response.status_code == 200
    errors = response.json()["errors"]
    assert "invalid cursor" in errors[0]["message"]
    assert "SELECT" not in json.dumps(errors)


async def test_id_lists_are_bounded(deployment: Deployment) -> None:
    mutation = """mutation($ids: [ID!]!) { approveGroupAccess(input: { reviewIds: $ids }) {
        reviews { id } errors { code field message } } }"""
    many = [to_global_id("AccessReview", 2**31 - 1 - i) for i in range(1001)]
    over = await deployment.gql(mutation, {"ids": many})
    assert over["approveGroupAccess"]["errors"][0]["code"] == "INVALID_INPUT"
    assert over["approveGroupAccess"]["errors"][0]["field"] == ["input", "reviewIds"]
    within = await deployment.gql(mutation, {"ids": many[:1000]})
    assert within["approveGroupAccess"]["errors"][0]["code"] == "NOT_FOUND"


async def test_restores_status_filter_with_many_duplicates(deployment: Deployment) -> None:
    org = to_global_id("Organization", deployment.demo.organizations["acme"])
    query = """query($org: ID!, $s: [RestoreStatus!]) {
        restores(organizationId: $org, status: $s) { totalCount } }"""
    data = await deployment.gql(query, {"org": org, "s": ["COMPLETED"] * 20_000})
    assert data["restores"]["totalCount"] >= 0


async def test_bad_subscription_ids_answer_like_unknown_ids(deployment: Deployment) -> None:
    query = "subscription($id: ID!) { restoreProgress(restoreId: $id) { status } }"

    async def first_message(restore_id: str) -> Any:
        async with deployment.websocket() as ws:
            operation = await ws.subscribe(query, {"id": restore_id})
            message = json.loads(await ws.ws.recv())
            assert message["id"] == operation
            message["payload"].pop("extensions", None)  # the cost, with the budget left
            return message

    expected = await first_message(UNKNOWN)
    assert expected["type"] == "next"
    assert [e["extensions"]["code"] for e in expected["payload"]["errors"]] == ["NOT_FOUND"]
    for bad in BAD_IDS[:8]:
        assert await first_message(bad) == expected
