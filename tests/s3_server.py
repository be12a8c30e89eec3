"""A real moto S3 server, started once per session on loopback, with one empty bucket per test
(imported as fixtures by tests/conftest.py)."""

from __future__ import annotations

import asyncio
import http.client
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.processes import free_port
from tests.waiting import wait_for


@pytest.fixture(scope="session")
def s3_credentials() -> dict[str, str]:
    """Fake keys the moto server accepts; passed explicitly, never read from the environment."""
    return {"access_key_id": "testing-key", "secret_access_key": "testing-secret"}


def _answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/moto-api/")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


@pytest.fixture(scope="session")
async def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """URL of a moto server subprocess; AWS config files and profiles of the developer are
    hidden so only the explicit fake credentials are used."""
    home = tmp_path_factory.mktemp("aws")
    log_path = home / "moto.log"
    port = free_port()
    with pytest.MonkeyPatch.context() as env, log_path.open("wb") as log:
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        env.setenv("AWS_CONFIG_FILE", str(home / "config"))
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        server = subprocess.Popen(  # noqa: ASYNC220  (started once; it runs for the session)
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            await _wait_until_ready(server, port, log_path)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def _read(path: Path) -> str:
    return path.read_text()


async def _wait_until_ready(server: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    async def answers() -> bool:
        if server.poll() is not None:
            pytest.fail(f"moto server exited early:\n{_read(log_path)}")
        return await asyncio.to_thread(_answers_http, port)

    await wait_for(answers, within=30, what=f"the moto server to answer on port {port}", poll=0.05)


@pytest.fixture
def s3_client(s3_endpoint: str, s3_credentials: dict[str, str]) -> Iterator[Any]:
    """A plain boto3 client on the moto server, to arrange and inspect what the store did."""
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3_credentials["access_key_id"],
        aws_secret_access_key=s3_credentials["secret_access_key"],
    )
    yield client
    client.close()


@pytest.fixture
def s3_bucket(s3_client: Any) -> str:
    """A new empty bucket on the moto server."""
    name = f"recoverly-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name
