"""The webhook fields of the line file: receiver host patterns and signing secrets.

Their formats are part of the line model, so a line file is checked with nothing but the kernel;
the delivery side (:mod:`controller.webhooks`) uses the same parsers.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressKind(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"
    LOOPBACK = "loopback"
    LINK_LOCAL = "link-local"
    UNUSABLE = "multicast, unspecified or reserved"


def address_kind(address: Address) -> AddressKind:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return AddressKind.LOOPBACK
    if address.is_link_local:
        return AddressKind.LINK_LOCAL
    if address.is_multicast or address.is_unspecified or address.is_reserved:
        return AddressKind.UNUSABLE
    if address.is_global:
        return AddressKind.PUBLIC
    return AddressKind.PRIVATE


def parse_address(text: str) -> Address | None:
    """``text`` as an IP address, or None when it is a name."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class HostPattern:
    """One entry of ``webhooks.allowed_hosts``."""

    text: str
    network: Network | None = None
    suffix: str | None = None  # "*.example.com" -> ".example.com"

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        """A pattern from the line file; ``ValueError`` says what is wrong with it."""
        raw = text.strip().lower().rstrip(".")
        if not raw:
            raise ValueError("an empty host pattern")
        if "/" in raw or parse_address(raw) is not None:
            try:
                return cls(text, network=ipaddress.ip_network(raw, strict=False))
            except ValueError:
                raise ValueError(f"{text!r} is not an address or a network") from None
        name = raw[2:] if raw.startswith("*.") else raw
        labels = name.split(".")
        if "*" in name or not all(
            label and len(label) <= 63 and label.replace("-", "").replace("_", "").isalnum()
            for label in labels
        ):
            raise ValueError(
                f"{text!r} is not a host name, '*.' and a domain, an address or a network"
            )
        return cls(text, suffix="." + name) if raw.startswith("*.") else cls(raw)

    def matches(self, host: str) -> bool:
        address = parse_address(host)
        if self.network is not None:
            return address is not None and address in self.network
        if address is not None:
            return False
        if self.suffix is not None:
            return host.endswith(self.suffix)
        return host == self.text


def secret_key(secret: str) -> bytes:
    """The key bytes of ``secret`` (``whsec_<base64>`` or a raw string)."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be followed by base64") from None
        if not key:
            raise ValueError("a whsec_ secret must not be empty")
        return key
    if not secret:
        raise ValueError("a webhook secret must not be empty")
    return secret.encode("utf-8")
