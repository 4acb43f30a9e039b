"""The HTTP transport webhook deliveries go out on: every connection is made to an address
the receiver policy allows, checked when the connection is opened.

:meth:`ReceiverPolicy.refuse_delivery` judges a URL before an attempt, but the HTTP client
resolves the name again when it connects; a name whose address changes in between (DNS
rebinding) would slip through. Here the name is resolved once, each address is checked, and
the connection goes to a checked address. TLS still verifies the certificate against the name
(httpcore sends the URL's host as the server name whatever address it connects to).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import httpx

from controller.webhooks.policy import ReceiverPolicy, resolve


class ReceiverRefused(httpcore.ConnectError):
    """A connection the receiver policy does not allow (never retried by httpcore)."""


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that connects only to addresses ``policy`` allows."""

    def __init__(self, policy: ReceiverPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self.policy = policy
        self.inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} took too long") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        reason = self.policy.refuse_addresses(host, addresses)
        if reason is not None:
            raise ReceiverRefused(f"refused: {reason}")
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None  # resolve() returns at least one address
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise ReceiverRefused("refused: webhooks are never sent over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (TLS verified, keep-alive per ``limits``) on a
    :class:`GuardedBackend`."""

    def __init__(self, policy: ReceiverPolicy, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # httpx takes no network backend; its pool is rebuilt with the same settings and one
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, httpcore.AnyIOBackend()),
        )
