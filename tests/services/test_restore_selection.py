"""Selective restores into live sites, through a real server: chosen projects and spaces,
SKIP, RENAME and MERGE, cancel, and the input rules with their field paths."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import delete, insert, select

from recoverly.database import Database
from recoverly.models import (
    ConfluenceAttachment,
    ConfluenceComment,
    ConfluencePage,
    ConfluenceSpace,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    table_of,
)
from recoverly.resolvers.global_ids import to_global_id
from recoverly.services.restore_job import RestoreRowStore
from tests.conftest import Deployment
from tests.services.test_restores import (
    FINAL,
    PROGRESS,
    digest,
    follow,
    hold_after_first_rows,
    latest_backup,
    restore_input,
)

START = """mutation($input: StartRestoreInput!) {
  startRestore(input: $input) {
    restore { id status selection { projectKeys spaceKeys keyRenames { from to } }
      conflictPolicy }
    errors { code message field }
  }
}"""
PREVIEW = """query($input: StartRestoreInput!) { restorePreview(input: $input) {
  itemsTotal entityCounts errors { code message field } } }"""
NODE = "... on Restore { status entityCounts skippedSpaces failureReason conflictPolicy " + (
    "selection { projectKeys spaceKeys keyRenames { from to } } progress { itemsDone itemsTotal } }"
)
ISSUES, COMMENTS, ATTACHMENTS = table_of(JiraIssue), table_of(JiraComment), table_of(JiraAttachment)
PROJECTS = table_of(JiraProject)
PAGES, SPACES = table_of(ConfluencePage), table_of(ConfluenceSpace)
PAGE_COMMENTS, PAGE_ATTACHMENTS = table_of(ConfluenceComment), table_of(ConfluenceAttachment)


@pytest.fixture(scope="module")
def site(own_deployment: Deployment) -> Deployment:
    """These restores change live sites: the module has a deployment of its own."""
    return own_deployment


async def selective(
    site: Deployment, backup: str, destination: str, keys: dict[str, list[str]], **extra: Any
) -> dict[str, Any]:
    """Preview, then start a selective restore and follow it to the end: its final node."""
    variables = {"input": restore_input(site, backup, destination, selection=keys, **extra)}
    preview = (await site.gql(PREVIEW, variables))["restorePreview"]
    assert preview["errors"] == []
    started = (await site.gql(START, variables))["startRestore"]
    assert started["errors"] == [], started["errors"]
    events = await follow(site, started["restore"]["id"])
    assert events[-1]["status"] == "COMPLETED"
    assert events[-1]["itemsDone"] == events[-1]["itemsTotal"] == preview["itemsTotal"]
    node = await restore_node(site, started["restore"]["id"])
    assert node["entityCounts"] == preview["entityCounts"]
    return {**node, "preview": preview}


async def restore_node(site: Deployment, restore_id: str) -> dict[str, Any]:
    return await site.wait_until(restore_id, NODE, lambda n: n["status"] in FINAL)


def jira_id(site: Deployment) -> int:
    return site.demo.instances["acme_jira"]


async def execute(db: Database, *statements: Any) -> None:
    async with db.transaction() as session:
        conn = await session.connection()
        for statement in statements:
            await conn.execute(statement)


async def scalars(db: Database, statement: Any) -> list[Any]:
    async with db.session() as session:
        return list((await (await session.connection()).execute(statement)).scalars())


async def project_id(db: Database, instance_id: int, key: str) -> int:
    found = select(PROJECTS.c.id).where(
        PROJECTS.c.instance_id == instance_id, PROJECTS.c.key == key
    )
    return (await scalars(db, found))[0]


async def issues_of(db: Database, instance_id: int, key: str) -> list[int]:
    """The project's issues, in ID order."""
    of_project = select(ISSUES.c.id).where(
        ISSUES.c.project_id == await project_id(db, instance_id, key)
    )
    return await scalars(db, of_project.order_by(ISSUES.c.id))


async def delete_issues(db: Database, issue_ids: list[int]) -> dict[str, int]:
    """Delete issues with their comments and attachments; how many rows of each went."""
    children = {"comments": COMMENTS, "attachments": ATTACHMENTS}
    counts = {"issues": len(issue_ids)}
    for name, table in children.items():
        found = select(table.c.id).where(table.c.issue_id.in_(issue_ids))
        counts[name] = len(await scalars(db, found))
    await execute(
        db,
        *(delete(t).where(t.c.issue_id.in_(issue_ids)) for t in children.values()),
        delete(ISSUES).where(ISSUES.c.id.in_(issue_ids)),
    )
    return counts


def written(counts: dict[str, int]) -> dict[str, int]:
    """Rows written per entity, leaving out the entities that wrote none."""
    return {name: n for name, n in counts.items() if n}


