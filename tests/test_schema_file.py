"""``schema.graphql`` at the repository root is the live schema, exactly."""

from __future__ import annotations

from pathlib import Path

from recoverly.schema.schema import build_schema
from recoverly.settings import Settings

SCHEMA_FILE = Path(__file__).parent.parent / "schema.graphql"


def test_schema_file_matches_live_schema() -> None:
    live = build_schema(Settings()).as_str() + "\n"
    assert SCHEMA_FILE.read_text() == live, "run `make schema` and commit schema.graphql"
