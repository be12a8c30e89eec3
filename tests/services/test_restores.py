"""Restores through a real server and a real graphql-transport-ws client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlmodel import col, select
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation

from recoverly.models import Backup, BackupStatus, ProductKey
from recoverly.products.digest import content_digest
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.schema.restores import RestoreProgress
from recoverly.services.backups import internal_key
from recoverly.services.progress import restore_topic
from tests.conftest import OTHER_TOKEN, Deployment
from tests.waiting import wait_for

START = """mutation($input: StartRestoreInput!) {
  startRestore(input: $input) {
    restore { id status destination { name } }
    errors { code message field }
  }
}"""
PROGRESS = """subscription($id: ID!) {
  restoreProgress(restoreId: $id) { restoreId status phase itemsDone itemsTotal percent message at }
}"""
RESTORE_FIELDS = """... on Restore { status phase failureReason skippedSpaces entityCounts
  startedAt finishedAt startedBy { email } progress { itemsDone itemsTotal percent } }"""
FINAL = {"COMPLETED", "PARTIALLY_COMPLETED", "FAILED", "CANCELED"}


@pytest.fixture(scope="module")
def site(own_deployment: Deployment) -> Deployment:
    """Restores change their destinations: this module has a deployment of its own."""
    return own_deployment


async def latest_backup(deployment: Deployment, instance: str) -> str:
    async with deployment.runtime.db.session() as session:
        statement = (
            select(Backup.id)
            .where(
                col(Backup.instance_id) == deployment.demo.instances[instance],
                col(Backup.status) == BackupStatus.COMPLETED,
            )
            .order_by(col(Backup.id).desc())
        )
        backup_id = (await session.exec(statement)).first()
    assert backup_id is not None
    return to_global_id("Backup", backup_id)


def restore_input(deployment: Deployment, backup: str, destination: str, **extra: Any) -> dict:
    instance_id = deployment.demo.instances[destination]
    return {
        "backupId": backup,
        "destinationId": to_global_id("ProductInstance", instance_id),
        **extra,
    }


async def start(deployment: Deployment, backup: str, destination: str, **extra: Any) -> Any:
    data = await deployment.gql(
        START, {"input": restore_input(deployment, backup, destination, **extra)}
    )
    return data["startRestore"]


async def follow(deployment: Deployment, restore_id: str) -> list[dict[str, Any]]:
    async with deployment.websocket() as ws:
        operation = await ws.subscribe(PROGRESS, {"id": restore_id})
        return [event["restoreProgress"] async for event in ws.events(operation)]


async def wait_restore(deployment: Deployment, restore_id: str) -> dict[str, Any]:
    return await deployment.wait_until(restore_id, RESTORE_FIELDS, lambda n: n["status"] in FINAL)


def assert_monotonic(events: list[dict[str, Any]]) -> None:
    done = [e["itemsDone"] for e in events]
    assert done == sorted(done), done


async def digest(deployment: Deployment, instance: str) -> dict[str, Any]:
    return await content_digest(deployment.runtime.db, deployment.demo.instances[instance])


def hold_after_first_rows(site: Deployment, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The job waits, after publishing its first event with rows written, until the
    returned event is set: what the test does meanwhile happens mid-restore."""
    bus = site.runtime.bus
    publish = bus.publish
    resume = asyncio.Event()
    held = False

    async def holding(topic: str, event: dict[str, Any]) -> None:
        nonlocal held
        await publish(topic, event)
        if not held and event.get("items_done", 0) > 0 and event.get("status") == "IN_PROGRESS":
            held = True
            await resume.wait()

    monkeypatch.setattr(bus, "publish", holding)
    return resume