async def test_a_deleted_project_comes_back_into_its_live_site(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    at_backup = await digest(site, "acme_jira")
    # After the backup: work goes on in ENG, and HR is deleted.
    eng_issue = (await issues_of(site.runtime.db, jira_id(site), "ENG"))[0]
    await execute(
        site.runtime.db,
        insert(COMMENTS).values(
            instance_id=jira_id(site), issue_id=eng_issue, body="after the backup",
            created_at=datetime.now(UTC),
        ),
    )  # fmt: skip
    await delete_issues(site.runtime.db, await issues_of(site.runtime.db, jira_id(site), "HR"))
    await execute(
        site.runtime.db,
        delete(PROJECTS).where(
            PROJECTS.c.id == await project_id(site.runtime.db, jira_id(site), "HR")
        ),
    )
    before = await digest(site, "acme_jira")
    assert "HR" not in before["containers"]
    assert before["containers"]["ENG"] != at_backup["containers"]["ENG"]

    node = await selective(site, backup, "acme_jira", {"projectKeys": ["HR"]})

    after = await digest(site, "acme_jira")
    assert after["containers"]["HR"] == at_backup["containers"]["HR"]
    assert {k: v for k, v in after["containers"].items() if k != "HR"} == before["containers"]
    assert node["selection"] == {"projectKeys": ["HR"], "spaceKeys": None, "keyRenames": []}
    assert node["conflictPolicy"] == "SKIP"
    assert node["skippedSpaces"] == []
    assert written(node["entityCounts"])["projects"] == 1
    assert sum(node["entityCounts"].values()) == node["progress"]["itemsTotal"]


async def test_merge_brings_back_exactly_the_deleted_issues(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_jira")
    live = await digest(site, "acme_jira")
    ops = await issues_of(site.runtime.db, jira_id(site), "OPS")
    # 50 issues, those with attachments among them (the demo attaches files to a few).
    with_files = sorted(
        set(await scalars(site.runtime.db, select(ATTACHMENTS.c.issue_id))) & set(ops)
    )[:10]
    doomed = with_files + [i for i in ops[10::2] if i not in with_files][: 50 - len(with_files)]
    gone = await delete_issues(site.runtime.db, doomed)
    assert gone["issues"] == 50
    assert gone["comments"] > 0 and gone["attachments"] > 0, gone  # they come back too
    before = await digest(site, "acme_jira")

    node = await selective(
        site, backup, "acme_jira", {"projectKeys": ["OPS"]}, conflictPolicy="MERGE"
    )

    assert written(node["entityCounts"]) == written(gone)
    assert node["progress"]["itemsTotal"] == sum(gone.values())
    after = await digest(site, "acme_jira")
    assert after == live
    untouched = {k: v for k, v in before["containers"].items() if k != "OPS"}
    assert {k: v for k, v in after["containers"].items() if k != "OPS"} == untouched


async def test_rename_restores_beside_the_original_and_skip_changes_nothing(
    site: Deployment,
) -> None:
    backup = await latest_backup(site, "acme_jira")
    before = await digest(site, "acme_jira")
    mkt_keys = await scalars(
        site.runtime.db,
        select(ISSUES.c.key).where(
            ISSUES.c.project_id == await project_id(site.runtime.db, jira_id(site), "MKT")
        ),
    )

    renamed = await selective(
        site,
        backup,
        "acme_jira",
        {"projectKeys": ["MKT"]},
        conflictPolicy="RENAME",
        keyRenames=[{"from": "MKT", "to": "MKT2"}],
    )

    assert renamed["selection"]["keyRenames"] == [{"from": "MKT", "to": "MKT2"}]
    audit = await site.gql(
        """query($org: ID!, $id: ID!) { auditEvents(organizationId: $org,
          filter: {action: ["restore.start"], targetId: $id}) { nodes { details } } }""",
        {
            "org": to_global_id("Organization", site.demo.organizations["acme"]),
            "id": renamed["id"],
        },
    )
    details = audit["auditEvents"]["nodes"][0]["details"]
    assert details["conflict_policy"] == "RENAME"
    assert details["selection"] == {
        "keys": ["MKT"],
        "policy": "RENAME",
        "renames": {"MKT": "MKT2"},
    }
    after = await digest(site, "acme_jira")
    assert {k: v for k, v in after["containers"].items() if k != "MKT2"} == before["containers"]
    copy = await scalars(
        site.runtime.db,
        select(ISSUES.c.key).where(
            ISSUES.c.project_id == await project_id(site.runtime.db, jira_id(site), "MKT2")
        ),
    )
    assert sorted(copy) == sorted(key.replace("MKT-", "MKT2-") for key in mkt_keys)
    assert renamed["entityCounts"]["issues"] == len(mkt_keys)

    skipped = await selective(site, backup, "acme_jira", {"projectKeys": ["MKT", "SEC"]})
    assert skipped["skippedSpaces"] == ["MKT", "SEC"]
    assert written(skipped["entityCounts"]) == {}
    assert await digest(site, "acme_jira") == after


async def test_confluence_merge_puts_missing_pages_under_their_parents(site: Deployment) -> None:
    backup = await latest_backup(site, "acme_confluence")
    instance_id = site.demo.instances["acme_confluence"]
    live = await digest(site, "acme_confluence")
    space = (
        await scalars(
            site.runtime.db,
            select(SPACES.c.id).where(SPACES.c.instance_id == instance_id, SPACES.c.key == "ENG"),
        )
    )[0]
    in_space = select(PAGES.c.id, PAGES.c.parent_id).where(PAGES.c.space_id == space)
    async with site.runtime.db.session() as session:
        pages = (await (await session.connection()).execute(in_space)).all()
    children: dict[int | None, list[int]] = {}
    for page_id, parent_id in pages:
        children.setdefault(parent_id, []).append(page_id)
    # A whole subtree (a top page with children), and one child page whose parent stays.
    top = next(p for p in children[None] if any(children.get(c) for c in children.get(p, [])))
    subtree, todo = [], [top]
    while todo:
        page = todo.pop()
        subtree.append(page)
        todo.extend(children.get(page, []))
    other = next(p for p in children[None] if p != top and children.get(p))
    doomed = [*subtree, children[other][0], *children.get(children[other][0], [])]
    await execute(
        site.runtime.db,
        delete(PAGE_ATTACHMENTS).where(PAGE_ATTACHMENTS.c.page_id.in_(doomed)),
        delete(PAGE_COMMENTS).where(PAGE_COMMENTS.c.page_id.in_(doomed)),
        delete(PAGES).where(PAGES.c.id.in_(doomed)),
    )
    assert len(subtree) >= 3

    node = await selective(
        site, backup, "acme_confluence", {"spaceKeys": ["ENG"]}, conflictPolicy="MERGE"
    )

    assert node["entityCounts"]["pages"] == len(doomed)
    # Page rows are digested with their parent's title: equal digests, equal page trees.
    assert await digest(site, "acme_confluence") == live


async def test_canceled_merge_leaves_the_destination_as_it_was(
    site: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = await latest_backup(site, "acme_jira")
    live = await digest(site, "acme_jira")
    await delete_issues(site.runtime.db, await issues_of(site.runtime.db, jira_id(site), "DATA"))
    before = await digest(site, "acme_jira")
    variables = {
        "input": restore_input(
            site, backup, "acme_jira", selection={"projectKeys": ["DATA"]}, conflictPolicy="MERGE"
        )
    }
    resume = hold_after_first_rows(site, monkeypatch)
    started = (await site.gql(START, variables))["startRestore"]
    restore_id = started["restore"]["id"]
    async with site.websocket() as ws:
        operation = await ws.subscribe(PROGRESS, {"id": restore_id})
        async for event in ws.events(operation):
            if event["restoreProgress"]["itemsDone"] > 0:
                break
    canceled = await site.gql(
        "mutation($i: CancelRestoreInput!) { cancelRestore(input: $i) { errors { code } } }",
        {"i": {"restoreId": restore_id}},
    )
    resume.set()
    assert canceled["cancelRestore"]["errors"] == []
    node = await restore_node(site, restore_id)
    assert node["status"] == "CANCELED"
    assert await digest(site, "acme_jira") == before

    monkeypatch.undo()
    await selective(site, backup, "acme_jira", {"projectKeys": ["DATA"]}, conflictPolicy="MERGE")
    assert await digest(site, "acme_jira") == live


async def test_failed_merge_removes_exactly_what_it_wrote(
    site: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup = await latest_backup(site, "acme_jira")
    live = await digest(site, "acme_jira")
    await delete_issues(
        site.runtime.db, (await issues_of(site.runtime.db, jira_id(site), "WEB"))[::3]
    )
    before = await digest(site, "acme_jira")
    report = RestoreRowStore.report_progress

    async def failing(store: RestoreRowStore, phase: str, items_done: int) -> None:
        await report(store, phase, items_done)
        if items_done > 0:
            raise RuntimeError("the disk is full")

    monkeypatch.setattr(RestoreRowStore, "report_progress", failing)
    variables = {
        "input": restore_input(
            site, backup, "acme_jira", selection={"projectKeys": ["WEB"]}, conflictPolicy="MERGE"
        )
    }
    started = (await site.gql(START, variables))["startRestore"]
    node = await restore_node(site, started["restore"]["id"])
    assert node["status"] == "FAILED"
    assert node["progress"]["itemsDone"] > 0, "it failed after writing rows"
    assert await digest(site, "acme_jira") == before
    monkeypatch.undo()
    await selective(site, backup, "acme_jira", {"projectKeys": ["WEB"]}, conflictPolicy="MERGE")
    assert await digest(site, "acme_jira") == live


async def errors(site: Deployment, backup: str, destination: str, **extra: Any) -> Any:
    """The errors of startRestore, which restorePreview returns too."""
    variables = {"input": restore_input(site, backup, destination, **extra)}
    started = (await site.gql(START, variables))["startRestore"]
    previewed = (await site.gql(PREVIEW, variables))["restorePreview"]
    assert started["restore"] is None
    assert previewed["errors"] == started["errors"]
    return [(e["code"], e["field"], e["message"]) for e in started["errors"]]


async def test_selection_input_errors_point_at_the_key(site: Deployment) -> None:
    jira, confluence = (
        await latest_backup(site, "acme_jira"),
        await latest_backup(site, "acme_confluence"),
    )
    field = ["input", "selection", "projectKeys", "1"]
    assert await errors(site, jira, "acme_jira", selection={"projectKeys": ["HR", "NOPE"]}) == [
        ("INVALID_INPUT", field, "the backup holds no project 'NOPE'")
    ]
    wrong = await errors(site, jira, "acme_jira", selection={"spaceKeys": ["HR"]})
    assert [(code, path) for code, path, _ in wrong] == [
        ("INVALID_INPUT", ["input", "selection", "spaceKeys"])
    ]
    wrong = await errors(site, confluence, "acme_confluence", selection={"projectKeys": ["HR"]})
    assert [(code, path) for code, path, _ in wrong] == [
        ("INVALID_INPUT", ["input", "selection", "projectKeys"])
    ]
    empty = await errors(site, jira, "acme_jira", selection={"projectKeys": []})
    assert [path for _, path, _ in empty] == [["input", "selection", "projectKeys"]]
    rename = {"from": "HR", "to": "HR2"}
    cases = [
        ({"keyRenames": [rename]}, ["input", "keyRenames"]),  # no RENAME
        (
            {"conflictPolicy": "RENAME", "keyRenames": [{"from": "OPS", "to": "OPS2"}]},
            ["input", "keyRenames", "0", "from"],  # not selected
        ),
        (
            {"conflictPolicy": "RENAME", "keyRenames": [{"from": "HR", "to": "hr-2"}]},
            ["input", "keyRenames", "0", "to"],  # not a project key
        ),
        (
            {"conflictPolicy": "RENAME", "keyRenames": [{"from": "HR", "to": "OPS"}]},
            ["input", "keyRenames", "0", "to"],  # exists in the destination
        ),
        ({"conflictPolicy": "RENAME"}, ["input", "selection", "projectKeys", "0"]),  # no target
    ]
    for extra, path in cases:
        found = await errors(site, jira, "acme_jira", selection={"projectKeys": ["HR"]}, **extra)
        assert [(code, where) for code, where, _ in found] == [("INVALID_INPUT", path)], extra
    two = {"projectKeys": ["HR", "OPS"]}
    cases = [
        (
            {"selection": {"projectKeys": ["HR", "OPS", "HR"]}},
            ["input", "selection", "projectKeys", "2"],  # twice
        ),
        (
            {"selection": two, "conflictPolicy": "RENAME",
             "keyRenames": [{"from": "HR", "to": "NEW"}, {"from": "OPS", "to": "NEW"}]},
            ["input", "keyRenames", "1", "to"],  # two projects onto one key
        ),
        (
            {"selection": two, "conflictPolicy": "RENAME",
             "keyRenames": [{"from": "HR", "to": "OPS"}]},
            ["input", "keyRenames", "0", "to"],  # onto a selected key that keeps its name
        ),
        ({"conflictPolicy": "MERGE"}, ["input", "conflictPolicy"]),  # no selection
    ]  # fmt: skip
    for extra, path in cases:
        found = await errors(site, jira, "acme_jira", **extra)
        assert [(code, where) for code, where, _ in found] == [("INVALID_INPUT", path)], extra
    exists = await errors(
        site,
        jira,
        "acme_jira",
        selection={"projectKeys": ["HR"]},
        conflictPolicy="RENAME",
        keyRenames=[{"from": "HR", "to": "OPS"}],
    )
    assert "'OPS' already exists in the destination" in exists[0][2]
    # Without a selection, the rules of a full-site restore: a live Jira site is refused.
    full = await errors(site, jira, "acme_jira")
    assert [code for code, _, _ in full] == ["DESTINATION_NOT_EMPTY"]
