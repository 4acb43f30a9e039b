"""OPC UA security for the conveyor link: certificates and the client side of a secured session.

One policy is supported besides ``None``: Basic256Sha256 with SignAndEncrypt, plus a user name
and password. :func:`generate_certificates` writes a self-signed certificate and key for each
side (``linectl opcua certs``); :func:`secure_client` applies ``conveyor.opcua`` to an asyncua
client before it connects. Each certificate carries the application URI its side announces,
as OPC UA peers check it.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.crypto.cert_gen import (
    dump_private_key_as_pem,
    generate_private_key,
    generate_self_signed_app_certificate,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from controller.config.model import OpcUaEndpoint

SERVER_APPLICATION_URI = "urn:linectl:conveyor-simulator"
CLIENT_APPLICATION_URI = "urn:linectl:controller"
CERTIFICATE_DAYS = 365


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

    Without a pinned ``server_certificate`` asyncua asks the server for its endpoints over an
    unsecured channel and takes the certificate offered there. Raises ``ua.UaError`` (no
    matching endpoint, unusable files) or ``OSError`` (missing files, network), which the
    callers translate.
    """
    if opcua.security == "Basic256Sha256":
        if opcua.certificate is None or opcua.private_key is None:  # the config check forbids it
            raise ua.UaError("Basic256Sha256 needs conveyor.opcua.certificate and private_key")
        client.application_uri = CLIENT_APPLICATION_URI
        try:
            await client.set_security(
                security_policies.SecurityPolicyBasic256Sha256,
                opcua.certificate,
                opcua.private_key,
                server_certificate=opcua.server_certificate,
                mode=ua.MessageSecurityMode.SignAndEncrypt,
            )
        except ValueError as exc:  # cryptography: not a certificate or key it can read
            raise ua.UaError(f"unusable certificate or private key: {exc}") from exc
    if opcua.username is not None:
        client.set_user(opcua.username)
    if opcua.password is not None:
        client.set_password(opcua.password.get_secret_value())
