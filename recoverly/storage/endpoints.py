"""Which S3 endpoints the server may connect to: a guard against server-side request forgery.

By default only ``https`` on public (globally routable) addresses. With ``allow_private``
(``RECOVERLY_ALLOW_PRIVATE_ENDPOINTS``) also ``http`` and loopback or private addresses, for
on-premises stores. Link-local and cloud metadata addresses are never allowed. Host names are
checked again when a connection is made (``GuardedResolver``), so a name that later resolves
to a refused address (DNS rebinding) is refused too."""

from __future__ import annotations

import functools
import ipaddress
import socket
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from recoverly.errors import RecoverlyError

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_URL_LENGTH = 2048
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
LOCAL_NAMES = ("localhost", "localhost.localdomain")


class EndpointRefused(RecoverlyError, OSError):
    """An endpoint URL or address the server will not connect to; the message says why."""


def address_problem(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why the server must not connect to ``address``, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES or address.is_link_local:
        return "link-local and cloud metadata addresses are never allowed"
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return "not a unicast address"
    if address.is_global:
        return None
    if allow_private:
        return None
    return "loopback and private addresses need RECOVERLY_ALLOW_PRIVATE_ENDPOINTS=true"


def endpoint_problem(url: str, *, allow_private: bool) -> str | None:
    """Why ``url`` is not an acceptable S3 endpoint, or None when it is."""
    if len(url) > MAX_URL_LENGTH or any(ord(c) < 33 or ord(c) == 127 for c in url):
        return "must be a URL without spaces or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "must be a URL like https://s3.example.com"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL with a host name"
    if parts.scheme == "http" and not allow_private:
        return "must use https (http needs RECOVERLY_ALLOW_PRIVATE_ENDPOINTS=true)"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials: use accessKeyId and secretAccessKey"
    if parts.query or parts.fragment:
        return "must not have a query or fragment"
    if port == 0:
        return "has an invalid port"
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return address_problem(address, allow_private=allow_private)
    if host in LOCAL_NAMES or host.endswith(".localhost"):
        return address_problem(ipaddress.ip_address("127.0.0.1"), allow_private=allow_private)
    try:
        host.encode("idna")
    except UnicodeError:
        return "has an invalid host name"
    return None


def check_endpoint(url: str, *, allow_private: bool) -> str:
    """``url`` if acceptable, else ``EndpointRefused``."""
    problem = endpoint_problem(url, allow_private=allow_private)
    if problem is not None:
        raise EndpointRefused(f"endpoint URL {problem}")
    return url


@functools.cache
def _guarded_resolver() -> type[AbstractResolver]:
    """The resolver class, made on first use: aiohttp is imported only by a process that
    talks to S3 (it and botocore are a sixth of the server's start-up)."""
    from aiohttp.abc import AbstractResolver, ResolveResult
    from aiohttp.resolver import ThreadedResolver

    class GuardedResolver(AbstractResolver):
        """A resolver for aiohttp that drops refused addresses at connect time (DNS
        rebinding); when nothing is left, the connection fails with ``EndpointRefused``."""

        def __init__(self, *, allow_private: bool) -> None:
            self.allow_private = allow_private
            self.refused: str | None = None
            self._resolver = ThreadedResolver()

        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            results = await self._resolver.resolve(host, port, family)
            allowed = []
            for result in results:
                problem = address_problem(
                    ipaddress.ip_address(result["host"]), allow_private=self.allow_private
                )
                if problem is None:
                    allowed.append(result)
                else:
                    self.refused = f"{host} resolves to a refused address: {problem}"
            if not allowed:
                raise EndpointRefused(self.refused or f"{host} did not resolve")
            return allowed

        async def close(self) -> None:
            await self._resolver.close()

    return GuardedResolver


def connector_args(*, allow_private: bool) -> dict[str, Any]:
    """aiobotocore ``connector_args`` that route name resolution through the guard (a
    ``GuardedResolver``; its ``refused`` says why an address was dropped)."""
    resolver: Any = _guarded_resolver()
    return {"resolver": resolver(allow_private=allow_private)}
