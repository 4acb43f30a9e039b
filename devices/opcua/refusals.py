"""Why a connection to an OPC UA server failed, in the words an operator acts on.

A refused login, an untrusted certificate, a server certificate other than the pinned one and a
server without the required security all end a connection attempt with some asyncua or socket
exception; :func:`connect_failure` names the cause (:class:`Cause`) so that ``linectl devices
check`` says which of them it was instead of "unreachable". The status code, where there is one,
stays in the detail.
"""

from __future__ import annotations

import asyncio
import errno
from dataclasses import dataclass
from enum import Enum

from asyncua import ua

from devices.opcua.security import NoSecureEndpoint, PinMismatch


class Cause(Enum):
    LOGIN_REFUSED = "login refused (user/password)"
    CERTIFICATE_UNTRUSTED = "certificate not trusted by the server"
    PIN_MISMATCH = "server certificate does not match the pinned one"
    NO_SECURE_ENDPOINT = "server offers no Basic256Sha256 SignAndEncrypt endpoint"
    SECURITY_REJECTED = "security mode or policy refused by the server"
    UNREACHABLE = "unreachable"
    OTHER = "connection failed"

    @property
    def refused(self) -> bool:
        """The server answered and said no (as opposed to not answering)."""
        return self not in (Cause.UNREACHABLE, Cause.OTHER)


@dataclass(frozen=True)
class ConnectFailure:
    cause: Cause
    detail: str  # the whole sentence, starting with the cause's text

    def __str__(self) -> str:
        return self.detail


_LOGIN = frozenset(
    {
        ua.StatusCodes.BadUserAccessDenied,
        ua.StatusCodes.BadIdentityTokenInvalid,
        ua.StatusCodes.BadIdentityTokenRejected,
    }
)
_CERTIFICATE = frozenset(
    {
        ua.StatusCodes.BadCertificateUntrusted,
        ua.StatusCodes.BadCertificateInvalid,
        ua.StatusCodes.BadCertificateTimeInvalid,
        ua.StatusCodes.BadCertificateRevoked,
        ua.StatusCodes.BadCertificateUriInvalid,
        ua.StatusCodes.BadCertificateUseNotAllowed,
        ua.StatusCodes.BadCertificateIssuerRevocationUnknown,
        ua.StatusCodes.BadCertificateRevocationUnknown,
        # what many PLC stacks answer an unknown client certificate with, at OpenSecureChannel
        ua.StatusCodes.BadSecurityChecksFailed,
    }
)
_SECURITY = frozenset(
    {ua.StatusCodes.BadSecurityModeRejected, ua.StatusCodes.BadSecurityPolicyRejected}
)
_NO_ROUTE = {
    errno.ECONNREFUSED: "connection refused",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def connect_failure(exc: BaseException) -> ConnectFailure:
    """The cause of a failed connection attempt (``secure_client`` plus ``connect``)."""
    if isinstance(exc, NoSecureEndpoint):
        return ConnectFailure(Cause.NO_SECURE_ENDPOINT, str(exc))
    if isinstance(exc, PinMismatch):
        return ConnectFailure(Cause.PIN_MISMATCH, str(exc))
    if isinstance(exc, ua.UaStatusCodeError):
        name = ua.StatusCode(exc.code).name
        for codes, cause in (
            (_LOGIN, Cause.LOGIN_REFUSED),
            (_CERTIFICATE, Cause.CERTIFICATE_UNTRUSTED),
        ):
            if exc.code in codes:
                return ConnectFailure(cause, f"{cause.value} ({name})")
        if exc.code in _SECURITY:
            return ConnectFailure(
                Cause.SECURITY_REJECTED, f"{Cause.SECURITY_REJECTED.value} ({name})"
            )
        return ConnectFailure(Cause.OTHER, f"{Cause.OTHER.value}: {name}")
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return ConnectFailure(Cause.UNREACHABLE, "unreachable (timeout)")
    if isinstance(exc, OSError) and exc.errno in _NO_ROUTE:
        return ConnectFailure(Cause.UNREACHABLE, f"unreachable ({_NO_ROUTE[exc.errno]})")
    if isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
        return ConnectFailure(Cause.UNREACHABLE, f"unreachable (connection closed: {exc})")
    return ConnectFailure(Cause.OTHER, f"{Cause.OTHER.value}: {exc or type(exc).__name__}")
