"""The command line, run as a user runs it: ``recoverly backup inspect`` and how
``recoverly serve`` starts (configuration errors, a taken port, an interrupted demo seed)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clients import http_client
from tests.conftest import DEMO_TOKEN
from tests.processes import ServerProcess, free_port
from tests.products.test_inspect import make_archive
from tests.waiting import wait_for


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recoverly.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "RECOVERLY_DEMO_TOKEN": DEMO_TOKEN, **(env or {})},
    )


def test_backup_inspect_prints_manifest_and_verifies(tmp_path: Path) -> None:
    path = make_archive(tmp_path / "backup.zip")
    result = run_cli("backup", "inspect", str(path), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "CONFLUENCE" in result.stdout
    assert "1234" in result.stdout.replace(",", "")
    assert "checksums OK" in result.stdout


def test_backup_inspect_rejects_a_corrupted_archive(tmp_path: Path) -> None:
    path = make_archive(tmp_path / "backup.zip")
    data = bytearray(path.read_bytes())
    data[len(data) // 4] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run_cli("backup", "inspect", str(path), "--no-progress")
    assert result.returncode == 1
    assert "checksums OK" not in result.stdout


def test_backup_inspect_of_a_missing_file_fails_clearly(tmp_path: Path) -> None:
    result = run_cli("backup", "inspect", str(tmp_path / "nope.zip"))
    assert result.returncode != 0
    assert "nope.zip" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"RECOVERLY_DATABASE_URL": "garbage"}, "not a database URL"),
        ({"RECOVERLY_DATABASE_URL": "mysql://db/recoverly"}, "unsupported database 'mysql'"),
        (
            {"RECOVERLY_DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:1/recoverly"},
            "cannot use the database postgresql://postgres:***@127.0.0.1:1/recoverly",
        ),
        ({"RECOVERLY_PORT": "eighty"}, "invalid setting RECOVERLY_PORT"),
        ({"RECOVERLY_JOB_RUNNER": "cron"}, "RECOVERLY_JOB_RUNNER must be one of"),
    ],
)
def test_configuration_errors_are_one_clear_line(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    result = run_cli(
        "serve", "--port", str(free_port()), env={"RECOVERLY_DATA_DIR": str(tmp_path), **env}
    )
    assert_one_line(result, expected)
    assert "secret" not in result.stderr


def test_a_worker_without_its_database_is_one_clear_line(tmp_path: Path) -> None:
    url = "postgresql://postgres@127.0.0.1:1/recoverly"
    env = {"RECOVERLY_JOB_RUNNER": "queue", "RECOVERLY_DATABASE_URL": url}
    result = run_cli("worker", env={"RECOVERLY_DATA_DIR": str(tmp_path), **env})
    assert_one_line(result, f"cannot use the database {url}")


def assert_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("recoverly: ") and expected in result.stderr


def test_a_taken_port_is_found_before_seeding(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "serve", "--demo", "--port", str(port), env={"RECOVERLY_DATA_DIR": str(tmp_path / "d")}
        )
    assert result.returncode == 2
    assert (
        result.stderr == f"recoverly: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    )
    assert not (tmp_path / "d").exists(), "nothing was seeded"


class DemoServer(ServerProcess):
    def arguments(self) -> list[str]:
        return ["--demo", "--demo-scale", "1", *super().arguments()]

    async def start_seeding(self) -> None:
        """Start without waiting for the server: the seed runs first."""
        env = {
            **os.environ,
            "RECOVERLY_DATA_DIR": str(self.data_dir),
            "RECOVERLY_DATABASE_URL": self.database_url,
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "recoverly.cli",
                self.command,
                *self.arguments(),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )


def backups(database: Path) -> list[tuple[str, str]]:
    """(status, site name) of every backup, straight from the file."""
    if not database.exists():
        return []
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
        try:
            return conn.execute(
                "SELECT backup.status, productinstance.name FROM backup "
                "JOIN productinstance ON productinstance.id = backup.instance_id ORDER BY backup.id"
            ).fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return []


def locked_backups(database: Path) -> tuple[sqlite3.Connection, list[str]] | None:
    """The status of every backup, read holding the write lock (BEGIN IMMEDIATE): the seed
    cannot move a backup on until the returned connection closes. None before the tables
    exist."""
    if not database.exists():
        return None
    conn = sqlite3.connect(database, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN IMMEDIATE")
        statuses = [row[0] for row in conn.execute("SELECT status FROM backup ORDER BY id")]
    except sqlite3.OperationalError:  # not migrated yet
        conn.close()
        return None
    return conn, statuses


@pytest.mark.slow
async def test_an_interrupted_demo_seed_is_completed_by_the_next_start(tmp_path: Path) -> None:
    database = tmp_path / "recoverly.db"
    url, env = f"sqlite:///{database}", {"RECOVERLY_DEMO_TOKEN": DEMO_TOKEN}
    first = DemoServer(data_dir=tmp_path, database_url=url, env=env)
    await first.start_seeding()

    async def killed_mid_backup() -> bool:
        first._check_alive()
        found = await asyncio.to_thread(locked_backups, database)
        if found is None:
            return False
        conn, statuses = found
        try:
            if "IN_PROGRESS" not in statuses:
                return False
            await first.kill()  # while the backup cannot finish
            return True
        finally:
            conn.close()

    await wait_for(killed_mid_backup, within=120, what="the seed to be making a backup")
    interrupted = await asyncio.to_thread(backups, database)
    assert "IN_PROGRESS" in {status for status, _ in interrupted}
    assert len(interrupted) < 4

    second = DemoServer(data_dir=tmp_path, database_url=url, env=env)
    await second.start()
    try:
        final = await asyncio.to_thread(backups, database)
        assert [status for status, _ in final] == ["EXPIRED", "COMPLETED", "COMPLETED", "COMPLETED"]
        assert [site for _, site in final] == [
            "Acme Jira",
            "Acme Jira",
            "Acme Confluence",
            "Acme Jira",
        ]
        assert not list((tmp_path / "work").glob("*.zip")), "no half-written archive left"
        headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
        async with http_client(second.url, headers=headers) as client:
            body = (await client.post("/graphql", json={"query": "{ viewer { email } }"})).json()
        assert body["data"] == {"viewer": {"email": "admin@acme.example"}}
    finally:
        await second.stop()
    log = second.log_path.read_text()
    assert "Recoverly demo completed: an earlier seed had been interrupted" in log
    assert f"Console:             {second.url}/#token={DEMO_TOKEN}" in log
    assert f"{4 - len(interrupted) + 1} backup" in log, "the interrupted one and the rest"
