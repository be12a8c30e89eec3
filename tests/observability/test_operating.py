"""What an operator sees of a real ``recoverly serve`` process: its JSON log lines and its
``/metrics``, after requests with tokens, a backup to a customer bucket and a restore."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from recoverly.demo import seed_demo, seed_demo_backups
from recoverly.resolvers.global_ids import decode_id, to_global_id
from recoverly.services.system import build_runtime
from recoverly.settings import Settings
from tests.clients import http_client
from tests.conftest import GraphQLWebSocket
from tests.processes import ServerProcess
from tests.waiting import wait_for

pytestmark = pytest.mark.slow

POLICY = """mutation Policy($input: CreateBackupPolicyInput!) {
  createBackupPolicy(input: $input) { policy { id } errors { code message } } }"""
BACKUPS = """query Backups($org: ID!) { backups(organizationId: $org, first: 50) {
  nodes { id status failureReason policy { id } source { id } } } }"""
START = """mutation StartRestore($input: StartRestoreInput!) {
  startRestore(input: $input) { restore { id } errors { code message } } }"""
PROGRESS = """subscription Progress($id: ID!) { restoreProgress(restoreId: $id) { status } }"""
FINAL_BACKUP = {"COMPLETED", "INCOMPLETE", "FAILED"}


@dataclass
class Run:
    """One server run and what it was asked to do, with the secrets it was given."""

    log_lines: list[dict[str, Any]]
    log_text: str
    metrics: dict[str, list[tuple[dict[str, str], float]]]
    secrets: list[str]
    restore_id: int
    request_id: str


def metric_samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


class Client:
    def __init__(self, server: ServerProcess, token: str) -> None:
        self.server, self.token = server, token

    async def gql(self, query: str, variables: dict[str, Any], **headers: str) -> Any:
        headers["Authorization"] = f"Bearer {self.token}"
        async with http_client(self.server.url, timeout=30) as client:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        body = response.json()
        assert not body.get("errors"), body
        return body["data"]


async def _customer_backup(client: Client, demo: Any, bucket: dict[str, str]) -> dict[str, Any]:
    org = to_global_id("Organization", demo.organizations["initech"])
    instance = to_global_id("ProductInstance", demo.instances["initech_jira"])
    policy = await client.gql(
        POLICY,
        {
            "input": {
                "instanceId": instance,
                "schedule": "ONCE",
                "storage": "INTERNAL_AND_CUSTOMER",
                "customerBucket": bucket,
            }
        },
    )
    assert policy["createBackupPolicy"]["errors"] == []
    policy_id = policy["createBackupPolicy"]["policy"]["id"]

    async def finished() -> dict[str, Any] | None:
        nodes = (await client.gql(BACKUPS, {"org": org}))["backups"]["nodes"]
        mine = [n for n in nodes if (n["policy"] or {}).get("id") == policy_id]
        return mine[0] if mine and mine[0]["status"] in FINAL_BACKUP else None

    return await wait_for(finished, within=120, what="the policy's backup to finish", poll=0.2)


async def _restore(client: Client, demo: Any, org: str) -> str:
    nodes = (await client.gql(BACKUPS, {"org": org}))["backups"]["nodes"]
    source = to_global_id("ProductInstance", demo.instances["acme_jira"])
    backup = next(n for n in nodes if n["source"]["id"] == source and n["status"] == "COMPLETED")
    destination = to_global_id("ProductInstance", demo.instances["acme_jira_sandbox"])
    started = await client.gql(
        START, {"input": {"backupId": backup["id"], "destinationId": destination}}
    )
    assert started["startRestore"]["errors"] == []
    restore_id: str = started["startRestore"]["restore"]["id"]
    async with websockets.connect(
        client.server.ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as ws:
        connection = GraphQLWebSocket(ws)
        await connection.init(client.token)
        operation = await connection.subscribe(PROGRESS, {"id": restore_id})
        events = [event async for event in connection.events(operation)]
    assert events[-1]["restoreProgress"]["status"] == "COMPLETED"
    return restore_id


@pytest.fixture(scope="module")
async def run(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: str,
    s3_credentials: dict[str, str],
) -> AsyncIterator[Run]:
    data_dir: Path = tmp_path_factory.mktemp("operating")
    tag = uuid.uuid4().hex[:12]
    s3_bucket = f"recoverly-operating-{tag}"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=s3_credentials["access_key_id"],
        aws_secret_access_key=s3_credentials["secret_access_key"],
    )
    s3.create_bucket(Bucket=s3_bucket)
    s3.close()
    token, other, secret = f"acme-{tag}-token", f"globex-{tag}-token", f"bucket-{tag}-secret"
    wrong = f"wrong-{tag}-token"
    database_url = f"sqlite:///{data_dir / 'recoverly.db'}"
    runtime = build_runtime(Settings(data_dir=data_dir, database_url=database_url))
    await runtime.db.migrate()
    demo = await seed_demo(runtime.db, demo_token=token, other_token=other)
    await seed_demo_backups(runtime, demo)
    await runtime.db.dispose()

    env = {
        "RECOVERLY_LOG_FORMAT": "json",
        "RECOVERLY_LOG_LEVEL": "info",
        "RECOVERLY_ALLOW_PRIVATE_ENDPOINTS": "true",  # the S3 server is on loopback
    }
    server = ServerProcess(data_dir=data_dir, database_url=database_url, env=env)
    await server.start()
    try:
        client = Client(server, token)
        org = to_global_id("Organization", demo.organizations["acme"])
        request_id = f"req-{tag}"
        await client.gql("query Viewer { viewer { email } }", {}, **{"X-Request-ID": request_id})
        async with http_client(server.url) as anonymous:
            denied = await anonymous.post(
                "/graphql",
                json={"query": "{ viewer { email } }"},
                headers={"Authorization": f"Bearer {wrong}"},
            )
            assert denied.status_code == 401
        bucket = {"bucket": s3_bucket, "endpointUrl": s3_endpoint, "prefix": "recoverly"}
        bucket |= {"accessKeyId": s3_credentials["access_key_id"], "secretAccessKey": secret}
        backup = await _customer_backup(client, demo, bucket)
        assert backup["status"] == "COMPLETED", backup["failureReason"]
        restore = await _restore(client, demo, org)
        async with http_client(server.url) as scraper:
            metrics = (await scraper.get("/metrics")).text
    finally:
        await server.stop()
    text = server.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    restore_id = decode_id(restore, "Restore")
    assert restore_id is not None
    yield Run(
        log_lines=lines,
        log_text=text,
        metrics=metric_samples(metrics),
        secrets=[token, other, wrong, secret],
        restore_id=restore_id,
        request_id=request_id,
    )


def test_every_log_line_is_json_with_level_and_time(run: Run) -> None:
    assert run.log_lines
    assert all({"event", "level", "timestamp", "logger"} <= set(line) for line in run.log_lines)


def test_request_line_carries_request_id_operation_and_admin(run: Run) -> None:
    mine = [line for line in run.log_lines if line.get("request_id") == run.request_id]
    request = [line for line in mine if line["event"] == "http request"]
    assert len(request) == 1
    assert request[0]["operation_name"] == "Viewer"
    assert request[0]["operation_type"] == "query"
    assert request[0]["admin_id"] is not None
    assert request[0]["outcome"] == "ok" and request[0]["status"] == 200
    assert request[0]["duration_ms"] >= 0
    denied = [
        line
        for line in run.log_lines
        if line["event"] == "http request" and line.get("status") == 401
    ]
    assert denied and denied[0]["outcome"] == "unauthorized" and denied[0]["request_id"]


def test_request_line_and_latency_histogram_share_one_duration(run: Run) -> None:
    # The Viewer query ran once: its histogram holds the duration of its request line.
    (line,) = [line for line in run.log_lines if line.get("operation_name") == "Viewer"]
    (observed,) = [
        value
        for labels, value in run.metrics["recoverly_graphql_operation_duration_seconds_sum"]
        if labels["operation_name"] == "Viewer"
    ]
    assert observed == pytest.approx(line["duration_ms"] / 1000, abs=0.000006)


def test_restore_job_lines_carry_restore_id_phase_and_attempt(run: Run) -> None:
    job_lines = [line for line in run.log_lines if line.get("job") == "restore.run"]
    assert job_lines
    assert all(line["restore_id"] == run.restore_id for line in job_lines)
    assert all(line["attempt"] == 1 and "phase" in line for line in job_lines)
    events = [line["event"] for line in job_lines]
    assert events[0] == "restore started" and "restore finished" in events
    phases = {line["phase"] for line in job_lines}
    assert {"VALIDATING", "CONTENT", "FINALIZING"} <= phases
    finished = next(line for line in job_lines if line["event"] == "restore finished")
    assert finished["status"] == "COMPLETED" and finished["entities"] > 0
    queued = [line for line in run.log_lines if line["event"] == "restore queued"]
    assert queued[0]["restore_id"] == run.restore_id and queued[0]["request_id"]


def test_backup_job_lines_carry_backup_id(run: Run) -> None:
    job_lines = [line for line in run.log_lines if line.get("job") == "backup.run"]
    assert job_lines and all(line["backup_id"] and line["attempt"] for line in job_lines)
    assert {"exporting", "finished"} <= {line["phase"] for line in job_lines}


def test_no_token_or_secret_in_the_log(run: Run) -> None:
    for secret in run.secrets:
        assert secret not in run.log_text


def test_metrics_count_the_restore_its_status_and_duration(run: Run) -> None:
    samples = run.metrics
    assert samples["recoverly_restores_started_total"] == [({}, 1.0)]
    assert ({"status": "COMPLETED"}, 1.0) in samples["recoverly_restores_finished_total"]
    counts = dict(
        (labels["status"], value)
        for labels, value in samples["recoverly_restore_duration_seconds_count"]
    )
    assert counts["COMPLETED"] == 1.0
    durations = samples["recoverly_restore_duration_seconds_sum"]
    assert durations[0][1] > 0
    assert samples["recoverly_restore_entities_total"][0][1] > 6000
    assert samples["recoverly_restore_bytes_total"][0][1] > 0
    assert ({"status": "COMPLETED"}, 1.0) in samples["recoverly_backups_finished_total"]


def test_metrics_count_graphql_operations_by_name_and_type(run: Run) -> None:
    operations = {
        (labels["operation_name"], labels["operation_type"], labels["outcome"]): value
        for labels, value in run.metrics["recoverly_graphql_operations_total"]
    }
    assert operations[("StartRestore", "mutation", "ok")] == 1.0
    assert operations[("Viewer", "query", "ok")] == 1.0
    assert operations[("Progress", "subscription", "ok")] == 1.0
    assert operations[("Backups", "query", "ok")] >= 1.0
    latency = {
        labels["operation_name"]: value
        for labels, value in run.metrics["recoverly_graphql_operation_duration_seconds_count"]
    }
    assert latency["StartRestore"] == 1.0
    assert run.metrics["recoverly_graphql_subscriptions"] == [({}, 0.0)]
    assert run.metrics["recoverly_job_queue_depth"] == [({}, 0.0)]
    pool = {labels["state"] for labels, _ in run.metrics["recoverly_db_pool_connections"]}
    assert pool == {"in_use", "idle", "overflow"}
