"""The README's tour is valid against the contract: a reader can paste every operation."""

from __future__ import annotations

import re
from pathlib import Path

from graphql import build_schema, parse, validate

ROOT = Path(__file__).resolve().parent.parent


def test_every_tour_operation_validates_against_schema_graphql() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```graphql\n(.*?)```", readme, re.S)
    assert blocks, "the README has no GraphQL tour"
    for block in blocks:
        document = parse(block)
        assert len(document.definitions) >= 5
        assert [error.message for error in validate(schema, document)] == []
