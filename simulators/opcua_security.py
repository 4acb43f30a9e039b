"""The security of a simulated OPC UA server: who it says it is, which channels and users it
admits, and which client certificates it trusts (as a PLC's OPC UA stack does).

:func:`secured_server` returns an initialised asyncua ``Server`` with its endpoint, names and
security set; the caller builds the address space and starts it. Two modes, from the line's
``security``:

- ``None`` (the demo): one endpoint, security None, anonymous sessions only. No UserName
  token is offered, so no password is ever asked for in the clear.
- ``Basic256Sha256``: one endpoint, Basic256Sha256 SignAndEncrypt, UserName tokens only. The
  security None channel stays open for GetEndpoints and FindServers (OPC UA allows discovery
  there), but CreateSession and ActivateSession over any channel other than Basic256Sha256
  SignAndEncrypt are refused with ``BadSecurityModeRejected``, and so is a session from a client
  certificate not on the :class:`TrustList` (``BadCertificateUntrusted``, logged once per
  certificate). A wrong user or password is ``BadUserAccessDenied``, an anonymous session
  ``BadIdentityTokenRejected``.

asyncua checks a client certificate only as far as the CreateSession request names it; the
channel's own certificate, which is what counts, is looked up here (one private attribute of
asyncua's processor, failing closed: no channel found, no session).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from asyncua import Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from kernel.config.model import OpcUaEndpoint

log = logging.getLogger(__name__)

MANUFACTURER = "linectl"
CERTIFICATE_SUFFIXES = (".pem", ".der", ".crt", ".cer")
_ANONYMOUS = User(role=UserRole.Anonymous)  # asyncua's own default for a new session


@dataclass(frozen=True)
class ServerIdentity:
    """What a server calls itself: ApplicationName, ApplicationUri, ProductUri, BuildInfo."""

    name: str
    application_uri: str
    product_uri: str
    product_name: str


class TrustList:
    """The client certificates a server admits, each by its SHA-1 thumbprint (as OPC UA names
    certificates): exact certificates, as in the "trusted" folder of a PLC's stack."""

    def __init__(self, certificates: Iterable[x509.Certificate], source: str) -> None:
        self._trusted = {_thumbprint(c): c for c in certificates}
        self.source = source
        self._refused: set[str] = set()
        if not self._trusted:
            raise ValueError(f"{source}: no client certificate to trust")

    @classmethod
    def from_folder(cls, folder: Path) -> TrustList:
        """Every certificate file (.pem, .der, .crt, .cer) in ``folder``; raises ValueError
        when the folder is missing, holds none, or holds a file that is not a certificate."""
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder of trusted client certificates")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in CERTIFICATE_SUFFIXES)
        return cls((_load(p) for p in files), str(folder))

    @classmethod
    def from_file(cls, path: Path) -> TrustList:
        return cls([_load(path)], str(path))

    def __len__(self) -> int:
        return len(self._trusted)

    def admit(self, der: bytes) -> None:
        """Raise ``ServiceError(BadCertificateUntrusted)`` unless ``der`` is trusted and within
        its validity; the first refusal of each certificate is logged."""
        cert = x509.load_der_x509_certificate(der)
        thumbprint = _thumbprint(cert)
        now = datetime.now(UTC)
        if thumbprint not in self._trusted:
            self._refuse(cert, thumbprint, "not in the trust list")
            raise ServiceError(ua.StatusCodes.BadCertificateUntrusted)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            self._refuse(cert, thumbprint, "outside its validity period")
            raise ServiceError(ua.StatusCodes.BadCertificateTimeInvalid)

    def _refuse(self, cert: x509.Certificate, thumbprint: str, why: str) -> None:
        if thumbprint in self._refused:
            return
        self._refused.add(thumbprint)
        log.warning(
            "OPC UA client certificate refused",
            extra={
                "subject": cert.subject.rfc4514_string(),
                "thumbprint": thumbprint,
                "why": why,
                "trust_list": self.source,
            },
        )


