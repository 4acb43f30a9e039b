"""OPC UA security for the conveyor link: certificates and the client side of a secured session.

One policy is supported besides ``None``: Basic256Sha256 with SignAndEncrypt, plus a user name
and password. :func:`generate_certificates` writes a self-signed certificate and key for each
side (``linectl opcua certs``); :func:`secure_client` applies ``conveyor.opcua`` to an asyncua
client before it connects. Each certificate carries the application URI its side announces,
as OPC UA peers check it.

A client configured for Basic256Sha256 never settles for less: it asks the server for its
endpoints first (GetEndpoints, answered over the unsecured discovery channel) and refuses with
:class:`SecurityMismatch` when none is Basic256Sha256 SignAndEncrypt or when the server's
certificate is not the pinned one, before a session is created or a password sent.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies, uacrypto
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from kernel.config.model import OpcUaEndpoint

SERVER_APPLICATION_URI = "urn:linectl:conveyor-simulator"
CLIENT_APPLICATION_URI = "urn:linectl:controller"
CERTIFICATE_DAYS = 365
REQUIRED_ENDPOINT = "Basic256Sha256 SignAndEncrypt"


class SecurityMismatch(ua.UaError):  # type: ignore[misc]  # asyncua untyped here
    """The server cannot give the configured security; ``str()`` says why."""


class NoSecureEndpoint(SecurityMismatch):
    """The server offers no Basic256Sha256 SignAndEncrypt endpoint."""


class PinMismatch(SecurityMismatch):
    """The server presents a certificate other than ``server_certificate``."""


@dataclass(frozen=True)
class CertificateSet:
    """The files :func:`generate_certificates` wrote (PEM)."""

    server_certificate: Path
    server_key: Path
    client_certificate: Path
    client_key: Path

    def paths(self) -> tuple[Path, ...]:
        return (self.server_certificate, self.server_key, self.client_certificate, self.client_key)


def _host_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write_pair(
    out: Path,
    stem: str,
    common_name: str,
    application_uri: str,
    hosts: list[str],
    usage: x509.ObjectIdentifier,
    days: int,
) -> tuple[Path, Path]:
    key = generate_private_key()
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    names += [_host_name(h) for h in dict.fromkeys(hosts)]
    cert = generate_self_signed_app_certificate(
        key, common_name, {"organizationName": "linectl"}, names, extended=[usage], days=days
    )
    cert_path, key_path = out / f"{stem}-cert.pem", out / f"{stem}-key.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.PEM))
    # the key is written readable by its owner only, from the first byte on
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(dump_private_key_as_pem(key))
    return cert_path, key_path


def generate_certificates(
    out: Path, host: str = "127.0.0.1", days: int = CERTIFICATE_DAYS
) -> CertificateSet:
    """Write a self-signed server (conveyor) and client (controller) certificate with keys.

    ``host`` is where the server is reached (an IP address or DNS name, put in the server
    certificate's subject alternative names); the client certificate names this machine.
    Existing files are overwritten.
    """
    out.mkdir(parents=True, exist_ok=True)
    server_cert, server_key = _write_pair(
        out,
        "server",
        "linectl conveyor simulator",
        SERVER_APPLICATION_URI,
        [host, "localhost"],
        ExtendedKeyUsageOID.SERVER_AUTH,
        days,
    )
    client_cert, client_key = _write_pair(
        out,
        "client",
        "linectl controller",
        CLIENT_APPLICATION_URI,
        [socket.gethostname(), "localhost"],
        ExtendedKeyUsageOID.CLIENT_AUTH,
        days,
    )
    return CertificateSet(server_cert, server_key, client_cert, client_key)


async def secure_client(client: Client, opcua: OpcUaEndpoint) -> None:
    """Apply ``conveyor.opcua`` security and credentials to ``client``; call before connect.

    With Basic256Sha256 the server's endpoints are read first over the unsecured discovery
    channel: :class:`NoSecureEndpoint` when none is Basic256Sha256 SignAndEncrypt,
    :class:`PinMismatch` when the one offered does not carry the pinned ``server_certificate``
    (without a pin the certificate offered there is taken). Also raises ``ua.UaError``
    (unusable files) or ``OSError`` (missing files, network), which the callers translate.
    """
    if opcua.security == "Basic256Sha256":
        if opcua.certificate is None or opcua.private_key is None:  # the config check forbids it
            raise ua.UaError("Basic256Sha256 needs conveyor.opcua.certificate and private_key")
        client.application_uri = CLIENT_APPLICATION_URI
        offered = await _secure_endpoint_certificate(client)
        if opcua.server_certificate is not None:
            pinned = await uacrypto.load_certificate(opcua.server_certificate)
            if uacrypto.der_from_x509(pinned) != offered:
                raise PinMismatch(
                    f"server certificate does not match the pinned one ({opcua.server_certificate})"
                )
        try:
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256,
                opcua.certificate,
                opcua.private_key,
                server_certificate=uacrypto.CertProperties(offered, extension="der"),
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
        except ValueError as exc:  # cryptography: not a certificate or key it can read
            raise ua.UaError(f"unusable certificate or private key: {exc}") from exc
    if opcua.username is not None:
        client.set_user(opcua.username)
    if opcua.password is not None:
        client.set_password(opcua.password.get_secret_value())


async def _secure_endpoint_certificate(client: Client) -> bytes:
    """The DER certificate of the server's Basic256Sha256 SignAndEncrypt endpoint."""
    endpoints = await client.connect_and_get_server_endpoints()
    for e in endpoints:
        if (
            e.SecurityPolicyUri == security_policies.SecurityPolicyBasic256Sha256.URI
            and e.SecurityMode == ua.MessageSecurityMode.SignAndEncrypt
        ):
            der: bytes = uacrypto.der_from_x509(uacrypto.x509_from_der(e.ServerCertificate))
            return der
    offers = ", ".join(dict.fromkeys(_endpoint_name(e) for e in endpoints)) or "nothing"
    raise NoSecureEndpoint(f"server offers no {REQUIRED_ENDPOINT} endpoint; offers: {offers}")


def _endpoint_name(e: ua.EndpointDescription) -> str:
    policy = str(e.SecurityPolicyUri).rpartition("#")[2] or "?"
    if policy == "None":
        return "None"
    mode = ua.MessageSecurityMode(e.SecurityMode).name.rstrip("_")
    return f"{policy} {mode}"