async def test_cancel_mid_restore_leaves_the_destination_unchanged(
    site: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await digest(site, "acme_jira_sandbox")
    backup = await latest_backup(site, "acme_jira")
    resume = hold_after_first_rows(site, monkeypatch)
    started = await start(site, backup, "acme_jira_sandbox")
    restore_id = started["restore"]["id"]
    async with site.websocket() as ws:
        operation = await ws.subscribe(PROGRESS, {"id": restore_id})
        events: list[dict[str, Any]] = []
        cancel_sent = False
        async for event in ws.events(operation):
            events.append(event["restoreProgress"])
            if event["restoreProgress"]["itemsDone"] > 0 and not cancel_sent:
                cancel_sent = True
                canceled = await site.gql(
                    "mutation($i: CancelRestoreInput!) { cancelRestore(input: $i) "
                    "{ restore { status } errors { code } } }",
                    {"i": {"restoreId": restore_id}},
                )
                resume.set()
                assert canceled["cancelRestore"]["errors"] == []
                assert canceled["cancelRestore"]["restore"]["status"] == "CANCELING"
    assert events[-1]["status"] == "CANCELED"
    assert any(e["itemsDone"] > 0 for e in events), "canceled while rows were being written"
    assert_monotonic(events)
    assert await digest(site, "acme_jira_sandbox") == before
    again = await site.gql(
        "mutation($i: CancelRestoreInput!) { cancelRestore(input: $i) { errors { code } } }",
        {"i": {"restoreId": restore_id}},
    )
    assert again["cancelRestore"]["errors"][0]["code"] == "ALREADY_FINAL"


async def test_jira_restore_into_empty_sandbox_yields_the_source(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    preview = await site.gql(
        """query($input: StartRestoreInput!) { restorePreview(input: $input) {
            entityCounts itemsTotal destinationEmpty errors { code }
            accessReviews { groupName product billableUsersAdded } } }""",
        {"input": restore_input(site, backup, "acme_jira_sandbox")},
    )
    assert preview["restorePreview"]["errors"] == []
    assert preview["restorePreview"]["destinationEmpty"] is True
    reviews = preview["restorePreview"]["accessReviews"]
    assert len(reviews) >= 3 and {r["product"] for r in reviews} == {"JIRA"}
    # Members of a group with applied access in the source are billable already; the
    # contractors lost theirs after the backup, so approving them adds billable users.
    impact = {r["groupName"]: r["billableUsersAdded"] for r in reviews}
    assert impact.pop("contractors") > 0
    assert set(impact.values()) == {0}
    started = await start(site, backup, "acme_jira_sandbox")
    assert started["errors"] == []
    events = await follow(site, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    assert events[-1]["itemsDone"] == events[-1]["itemsTotal"] > 6000
    assert events[-1]["percent"] == 100.0
    assert_monotonic(events)
    assert {e["phase"] for e in events} >= {"USERS_AND_GROUPS", "CONTENT", "ATTACHMENTS"}
    restored, source = await digest(site, "acme_jira_sandbox"), await digest(site, "acme_jira")
    assert restored["counts"] == source["counts"]
    assert restored["sha256"] == source["sha256"]
    node = await wait_restore(site, started["restore"]["id"])
    assert node["startedBy"] == {"email": "admin@acme.example"}
    assert node["finishedAt"] >= node["startedAt"]


async def test_restore_into_non_empty_jira_site_is_refused(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    refused = await start(site, backup, "acme_jira")
    assert refused["restore"] is None
    assert refused["errors"][0]["code"] == "DESTINATION_NOT_EMPTY"


async def test_confluence_restore_skips_the_spaces_that_exist(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    started = await start(site, backup, "acme_confluence_target")
    assert started["errors"] == []
    events = await follow(site, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    node = await wait_restore(site, started["restore"]["id"])
    assert sorted(node["skippedSpaces"]) == ["HR", "MKT"]
    source = await digest(site, "acme_confluence")
    target = await digest(site, "acme_confluence_target")
    # The backup leaves out the personal space; the 2 shared keys were there already.
    assert target["counts"]["spaces"] == source["counts"]["spaces"] - 1
    assert node["entityCounts"]["spaces"] == source["counts"]["spaces"] - 1 - 2


async def test_mismatched_and_foreign_requests_are_refused(site: Deployment) -> None:
    jira_backup = await latest_backup(site, "acme_jira")
    mismatch = await start(site, jira_backup, "acme_confluence_target")
    assert mismatch["errors"][0]["code"] == "PRODUCT_MISMATCH"
    foreign = await site.gql(
        START, {"input": restore_input(site, jira_backup, "acme_jira_sandbox")}, token=OTHER_TOKEN
    )
    assert foreign["startRestore"]["errors"][0]["code"] == "NOT_FOUND"


async def test_expired_backup_is_not_available(site: Deployment) -> None:
    async with site.runtime.db.session() as session:
        expired = (
            await session.exec(select(Backup.id).where(col(Backup.status) == BackupStatus.EXPIRED))
        ).first()
    assert expired is not None
    refused = await start(site, to_global_id("Backup", expired), "acme_jira_sandbox")
    assert refused["errors"][0]["code"] == "BACKUP_NOT_AVAILABLE"
    assert "policy" in refused["errors"][0]["message"]


async def test_twenty_concurrent_starts_on_one_destination_one_wins(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    # The token's identity cached first, as after any earlier request: with a cold cache the
    # 20 requests, each also reading its token, exhaust SQLite's connection pool (15) while
    # they wait for the write lock.
    await site.gql("{ viewer { email } }")
    # Workers paused: the winner stays queued (its lock held) however fast it would run.
    runner = site.runtime.runner
    assert runner is not None
    await runner.stop()
    try:
        results = await asyncio.gather(*(start(site, backup, "acme_confluence") for _ in range(20)))
    finally:
        await runner.start()
    winners = [r for r in results if not r["errors"]]
    codes = sorted(r["errors"][0]["code"] for r in results if r["errors"])
    assert len(winners) == 1
    assert codes == ["DESTINATION_BUSY"] * 19
    final = await wait_restore(site, winners[0]["restore"]["id"])
    assert final["status"] == "COMPLETED"


async def test_late_subscriber_gets_current_state_first(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    started = await start(site, backup, "acme_confluence_target")
    restore_id = started["restore"]["id"]
    await wait_restore(site, restore_id)
    events = await follow(site, restore_id)
    assert len(events) == 1
    assert events[0]["status"] == "COMPLETED"
    assert events[0]["itemsDone"] == events[0]["itemsTotal"]


async def test_hundred_subscribers_leaving_mid_stream_leave_nothing_behind(
    site: Deployment,
) -> None:
    bus = site.runtime.bus
    tasks_before = len(asyncio.all_tasks())
    backup = await latest_backup(site, "acme_confluence")
    started = await start(site, backup, "acme_confluence_target")
    restore_id = started["restore"]["id"]

    async def leave_after_first_event() -> None:
        async with site.websocket() as ws:
            operation = await ws.subscribe(PROGRESS, {"id": restore_id})
            async for _ in ws.events(operation):
                break

    await asyncio.gather(*(leave_after_first_event() for _ in range(100)))
    await wait_restore(site, restore_id)
    topic = restore_topic(decode_id(restore_id, "Restore") or 0)
    await wait_for(
        lambda: not bus.subscriber_count(topic) and len(asyncio.all_tasks()) <= tasks_before + 2,
        within=10,
        what="every subscription and its tasks to end",
    )
    assert bus.subscriber_count(topic) == 0


async def test_corrupted_archive_fails_with_reason_and_changes_nothing(site: Deployment) -> None:
    instance_id = to_global_id("ProductInstance", site.demo.instances["acme_confluence"])
    run = await site.gql(
        "mutation($i: RunBackupInput!) { runBackup(input: $i) { backup { id } errors { code } } }",
        {"i": {"instanceId": instance_id}},
    )
    backup = await site.wait_backup(run["runBackup"]["backup"]["id"])
    async with site.runtime.db.session() as session:
        row = await session.get(Backup, decode_id(backup["id"], "Backup"))
    path = site.runtime.internal_store.path_for(internal_key(row))  # type: ignore[attr-defined]
    original = path.read_bytes()
    data = bytearray(original)
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    try:
        before = await digest(site, "acme_confluence_target")
        started = await start(site, backup["id"], "acme_confluence_target")
        node = await wait_restore(site, started["restore"]["id"])
        assert node["status"] == "FAILED"
        assert "archive" in node["failureReason"]
        assert await digest(site, "acme_confluence_target") == before
    finally:
        path.write_bytes(original)  # later tests restore the latest backup of this site
    assert ProductKey.CONFLUENCE


async def test_two_hundred_subscribers_receive_the_same_frames_executed_once(
    site: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks_before = len(asyncio.all_tasks())
    executions = 0
    execute_operation = StrawberryGraphQLCoreExecutionContext.execute_operation

    def counting(executor: Any, *args: Any) -> Any:
        nonlocal executions
        if isinstance(executor.root_value, RestoreProgress):
            executions += 1
        return execute_operation(executor, *args)

    monkeypatch.setattr(StrawberryGraphQLCoreExecutionContext, "execute_operation", counting)
    streamed = 0  # frames sent through each subscriber's own stream (not directly)
    send_next = Operation.send_next

    async def counting_sends(operation: Any, result: Any) -> None:
        nonlocal streamed
        streamed += 1
        await send_next(operation, result)

    monkeypatch.setattr(Operation, "send_next", counting_sends)
    backup = await latest_backup(site, "acme_confluence")
    started = await start(site, backup, "acme_confluence_target")
    restore_id = started["restore"]["id"]

    async def frames() -> list[str]:
        """The raw text of every published event (the first message, the current state read
        for this subscriber, left out) until ``complete``."""
        async with site.websocket() as connection:
            operation = await connection.subscribe(PROGRESS, {"id": restore_id})
            received = []
            while True:
                raw = await connection.ws.recv()
                message = json.loads(raw)
                if message["type"] == "complete":
                    return received[1:]
                assert message["type"] == "next" and message["id"] == operation, message
                received.append(raw)

    streams = await asyncio.gather(*(frames() for _ in range(200)))
    longest = max(streams, key=len)
    assert json.loads(longest[-1])["payload"]["data"]["restoreProgress"]["status"] in FINAL
    position = {frame: i for i, frame in enumerate(longest)}
    for stream in streams:
        # A late subscriber misses early events; those it queued while reading its current
        # state may be raised to that state (itemsDone never decreases). From the first
        # event it shares with the others on, it receives exactly the same frames.
        joined = next(i for i, frame in enumerate(stream) if frame in position)
        assert stream[joined:] == longest[position[stream[joined]] :]
    # Each event was executed once for all (the first message, read for each subscriber,
    # once for each), not once per subscriber: 200 x 20-odd events would be thousands.
    assert executions <= len(longest) + len(streams) + 2
    # Events in between were written to each connection as they were published, without
    # waking each subscriber's stream: the streams sent each one's first and final frame,
    # and the few events that raced a subscriber's first one.
    assert len(longest) >= 4
    assert streamed < 2 * len(streams) + sum(len(s) for s in streams) / 2
    topic = restore_topic(decode_id(restore_id, "Restore") or 0)
    await wait_for(
        lambda: (
            len(asyncio.all_tasks()) <= tasks_before + 2
            and not site.runtime.bus.subscriber_count(topic)
        ),
        within=10,
        what="every subscription and its tasks to end",
    )
    await wait_restore(site, restore_id)