def _load(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: not a certificate ({exc})") from None


def _thumbprint(cert: x509.Certificate) -> str:
    der = cert.public_bytes(Encoding.DER)
    return hashlib.sha1(der, usedforsecurity=False).hexdigest().upper()


@dataclass(frozen=True)
class ServerKeys:
    """The server's own certificate and key, and the client certificates it trusts."""

    certificate: Path
    private_key: Path
    trusted: TrustList


def server_keys(
    opcua: OpcUaEndpoint,
    certificate: Path | None,
    private_key: Path | None,
    trusted_clients: Path | None,
) -> ServerKeys | None:
    """The server's keys and trust list for a Basic256Sha256 endpoint, None for security None.

    The trusted client certificates are those in the folder ``trusted_clients``, else the
    endpoint's own ``certificate`` (the one the controller presents); raises ValueError when
    something needed is missing.
    """
    if opcua.security == "None":
        return None
    if certificate is None or private_key is None:
        raise ValueError(
            f"security {opcua.security} needs the server's certificate and private key"
        )
    if trusted_clients is not None:
        trusted = TrustList.from_folder(trusted_clients)
    elif opcua.certificate is not None:
        trusted = TrustList.from_file(Path(opcua.certificate))
    else:
        raise ValueError("no client certificate to trust: give a trust folder")
    return ServerKeys(certificate, private_key, trusted)


def refuse_unsafe(opcua: OpcUaEndpoint, keys: ServerKeys | None) -> None:
    """Raise ValueError for security settings a server must not serve: Basic256Sha256 without
    ``keys`` or without ``username`` and ``password``; a user name or password with security
    None (it would cross the network in the clear)."""
    if opcua.security == "Basic256Sha256":
        if keys is None:
            raise ValueError("security Basic256Sha256 needs the server's certificate and key")
        if not opcua.username or opcua.password is None:
            raise ValueError("security Basic256Sha256 needs conveyor.opcua.username and password")
    elif opcua.username is not None or opcua.password is not None:
        raise ValueError("a user name and password need security Basic256Sha256")


async def secured_server(
    opcua: OpcUaEndpoint, endpoint: str, identity: ServerIdentity, keys: ServerKeys | None
) -> Server:
    """An initialised ``Server`` on ``endpoint`` with ``identity`` and the line's security.

    Raises ValueError as :func:`refuse_unsafe` does.
    """
    refuse_unsafe(opcua, keys)
    secured = opcua.security == "Basic256Sha256"
    users = _Credentials(opcua)
    if secured:
        assert keys is not None
        server = Server(iserver=_SecuredInternalServer(users, keys.trusted))
    else:
        server = Server(user_manager=users)
    await server.init()
    server.set_endpoint(endpoint)
    await _identify(server, identity)
    if not secured:
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        return server
    assert keys is not None
    iserver = server.iserver
    assert isinstance(iserver, _SecuredInternalServer)
    iserver.outer = server
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
    await server.load_certificate(str(keys.certificate))
    await server.load_private_key(str(keys.private_key))
    server.set_identity_tokens([ua.UserNameIdentityToken])
    return server


async def _identify(server: Server, identity: ServerIdentity) -> None:
    server.set_server_name(identity.name)
    # the server certificate names this URI; clients compare the two
    await server.set_application_uri(identity.application_uri)
    server.product_uri = identity.product_uri
    server.manufacturer_name = MANUFACTURER
    try:
        software = version("linectl")
    except PackageNotFoundError:  # run from a source tree that was never installed
        software = "0"
    await server.set_build_info(
        identity.product_uri,
        MANUFACTURER,
        identity.product_name,
        software,
        "0",
        datetime.now(UTC),
    )


class _SecuredInternalServer(InternalServer):  # type: ignore[misc]  # asyncua untyped here
    """asyncua's internal server whose sessions are :class:`_SecuredSession`."""

    def __init__(self, users: _Credentials, trusted: TrustList) -> None:
        super().__init__(user_manager=users)
        self.trusted = trusted
        self.outer: Server | None = None

    def create_session(
        self, name: str, user: User = _ANONYMOUS, external: bool = False
    ) -> InternalSession:
        return _SecuredSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )

    def channel_of(self, session: InternalSession) -> Any:
        """The security policy of the channel ``session`` was created on, None if not found."""
        bserver = self.outer.bserver if self.outer is not None else None
        for protocol in bserver.clients if bserver is not None else ():
            processor = protocol.processor
            if processor is not None and processor.session is session:
                connection = getattr(processor, "_connection", None)
                return getattr(connection, "security_policy", None)
        return None


class _SecuredSession(InternalSession):  # type: ignore[misc]
    """A session admitted only over Basic256Sha256 SignAndEncrypt from a trusted certificate."""

    async def create_session(
        self, params: ua.CreateSessionParameters, sockname: tuple[str, int] | None = None
    ) -> ua.CreateSessionResult:
        iserver = self.iserver
        assert isinstance(iserver, _SecuredInternalServer)
        policy = iserver.channel_of(self)
        secured = (
            policy is not None
            and policy.URI == security_policies.SecurityPolicyBasic256Sha256.URI
            and policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
        )
        # a refused session stays the channel's; later requests on it must find a nonce
        self.nonce = b""
        if not secured:
            log.info(
                "OPC UA session refused: channel not Basic256Sha256 SignAndEncrypt",
                extra={"peer": str(self.name)},
            )
            raise ServiceError(ua.StatusCodes.BadSecurityModeRejected)
        iserver.trusted.admit(policy.peer_certificate)
        return await super().create_session(params, sockname)

    def activate_session(
        self, params: ua.ActivateSessionParameters, peer_certificate: bytes | None
    ) -> ua.ActivateSessionResult:
        # the channel activating may be another than the one that created the session
        if not peer_certificate:
            raise ServiceError(ua.StatusCodes.BadSecurityModeRejected)
        iserver = self.iserver
        assert isinstance(iserver, _SecuredInternalServer)
        iserver.trusted.admit(peer_certificate)
        return super().activate_session(params, peer_certificate)


class _Credentials:
    """Admits the configured user and password; with none configured, anonymous sessions (the
    only kind a security None server offers). An asyncua ``UserManager``."""

    def __init__(self, opcua: OpcUaEndpoint) -> None:
        self._username = opcua.username
        self._password = opcua.password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if self._username is None or self._password is None:
            return User(role=UserRole.User) if username is None else None
        expected = self._password.get_secret_value().encode()
        given = (password or "").encode()
        if username == self._username and hmac.compare_digest(given, expected):
            return User(role=UserRole.User, name=username)
        log.warning("OPC UA login refused", extra={"username": username})
        return None
