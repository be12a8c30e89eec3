"""The one way tests open an HTTP client to a server on loopback.

httpx builds a TLS context (loading the CA bundle) for every client it is not given one,
about 25 ms of CPU each; the tests open thousands of short-lived clients, all over plain
HTTP, so they share one context."""

from __future__ import annotations

from typing import Any

import httpx

_TLS = httpx.create_ssl_context()


def http_client(base_url: str = "", **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on ``base_url``; ``options`` as for httpx."""
    return httpx.AsyncClient(base_url=base_url, verify=_TLS, **options)
