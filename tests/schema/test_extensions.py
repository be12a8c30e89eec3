"""A mutation's request gives its read connection back before the mutation writes."""

from __future__ import annotations

from recoverly.resolvers.context import Context
from recoverly.resolvers.global_ids import to_global_id
from recoverly.schema.schema import build_schema
from tests.conftest import DEMO_TOKEN, Deployment

CANCEL = """mutation($id: ID!) { cancelBackup(input: {backupId: $id}) {
  errors { code } } }"""


async def run(deployment: Deployment, query: str, variables: dict[str, str]) -> Context:
    runtime = deployment.runtime
    context = Context(runtime=runtime)
    assert await context.authenticate(f"Bearer {DEMO_TOKEN}")
    try:
        result = await build_schema(runtime.settings).execute(
            query, variable_values=variables, context_value=context
        )
    finally:
        await context.db.close()
    assert result.errors is None
    return context


async def test_a_mutation_reads_per_use_and_a_query_on_one_session(deployment: Deployment) -> None:
    missing = to_global_id("Backup", 424242)
    mutation = await run(deployment, CANCEL, {"id": missing})
    query = await run(deployment, "query($id: ID!) { node(id: $id) { id } }", {"id": missing})
    assert (mutation.db.per_use, query.db.per_use) == (True, False)
