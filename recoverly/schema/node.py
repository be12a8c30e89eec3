"""The Relay ``Node`` interface.

Why not ``strawberry.relay`` (checked against strawberry-graphql 0.341): its ``GlobalID``
is standard base64 with padding (``QmFja3VwOjE=``) where ours is URL-safe without it
(``QmFja3VwOjE``, ``resolvers/global_ids.py``), so every ID a frontend stored would change;
its ``Node``, ``PageInfo``, ``Edge`` and ``Connection`` carry descriptions of their own and
``relay.connection`` fields add ``before``/``last`` and drop our ``first: Int = 20``, so
``schema.graphql`` would change; ``relay.node`` raises for a malformed or foreign ID where
``node`` returns null, and it decodes non-canonical base64 that ours refuses. Our
connections are keyset pages with ``nodes`` and a ``totalCount`` counted only when
selected, so ``resolve_connection`` and the cursors would be ours anyway: matching the
contract would take more overrides than the code they replace.
"""

from __future__ import annotations

import strawberry


@strawberry.interface(description="An object with a global ID.")
class Node:
    id: strawberry.ID
