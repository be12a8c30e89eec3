"""The migrations build exactly the schema the models declare: Alembic's autogenerate, run
against a database brought to head, finds nothing to change (tables, columns, types,
nullability, indexes, unique constraints, foreign keys), on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import recoverly.models  # noqa: F401  (registers the tables)
from recoverly.database import head_revision
from tests.conftest import empty_database


def _differences(connection: Connection) -> list[Any]:
    # The options of ``alembic revision --autogenerate`` with our env.py (types compared).
    context = MigrationContext.configure(
        connection,
        opts={"compare_type": True, "render_as_batch": connection.dialect.name == "sqlite"},
    )
    return list(compare_metadata(context, SQLModel.metadata))


async def test_autogenerate_finds_no_difference_between_models_and_migrations(
    backend: str, tmp_path: Path
) -> None:
    async with empty_database(backend, tmp_path) as db:
        assert await db.schema_revision() == head_revision()
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(_differences)
    assert differences == []


def test_the_head_read_from_the_files_is_alembics() -> None:
    """The server checks the schema against ``head_revision`` without loading Alembic."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from recoverly.database import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()
