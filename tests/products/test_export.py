"""Exporting a site: the archive holds exactly the site's data, read in chunks, and verifies."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from recoverly.database import Database
from recoverly.models import (
    ConfluencePage,
    ConfluenceSpace,
    GroupMembership,
    GroupProductAccess,
    JiraAttachment,
    JiraComment,
    JiraIssue,
    JiraProject,
    SiteGroup,
    SiteUser,
)
from recoverly.products.archive_reader import ArchiveReader
from recoverly.products.export import ExportStopped, count_export_rows
from tests.products.conftest import LIMIT, Seeded, count, export, instance

JIRA_TABLES = {
    "users": SiteUser,
    "groups": SiteGroup,
    "group_memberships": GroupMembership,
    "group_product_access": GroupProductAccess,
    "projects": JiraProject,
    "issues": JiraIssue,
    "comments": JiraComment,
    "attachments": JiraAttachment,
}


async def test_jira_archive_holds_exactly_the_site_and_verifies(
    db: Database, seeded: Seeded
) -> None:
    jira = seeded.info.instances["acme_jira"]
    with ArchiveReader(seeded.jira_archive, max_expansion_bytes=LIMIT) as reader:
        manifest = reader.verify()
        expected = {
            name: await count(db, model, instance_id=jira) for name, model in JIRA_TABLES.items()
        }
        assert manifest.entity_counts == expected
        assert expected["issues"] == 2000 and expected["attachments"] == 100
        assert manifest.product == "JIRA"
        assert manifest.source_instance == {
            "id": jira,
            "name": "Acme Jira",
            "url": "https://acme.example.net",
            "product": "JIRA",
        }
        assert manifest.options == {
            "include_attachments": True,
            "include_users_and_groups": True,
            "include_personal_spaces": False,
        }
        issue = next(reader.records("jira/issues.jsonl"))
        assert {"id", "project_id", "key", "summary", "created_at"} <= set(issue)
        assert datetime.fromisoformat(issue["created_at"]).utcoffset() is not None
        attachment = next(reader.records("jira/attachments.jsonl"))
        assert len(reader.read_blob(attachment["sha256"])) == attachment["size"]


async def test_chunk_size_does_not_change_the_members(
    db: Database, seeded: Seeded, tmp_path: Path
) -> None:
    small = await export(
        db, seeded.info.instances["acme_jira"], tmp_path / "small.zip", chunk_size=7
    )
    with ArchiveReader(seeded.jira_archive, max_expansion_bytes=LIMIT) as reader:
        assert small.members == reader.manifest.members


async def test_personal_spaces_only_when_asked(
    db: Database, seeded: Seeded, tmp_path: Path
) -> None:
    confluence = seeded.info.instances["acme_confluence"]
    spaces = await count(db, ConfluenceSpace, instance_id=confluence)
    pages = await count(db, ConfluencePage, instance_id=confluence)
    with ArchiveReader(seeded.confluence_archive, max_expansion_bytes=LIMIT) as reader:
        keys = [space["key"] for space in reader.records("confluence/spaces.jsonl")]
        without = reader.manifest.entity_counts
    assert len(keys) == spaces - 1 and not any(key.startswith("~") for key in keys)
    assert without["pages"] < pages

    with_personal = await export(
        db, confluence, tmp_path / "personal.zip", include_personal_spaces=True
    )
    assert with_personal.entity_counts["spaces"] == spaces
    assert with_personal.entity_counts["pages"] == pages
    assert with_personal.entity_counts["comments"] > without["comments"]


async def test_options_leave_out_users_and_attachments(
    db: Database, seeded: Seeded, tmp_path: Path
) -> None:
    manifest = await export(
        db,
        seeded.info.instances["acme_jira"],
        tmp_path / "lean.zip",
        include_attachments=False,
        include_users_and_groups=False,
    )
    assert set(manifest.entity_counts) == {"projects", "issues", "comments"}
    assert set(manifest.members) == {
        "jira/projects.jsonl",
        "jira/issues.jsonl",
        "jira/comments.jsonl",
    }


async def test_progress_counts_every_row_read_and_a_stop_leaves_no_file(
    db: Database, seeded: Seeded, tmp_path: Path
) -> None:
    jira = seeded.info.instances["acme_jira"]
    site = await instance(db, jira)
    total = await count_export_rows(
        db, instance=site, include_attachments=True, include_users_and_groups=True
    )
    seen: list[int] = []

    async def progress(done: int) -> None:
        seen.append(done)

    path = tmp_path / "progress.zip"
    await export(db, jira, path, on_progress=progress)
    assert seen == sorted(seen) and seen[-1] == total
    path.unlink()

    asked = 0

    async def stop_after_three_chunks() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    with pytest.raises(ExportStopped):
        await export(db, jira, path, should_stop=stop_after_three_chunks)
    leftovers = await asyncio.to_thread(lambda: list(tmp_path.glob("progress*")))
    assert leftovers == [], "the partial archive is discarded"
