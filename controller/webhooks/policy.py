"""Which receivers webhook deliveries may go to: a guard against server-side request forgery.

An order's ``callback_url`` comes from the WMS, and whoever can create orders could otherwise
make the controller POST to anything it can reach: a cloud metadata service at 169.254.169.254,
an admin port on loopback, a PLC on the cell network. Every receiver (``webhooks.targets`` and
``callback_url``) passes :class:`ReceiverPolicy`:

* its scheme is in ``webhooks.allowed_schemes`` (default ``https`` only);
* its host matches ``webhooks.allowed_hosts`` when that list is not empty: a name
  (``wms.example.com``), a wildcard for subdomains (``*.example.com``), an address or a network
  (``10.20.0.0/16``, ``fd00::/8``);
* every address it stands for is public, or loopback with ``allow_loopback``, or private
  (RFC 1918, unique local, shared and documentation ranges) with ``allow_private``; link-local
  addresses (169.254.0.0/16, fe80::/10), multicast, unspecified and reserved ones never are.

The scheme, host and literal addresses are checked when an order is taken and when the line
file is validated; names are resolved and checked again before each delivery, and again when
the connection is made (:mod:`controller.webhooks.transport`), so a name that changes its
address between the two (DNS rebinding) is caught as well.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kernel.config.webhooks import Address, AddressKind, HostPattern, address_kind, parse_address

if TYPE_CHECKING:
    from kernel.config.model import WebhooksConfig


class ReceiverPolicy:
    def __init__(
        self,
        schemes: Iterable[str] = ("https",),
        hosts: Iterable[str] = (),
        *,
        allow_loopback: bool = False,
        allow_private: bool = False,
    ) -> None:
        self.schemes = tuple(schemes)
        self.hosts = tuple(HostPattern.parse(h) for h in hosts)
        self.allowed = {AddressKind.PUBLIC}
        if allow_loopback:
            self.allowed.add(AddressKind.LOOPBACK)
        if allow_private:
            self.allowed.add(AddressKind.PRIVATE)

    @classmethod
    def of(cls, config: WebhooksConfig) -> ReceiverPolicy:
        return cls(
            config.allowed_schemes,
            config.allowed_hosts,
            allow_loopback=config.allow_loopback,
            allow_private=config.allow_private,
        )

    def _why(self, address: Address) -> str | None:
        kind = address_kind(address)
        if kind in self.allowed:
            return None
        if kind is AddressKind.LOOPBACK:
            return "a loopback address (webhooks.allow_loopback is off)"
        if kind is AddressKind.PRIVATE:
            return "a private address (webhooks.allow_private is off)"
        return f"a {kind.value} address, never a webhook receiver"

    def refuseparse_address(self, address: Address) -> str | None:
        """Why deliveries may not go to ``address`` (None: they may)."""
        why = self._why(address)
        return None if why is None else f"{address} is {why}"

    def refuse_url(self, url: str) -> str | None:
        """Why ``url`` may not receive deliveries, judged without resolving its name."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").rstrip(".")
        except ValueError:
            return "not a valid URL"
        scheme = parts.scheme.lower()
        if scheme not in self.schemes:
            allowed = ", ".join(self.schemes)
            shown = scheme or "(none)"
            return f"scheme {shown!r} is not allowed (webhooks.allowed_schemes: {allowed})"
        if not host:
            return "the URL names no host"
        if self.hosts and not any(p.matches(host) for p in self.hosts):
            return f"host {host!r} is not in webhooks.allowed_hosts"
        address = parse_address(host)
        if address is not None:
            return self.refuseparse_address(address)
        if host == "localhost" or host.endswith(".localhost"):
            why = self._why(ipaddress.ip_address("127.0.0.1"))
            return None if why is None else f"{host} is {why}"
        return None

    def refuse_addresses(self, host: str, addresses: Sequence[Address]) -> str | None:
        """Why ``host`` may not receive deliveries at these, its resolved addresses."""
        for address in addresses:
            why = self._why(address)
            if why is not None:
                if parse_address(host) == address:
                    return f"{address} is {why}"
                return f"{host} resolves to {address}, {why}"
        return None

    async def refuse_delivery(self, url: str) -> str | None:
        """Why a delivery to ``url`` may not be sent now: the URL, then every address its host
        resolves to. A name that does not resolve is not refused here (the attempt fails and
        is retried like any unreachable receiver)."""
        reason = self.refuse_url(url)
        if reason is not None:
            return reason
        host = (urlsplit(url).hostname or "").rstrip(".")
        try:
            addresses = await resolve(host, urlsplit(url).port or 443)
        except OSError:
            return None
        return self.refuse_addresses(host, addresses)


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` stands for, in the resolver's order (``OSError`` if none)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[Address] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found
