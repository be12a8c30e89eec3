"""Progress a console can draw: restores and backups through a real server and a real
graphql-transport-ws client, from QUEUED to a final status, and canceled backups."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from recoverly.events import InMemoryEventBus
from recoverly.models import Backup, Restore, RestorePhase, RestoreStatus
from recoverly.products.digest import content_digest
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.backups import internal_key
from recoverly.services.progress import ProgressPublisher, RateWindow, restore_topic
from tests.conftest import Deployment
from tests.services.test_restores import latest_backup, restore_input, start

PROGRESS = """subscription($id: ID!) {
  restoreProgress(restoreId: $id) { restoreId status phase itemsDone itemsTotal percent
    itemsPerSecond etaSeconds message at } }"""
BACKUP_PROGRESS = """subscription($id: ID!) {
  backupProgress(backupId: $id) {
    backupId status itemsDone itemsTotal percent itemsPerSecond etaSeconds message at } }"""
RUN = """mutation($i: RunBackupInput!) { runBackup(input: $i) {
  backup { id status progress { status itemsDone itemsTotal } } errors { code message field } } }"""
CANCEL = """mutation($i: CancelBackupInput!) { cancelBackup(input: $i) {
  backup { id status } errors { code message field } } }"""
CANCEL_RESTORE = """mutation($i: CancelRestoreInput!) { cancelRestore(input: $i) {
  restore { status } errors { code } } }"""
PREVIEW = """query($input: StartRestoreInput!) { restorePreview(input: $input) {
  itemsTotal skippedSpaces errors { code } } }"""
SITE = "... on ProductInstance { operationInProgress }"


@pytest.fixture(scope="module")
def site(own_deployment: Deployment) -> Deployment:
    return own_deployment


@asynccontextmanager
async def paused(deployment: Deployment) -> AsyncIterator[None]:
    """Job workers stopped: what is started stays QUEUED until the block ends."""
    runner = deployment.runtime.runner
    assert runner is not None
    await runner.stop()
    try:
        yield
    finally:
        await runner.start()


def assert_adds_up(events: list[dict[str, Any]]) -> None:
    done = [e["itemsDone"] for e in events]
    assert done == sorted(done), "itemsDone never decreases"
    assert all(e["itemsDone"] <= e["itemsTotal"] for e in events)
    assert len({e["itemsTotal"] for e in events}) == 1, "itemsTotal is known from the start"
    for event in events:
        rate, eta = event.get("itemsPerSecond"), event.get("etaSeconds")
        assert rate is None or rate > 0
        if eta is not None:
            assert rate and eta == pytest.approx(
                (event["itemsTotal"] - event["itemsDone"]) / rate, abs=0.1
            )


async def test_confluence_restore_progress_adds_up_to_the_preview(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    preview = await site.gql(
        PREVIEW, {"input": restore_input(site, backup, "acme_confluence_target")}
    )
    preview = preview["restorePreview"]
    assert preview["errors"] == [] and sorted(preview["skippedSpaces"]) == ["HR", "MKT"]
    events: list[dict[str, Any]] = []
    async with site.websocket() as ws:
        async with paused(site):
            started = await start(site, backup, "acme_confluence_target")
            assert started["errors"] == []
            operation = await ws.subscribe(PROGRESS, {"id": started["restore"]["id"]})
            stream = ws.events(operation)
            events.append((await anext(stream))["restoreProgress"])
        events += [event["restoreProgress"] async for event in stream]
    first, last = events[0], events[-1]
    assert first["status"] == "QUEUED" and first["phase"] is None
    assert first["itemsTotal"] == preview["itemsTotal"] > 0
    assert first["itemsDone"] == 0 and "waiting" in first["message"]
    assert_adds_up(events)
    assert [e["status"] for e in events[:-1]].count("COMPLETED") == 0
    assert last["status"] == "COMPLETED" and last["phase"] is None
    assert last["itemsDone"] == last["itemsTotal"] == preview["itemsTotal"]
    assert last["percent"] == 100.0
    assert last["message"] == (
        f"restored {preview['itemsTotal']} items; skipped existing spaces HR, MKT"
    )
    node = await site.wait_until(
        started["restore"]["id"],
        "... on Restore { phase progress { itemsDone itemsTotal phase } }",
        lambda n: True,
    )
    assert node["phase"] is None
    assert node["progress"] == {
        "itemsDone": last["itemsDone"],
        "itemsTotal": last["itemsTotal"],
        "phase": None,
    }


async def test_canceled_restore_keeps_its_last_progress(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    started = await start(site, backup, "acme_jira_sandbox")
    restore_id = started["restore"]["id"]
    events: list[dict[str, Any]] = []
    async with site.websocket() as ws:
        operation = await ws.subscribe(PROGRESS, {"id": restore_id})
        async for event in ws.events(operation):
            events.append(event["restoreProgress"])
            if len([e for e in events if e["itemsDone"] > 0]) == 1:
                canceled = await site.gql(CANCEL_RESTORE, {"i": {"restoreId": restore_id}})
                assert canceled["cancelRestore"]["errors"] == []
    last = events[-1]
    assert last["status"] == "CANCELED" and last["phase"] is None
    assert_adds_up(events)
    assert 0 < last["itemsDone"] < last["itemsTotal"]
    node = await site.wait_until(restore_id, "... on Restore { progress { itemsDone } }", bool)
    assert node["progress"]["itemsDone"] == last["itemsDone"], "the last real progress stays"
    assert f"after {last['itemsDone']} of {last['itemsTotal']} items" in last["message"]
    assert "removed" in last["message"]


async def test_canceled_confluence_restore_ends_within_its_total(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    before = await content_digest(site.runtime.db, site.demo.instances["acme_confluence_target"])
    preview = await site.gql(
        PREVIEW, {"input": restore_input(site, backup, "acme_confluence_target")}
    )
    started = await start(site, backup, "acme_confluence_target")
    restore_id = started["restore"]["id"]
    events: list[dict[str, Any]] = []
    sent = False
    async with site.websocket() as ws:
        operation = await ws.subscribe(PROGRESS, {"id": restore_id})
        async for event in ws.events(operation):
            events.append(event["restoreProgress"])
            if event["restoreProgress"]["status"] == "IN_PROGRESS" and not sent:
                sent = True
                canceled = await site.gql(CANCEL_RESTORE, {"i": {"restoreId": restore_id}})
                assert canceled["cancelRestore"]["errors"] == []
    last = events[-1]
    assert last["status"] == "CANCELED" and last["phase"] is None
    assert_adds_up(events)
    assert last["itemsTotal"] == preview["restorePreview"]["itemsTotal"]
    assert last["itemsDone"] <= last["itemsTotal"]
    assert "the destination is" in last["message"]
    after = await content_digest(site.runtime.db, site.demo.instances["acme_confluence_target"])
    assert after == before


async def test_backup_progress_to_completed(site: Deployment) -> None:
    instance = to_global_id("ProductInstance", site.demo.instances["acme_confluence"])
    events: list[dict[str, Any]] = []
    async with site.websocket() as ws:
        async with paused(site):
            run = await site.gql(RUN, {"i": {"instanceId": instance}})
            assert run["runBackup"]["errors"] == []
            backup = run["runBackup"]["backup"]
            assert backup["progress"]["status"] == "QUEUED"
            operation = await ws.subscribe(BACKUP_PROGRESS, {"id": backup["id"]})
            stream = ws.events(operation)
            events.append((await anext(stream))["backupProgress"])
        events += [event["backupProgress"] async for event in stream]
    first, last = events[0], events[-1]
    assert first["status"] == "QUEUED" and first["backupId"] == backup["id"]
    assert first["itemsTotal"] == backup["progress"]["itemsTotal"] > 1000
    assert_adds_up(events)
    assert "IN_PROGRESS" in {e["status"] for e in events}
    assert last["status"] == "COMPLETED"
    assert last["itemsDone"] == last["itemsTotal"] and last["percent"] == 100.0
    assert last["itemsPerSecond"] is None and last["etaSeconds"] is None
    node = await site.wait_backup(backup["id"])
    assert node["status"] == "COMPLETED" and node["location"] == "INTERNAL_STORAGE"


async def archive_exists(site: Deployment, backup_id: str) -> bool:
    async with site.runtime.db.session() as session:
        row = await session.get(Backup, decode_id(backup_id, "Backup"))
    assert row is not None
    return await site.runtime.internal_store.exists(internal_key(row))


async def test_cancel_a_queued_backup(site: Deployment) -> None:
    instance = to_global_id("ProductInstance", site.demo.instances["acme_jira"])
    async with paused(site):
        run = await site.gql(RUN, {"i": {"instanceId": instance}})
        backup_id = run["runBackup"]["backup"]["id"]
        busy = await site.gql(RUN, {"i": {"instanceId": instance}})
        assert busy["runBackup"]["errors"] == [
            {
                "code": "DESTINATION_BUSY",
                "field": ["input", "instanceId"],
                "message": busy["runBackup"]["errors"][0]["message"],
            }
        ]
        canceled = await site.gql(CANCEL, {"i": {"backupId": backup_id}})
        assert canceled["cancelBackup"] == {
            "backup": {"id": backup_id, "status": "CANCELED"},
            "errors": [],
        }
        released = await site.wait_until(instance, SITE, lambda n: True)
        assert released["operationInProgress"] is False
    await site.runtime.runner.wait_idle()  # type: ignore[union-attr]
    node = await site.wait_backup(backup_id)
    assert node["status"] == "CANCELED" and node["location"] is None
    assert not await archive_exists(site, backup_id)
    again = await site.gql(CANCEL, {"i": {"backupId": backup_id}})
    assert again["cancelBackup"]["errors"][0]["code"] == "ALREADY_FINAL"


async def test_cancel_a_running_backup_leaves_no_archive_and_frees_the_site(
    site: Deployment,
) -> None:
    instance = to_global_id("ProductInstance", site.demo.instances["acme_jira"])
    run = await site.gql(RUN, {"i": {"instanceId": instance}})
    backup_id = run["runBackup"]["backup"]["id"]
    events: list[dict[str, Any]] = []
    sent = False
    async with site.websocket() as ws:
        operation = await ws.subscribe(BACKUP_PROGRESS, {"id": backup_id})
        async for event in ws.events(operation):
            events.append(event["backupProgress"])
            if event["backupProgress"]["status"] == "IN_PROGRESS" and not sent:
                sent = True
                canceled = await site.gql(CANCEL, {"i": {"backupId": backup_id}})
                assert canceled["cancelBackup"]["errors"] == []
                assert canceled["cancelBackup"]["backup"]["status"] == "CANCELING"
    last = events[-1]
    assert last["status"] == "CANCELED"
    assert_adds_up(events)
    assert f"after reading {last['itemsDone']} of {last['itemsTotal']}" in last["message"]
    assert "no copy is kept" in last["message"]
    assert not await archive_exists(site, backup_id)
    assert not list((site.runtime.settings.data_dir / "work").glob("backup-*"))
    site_now = await site.wait_until(instance, SITE, lambda n: True)
    assert site_now["operationInProgress"] is False
    rerun = await site.gql(RUN, {"i": {"instanceId": instance}})
    assert rerun["runBackup"]["errors"] == [], "the site is free for the next backup"
    assert (await site.wait_backup(rerun["runBackup"]["backup"]["id"]))["status"] == "COMPLETED"


def test_rate_window_reports_recent_speed() -> None:
    window = RateWindow(seconds=10)
    assert window.rate() is None
    for second in range(0, 31):
        # 100 items/s for 20 s, then 10 items/s: the window follows the change.
        done = 100 * min(second, 20) + 10 * max(0, second - 20)
        window.add(done, now=float(second))
        if second == 20:
            assert window.rate() == 100.0
    assert window.rate() == 10.0
    stalled = RateWindow()
    stalled.add(5, now=0.0)
    stalled.add(5, now=3.0)
    assert stalled.rate() is None, "no progress: no rate, hence no ETA"


def publisher_of_a_restore(min_interval: float) -> ProgressPublisher:
    row = Restore(id=7, organization_id=1, backup_id=1, destination_id=1, items_total=100)
    return ProgressPublisher(InMemoryEventBus(), row, min_interval=min_interval)


async def test_progress_between_phase_changes_is_coalesced_and_every_subscriber_ends_final() -> (
    None
):
    publisher = publisher_of_a_restore(min_interval=3600)  # nothing falls due by time
    bus = publisher.bus
    async with AsyncExitStack() as stack:
        subscriptions = [
            await stack.enter_async_context(bus.subscribe(restore_topic(7))) for _ in range(3)
        ]
        await publisher.publish(status=RestoreStatus.IN_PROGRESS, phase=RestorePhase.CONTENT)
        for done in range(1, 60):
            await publisher.publish(items_done=done)
        await publisher.publish(phase=RestorePhase.ATTACHMENTS, items_done=60)
        await publisher.publish(items_done=99, message="attachments")
        await publisher.publish(
            status=RestoreStatus.COMPLETED, phase=None, items_done=100, message="done"
        )
        for subscription in subscriptions:
            received = [subscription.queue.get_nowait() for _ in range(subscription.queue.qsize())]
            # The 59 progress steps within the interval, and the one before the final
            # event, were replaced by the phase change and the final event that followed.
            assert [(e["status"], e["phase"], e["items_done"]) for e in received] == [
                ("IN_PROGRESS", "CONTENT", 0),
                ("IN_PROGRESS", "ATTACHMENTS", 60),
                ("COMPLETED", None, 100),
            ]
            assert received[-1]["message"] == "done" and received[-1]["percent"] == 100.0
    assert publisher._timer is None, "nothing is left waiting after the final event"


async def test_the_latest_progress_waiting_is_published_when_its_interval_ends() -> None:
    publisher = publisher_of_a_restore(min_interval=0.05)
    async with publisher.bus.subscribe(restore_topic(7)) as subscription:
        await publisher.publish(status=RestoreStatus.IN_PROGRESS, phase=RestorePhase.CONTENT)
        await publisher.publish(items_done=10)
        await publisher.publish(items_done=20, message="halfway")
        first = await subscription.get()
        async with asyncio.timeout(10):
            later = await subscription.get()  # published by the timer: nothing follows it
        assert (first["items_done"], later["items_done"]) == (0, 20)
        assert later["message"] == "halfway"
        assert later["phase"] == "CONTENT" and later["status"] == "IN_PROGRESS"
        assert subscription.queue.empty(), "the step it replaced is not published"
        await publisher.publish(items_done=20, message="halfway")
        assert subscription.queue.empty() and publisher._timer is None, "no change, no event"


async def test_a_waiting_subscriber_is_offered_events_first_and_they_never_overtake() -> None:
    bus = InMemoryEventBus()
    taken: list[int] = []

    def direct(event: dict[str, Any]) -> bool:
        if event["n"] == 3:
            return False  # not this one: it is queued, and what follows queues behind it
        taken.append(event["n"])
        return True

    async with bus.subscribe("t") as subscription:
        waiting = asyncio.ensure_future(subscription.get(direct))
        await asyncio.sleep(0)  # now waiting in get
        for n in range(1, 6):
            await bus.publish("t", {"n": n})
        assert taken == [1, 2], "offered first while nothing was queued"
        assert (await waiting)["n"] == 3
        assert [(await subscription.get(direct))["n"] for _ in range(2)] == [4, 5]
        await bus.publish("t", {"n": 6})  # nobody waits in get: nothing is offered
        assert taken == [1, 2] and (await subscription.get())["n"] == 6


async def test_a_status_change_is_published_at_once_with_the_progress_it_replaced() -> None:
    publisher = publisher_of_a_restore(min_interval=3600)  # nothing falls due by time
    async with publisher.bus.subscribe(restore_topic(7)) as subscription:
        await publisher.publish(status=RestoreStatus.VALIDATING, message="checking")
        await publisher.publish(items_done=5)  # within the interval: waits
        assert subscription.queue.qsize() == 1 and publisher._timer is not None
        await publisher.publish(status=RestoreStatus.IN_PROGRESS, message="restoring")
        received = [subscription.queue.get_nowait() for _ in range(subscription.queue.qsize())]
    assert [(e["status"], e["items_done"], e["message"]) for e in received] == [
        ("VALIDATING", 0, "checking"),
        ("IN_PROGRESS", 5, "restoring"),  # the waiting step is carried by the change
    ]
    assert publisher._timer is None, "the step that waited is not published later"
