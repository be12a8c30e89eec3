"""The command line, run as a user runs it: ``recoverly backup inspect``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.products.test_inspect import make_archive


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "recoverly.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
