"""What the request guards cost: the query cost walk against the validation every request
already pays, the strict JSON decoder against ``json.loads``, and an attack refused by the
cost walk against the validation it would otherwise have run. In process, no server.

    .venv/bin/python bench/request_guards.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphql import parse, validate  # noqa: E402

from bench.common import print_table  # noqa: E402
from recoverly.request_limits import decode_json  # noqa: E402
from recoverly.schema.cost import operation_cost  # noqa: E402
from recoverly.schema.schema import build_schema  # noqa: E402
from recoverly.settings import Settings  # noqa: E402

CONSOLE = """query Backups($org: ID!) {
  backups(organizationId: $org, first: 50) {
    totalCount pageInfo { hasNextPage endCursor }
    nodes { id status product createdAt location availableForRestore unavailableReason
            source { name url } entityCounts policy { name schedule } }
  }
  viewer { email organizations { id name billing { product billableUsers } } }
}"""
ALIASES = (
    "{ "
    + " ".join(f'a{i}: backups(organizationId: "x") {{ totalCount }}' for i in range(280))
    + " }"
)
DUPLICATES = "{ " + "__typename " * 3900 + "}"
BOMB = " ".join(
    ["fragment F0 on Query { __typename }"]
    + [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, 18)]
    + ["{ ...F17 }"]
)
BODY = json.dumps({"query": CONSOLE, "variables": {"org": "T3JnYW5pemF0aW9uOjE"}})


def per_call(function: Callable[[], Any], repeat: int) -> float:
    """Best of three runs of ``repeat`` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            function()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    schema = build_schema(Settings())._schema
    rows = []
    for label, query, repeat in (
        ("console page", CONSOLE, args.repeat),
        ("280 aliases", ALIASES, max(args.repeat // 10, 3)),
        ("3900 duplicates", DUPLICATES, max(args.repeat // 10, 3)),
        ("fragment bomb (2^17)", BOMB, 1),
    ):
        document = parse(query)
        cost = operation_cost(schema, document, None, {"org": "x"})
        walk = per_call(lambda d=document: operation_cost(schema, d, None, {}), repeat)
        check = per_call(lambda d=document: validate(schema, d), repeat)
        rows.append([label, cost, f"{walk:,.0f}", f"{check:,.0f}", f"{walk / check:.3f}"])
    print_table(
        "cost walk vs validation (us per operation)",
        ["operation", "cost", "cost walk", "validation (baseline)", "ratio"],
        rows,
    )
    strict = per_call(lambda: decode_json(BODY, max_depth=32), args.repeat * 10)
    plain = per_call(lambda: json.loads(BODY), args.repeat * 10)
    print_table(
        "request body decoding (us per body)",
        ["body", "strict decode", "json.loads (baseline)", "ratio"],
        [[f"{len(BODY)} bytes", f"{strict:.1f}", f"{plain:.1f}", f"{strict / plain:.2f}"]],
    )


if __name__ == "__main__":
    main()
