"""createBackupPolicy refuses bad input with INVALID_INPUT naming the field, refuses
endpoints that would make the server reach into private or metadata networks, and probes
the customer bucket before the policy exists."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from recoverly.models import utcnow
from recoverly.resolvers.global_ids import to_global_id
from tests.conftest import Deployment

POLICY = """mutation($input: CreateBackupPolicyInput!) {
  createBackupPolicy(input: $input) { policy { id name } errors { code message field } }
}"""
BUCKET = ["input", "customerBucket"]


async def create(deployment: Deployment, **fields: Any) -> dict[str, Any]:
    instance_id = to_global_id("ProductInstance", deployment.demo.instances["acme_jira_sandbox"])
    start_at = fields.pop("startAt", (utcnow() + timedelta(days=30)).isoformat())
    variables = {"input": {"instanceId": instance_id, "startAt": start_at, **fields}}
    data = await deployment.answered_meanwhile(deployment.gql(POLICY, variables))
    return data["createBackupPolicy"]  # type: ignore[no-any-return]


def customer(**bucket: Any) -> dict[str, Any]:
    return {
        "storage": "INTERNAL_AND_CUSTOMER",
        "customerBucket": {"bucket": "acme-backups", **bucket},
    }


def assert_refused(payload: dict[str, Any], field: list[str], code: str = "INVALID_INPUT") -> None:
    assert payload["policy"] is None
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [(code, field)], payload


@pytest.fixture
def public_endpoints_only(deployment: Deployment) -> Iterator[None]:
    settings = deployment.runtime.settings
    settings.allow_private_endpoints = False
    try:
        yield
    finally:
        settings.allow_private_endpoints = True


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "a\x00b", "tab\there", "\u202eevil"])
async def test_bad_names_are_refused(deployment: Deployment, name: str) -> None:
    assert_refused(await create(deployment, name=name), ["input", "name"])


async def test_a_megabyte_name_is_refused(deployment: Deployment) -> None:
    assert_refused(await create(deployment, name="n" * 200_000), ["input", "name"])


async def test_a_good_name_is_kept_trimmed(deployment: Deployment) -> None:
    payload = await create(deployment, name="  Nightly Jira  ")
    assert payload["errors"] == []
    assert payload["policy"]["name"] == "Nightly Jira"


@pytest.mark.parametrize(
    "start_at",
    [
        "2030-01-01T00:00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59Z",
        "2001-01-01T00:00:00Z",
    ],
)
async def test_bad_start_times_are_refused(deployment: Deployment, start_at: str) -> None:
    payload = await create(deployment, startAt=start_at)
    assert_refused(payload, ["input", "startAt"])


@pytest.mark.parametrize(
    "bucket",
    ["../../etc/passwd", "UPPER", "ab", "a" * 64, "192.168.1.1", "a..b", "-abc", "xn--abc"],
)
async def test_bucket_names_follow_s3_rules(deployment: Deployment, bucket: str) -> None:
    assert_refused(await create(deployment, **customer(bucket=bucket)), [*BUCKET, "bucket"])


@pytest.mark.parametrize(
    "endpoint",
    [
        "file:///etc/passwd",
        "not a url",
        "gopher://example.com",
        "http://169.254.169.254/latest",
        "https://169.254.169.254/",
        "http://[fe80::1]:9000",
        "http://[::ffff:169.254.169.254]/",
        "https://user:secret@s3.example.com",
        "https://s3.example.com/?x=1",
        "https://0.0.0.0",
    ],
)
async def test_dangerous_endpoints_are_always_refused(
    deployment: Deployment, endpoint: str
) -> None:
    payload = await create(deployment, **customer(endpointUrl=endpoint))
    assert_refused(payload, [*BUCKET, "endpointUrl"])


@pytest.mark.parametrize(
    "endpoint",
    ["http://s3.example.com", "https://127.0.0.1:9000", "https://10.1.2.3", "https://localhost"],
)
async def test_http_and_private_endpoints_need_the_setting(
    deployment: Deployment, endpoint: str, public_endpoints_only: None
) -> None:
    payload = await create(deployment, **customer(endpointUrl=endpoint))
    assert_refused(payload, [*BUCKET, "endpointUrl"])
    assert "RECOVERLY_ALLOW_PRIVATE_ENDPOINTS" in payload["errors"][0]["message"]


async def test_a_name_resolving_to_a_private_address_is_refused_at_connect_time(
    deployment: Deployment, public_endpoints_only: None
) -> None:
    host = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(host, 443)}
    if not all(a.startswith(("127.", "10.", "192.168.")) or a == "::1" for a in addresses):
        pytest.skip(f"{host} resolves to {addresses}, not to a private address")
    payload = await create(deployment, **customer(endpointUrl=f"https://{host}:1"))
    assert_refused(payload, [*BUCKET, "endpointUrl"])
    assert "resolves to a refused address" in payload["errors"][0]["message"]


@pytest.mark.parametrize(
    ("keys", "missing"),
    [({"secretAccessKey": "s"}, "accessKeyId"), ({"accessKeyId": "a"}, "secretAccessKey")],
)
async def test_key_pairs_must_be_complete(
    deployment: Deployment, keys: dict[str, str], missing: str
) -> None:
    payload = await create(deployment, **customer(endpointUrl="https://s3.example.com", **keys))
    assert_refused(payload, [*BUCKET, missing])


async def test_a_missing_bucket_is_refused_when_the_policy_is_created(
    deployment: Deployment, s3_endpoint: str, s3_credentials: dict[str, str]
) -> None:
    keys = {
        "accessKeyId": s3_credentials["access_key_id"],
        "secretAccessKey": s3_credentials["secret_access_key"],
    }
    bucket = f"missing-{uuid.uuid4().hex[:8]}"
    payload = await create(deployment, **customer(bucket=bucket, endpointUrl=s3_endpoint, **keys))
    assert_refused(payload, [*BUCKET, "bucket"])


async def test_an_unreachable_endpoint_is_storage_unreachable(deployment: Deployment) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        payload = await create(deployment, **customer(endpointUrl=f"http://127.0.0.1:{port}"))
    assert_refused(payload, BUCKET, code="STORAGE_UNREACHABLE")
    assert "error ID" in payload["errors"][0]["message"]


async def test_a_reachable_bucket_is_probed_and_left_clean(
    deployment: Deployment,
    s3_endpoint: str,
    s3_bucket: str,
    s3_credentials: dict[str, str],
    s3_client: Any,
) -> None:
    keys = {
        "accessKeyId": s3_credentials["access_key_id"],
        "secretAccessKey": s3_credentials["secret_access_key"],
    }
    payload = await create(
        deployment, **customer(bucket=s3_bucket, endpointUrl=s3_endpoint, prefix="p", **keys)
    )
    assert payload["errors"] == []
    assert s3_client.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0


UPDATE = """mutation($input: UpdateBackupPolicyInput!) {
  updateBackupPolicy(input: $input) { policy { id name } errors { code message field } }
}"""


async def test_updates_follow_the_same_rules_and_seal_a_new_secret(
    deployment: Deployment,
    s3_endpoint: str,
    s3_bucket: str,
    s3_credentials: dict[str, str],
) -> None:
    policy = (await create(deployment, name="updated later"))["policy"]

    async def update(**fields: Any) -> dict[str, Any]:
        variables = {"input": {"policyId": policy["id"], **fields}}
        data = await deployment.answered_meanwhile(deployment.gql(UPDATE, variables))
        return data["updateBackupPolicy"]  # type: ignore[no-any-return]

    assert_refused(await update(name="a\x00b"), ["input", "name"])
    dangerous = customer(endpointUrl="http://169.254.169.254/latest")
    assert_refused(await update(**dangerous), [*BUCKET, "endpointUrl"])
    secret = f"update-secret-{uuid.uuid4().hex}"
    keys = {"accessKeyId": s3_credentials["access_key_id"], "secretAccessKey": secret}
    good = customer(bucket=s3_bucket, endpointUrl=s3_endpoint, **keys)
    assert (await update(**good))["errors"] == []
    database = deployment.runtime.db.url.split(":///", 1)[-1]
    if deployment.runtime.db.is_sqlite:
        await deployment.runtime.db.scrub([])
        stored = await asyncio.to_thread(Path(database).read_bytes)
        assert secret.encode() not in stored
