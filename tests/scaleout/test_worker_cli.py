"""``recoverly worker`` and ``recoverly health`` at the command line (no database needed)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recoverly import cli
from recoverly.services.system import build_runtime
from recoverly.settings import Settings, get_settings


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("RECOVERLY_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_worker_refuses_the_embedded_runner(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("RECOVERLY_JOB_RUNNER", "embedded")
    assert cli.main(["worker"]) == 2
    assert "RECOVERLY_JOB_RUNNER=queue" in capsys.readouterr().err


def test_the_queue_needs_postgresql(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, job_runner="queue")
    with pytest.raises(ValueError, match="PostgreSQL"):
        build_runtime(settings)
    with pytest.raises(ValueError, match="RECOVERLY_JOB_RUNNER"):
        build_runtime(Settings(data_dir=tmp_path, job_runner="celery"))


def test_worker_health_follows_its_liveness_file(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    beat = tmp_path / "alive.json"
    environment.setenv("RECOVERLY_WORKER_HEARTBEAT_FILE", str(beat))
    assert cli.main(["health", "--worker"]) == 1
    beat.write_text(json.dumps({"pid": 1, "worker_ids": [1, 2], "at": time.time()}))
    assert cli.main(["health", "--worker"]) == 0
    beat.write_text(json.dumps({"pid": 1, "worker_ids": [1, 2], "at": time.time() - 120}))
    assert cli.main(["health", "--worker"]) == 1


def test_api_health_is_unhealthy_when_nothing_listens(environment: pytest.MonkeyPatch) -> None:
    from tests.processes import free_port

    environment.setenv("RECOVERLY_PORT", str(free_port()))
    assert cli.main(["health"]) == 1
