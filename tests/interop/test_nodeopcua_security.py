"""Sessions of node-opcua on a conveyor simulator with ``security: Basic256Sha256``, on the
certificates ``linectl opcua certs`` writes, the client's in the simulator's trust folder: a
valid user over SignAndEncrypt, anonymous, a wrong password, valid credentials over a channel
without security, and a client certificate the simulator does not trust.

node-opcua sends only what the server's endpoint descriptions allow; the refusals are checked
with ``probeUnadvertised``, so the token or channel reaches the server and the server is the one
that says no."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr

from controller.linefile.loader import load_reference
from devices.opcua.security import CLIENT_APPLICATION_URI, CertificateSet, generate_certificates
from kernel.clock import ScaledClock
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import Connection, Json, NodeOpcua, current_state, ok, read

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

USERNAME = "line-controller"
PASSWORD = "0123-conveyor"
BASIC256SHA256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
READ_STATE: list[Json] = [read(current_state("ExecuteState"))]


@pytest.fixture(scope="module")
def trusted_clients(certs: CertificateSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulator's trust folder: the client certificate node-opcua presents, alone."""
    folder = tmp_path_factory.mktemp("trusted-clients")
    (folder / "client-cert.pem").write_bytes(certs.client_certificate.read_bytes())
    return folder


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """Another client certificate from the same generator (same application URI), not in the
    trust folder."""
    return generate_certificates(tmp_path_factory.mktemp("stranger"), host="127.0.0.1")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured_endpoint(certs: CertificateSet, trusted_clients: Path) -> AsyncIterator[str]:
    line = load_reference(env={})
    opcua = line.conveyor.opcua.model_copy(
        update={"security": "Basic256Sha256", "username": USERNAME, "password": SecretStr(PASSWORD)}
    )
    line = line.model_copy(update={"conveyor": line.conveyor.model_copy(update={"opcua": opcua})})
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(
        line,
        ScaledClock(10),
        endpoint,
        certificate=certs.server_certificate,
        private_key=certs.server_key,
        trusted_clients=trusted_clients,
    ):
        yield endpoint


def connection(
    endpoint: str,
    certs: CertificateSet,
    pki_dir: Path,
    *,
    secure: bool = True,
    username: str | None = USERNAME,
    password: str | None = PASSWORD,
    probe: bool = True,
) -> Connection:
    """The client certificate of ``certs`` always; SignAndEncrypt/Basic256Sha256 or no
    security."""
    return Connection(
        endpoint,
        pki_dir,
        security_mode="SignAndEncrypt" if secure else "None",
        security_policy="Basic256Sha256" if secure else "None",
        username=username,
        password=password,
        certificate=certs.client_certificate,
        private_key=certs.client_key,
        application_uri=CLIENT_APPLICATION_URI,
        endpoint_must_exist=secure,
        probe_unadvertised=probe,
    )


async def test_valid_user_over_sign_and_encrypt_reads_the_unit(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    conn = connection(secured_endpoint, certs, pki_dir, probe=False)
    result = await nodeopcua.run(conn, READ_STATE)
    assert result["connect"] == {
        "ok": True,
        "securityMode": "SignAndEncrypt",
        "securityPolicy": BASIC256SHA256,
    }
    assert result["session"] == {"ok": True}
    (state,) = result["steps"]
    assert ok(state)["attributes"]["Value"]["value"]["text"] == "Execute"


async def test_untrusted_client_certificate_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, stranger: CertificateSet, pki_dir: Path
) -> None:
    """A valid user over SignAndEncrypt, but from a certificate not in the trust folder."""
    conn = connection(secured_endpoint, stranger, pki_dir, probe=False)
    result = await nodeopcua.run(conn, READ_STATE)
    assert result["connect"]["ok"], result  # the channel opens; the session is refused
    assert result["session"]["ok"] is False, f"an untrusted client read {result['steps']}"
    refusal = result["session"]
    assert refusal["statusCode"] == "BadCertificateUntrusted", result
    assert result["steps"] == []


async def test_anonymous_session_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    conn = connection(secured_endpoint, certs, pki_dir, username=None, password=None)
    result = await nodeopcua.run(conn, READ_STATE)
    assert result["connect"]["ok"], result
    assert result["probed"] == ["token Anonymous"]  # the server lists no anonymous token
    assert result["session"]["ok"] is False
    assert result["session"]["statusCode"] == "BadIdentityTokenRejected"
    assert result["steps"] == []


async def test_wrong_password_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    conn = connection(secured_endpoint, certs, pki_dir, password="not-it")
    result = await nodeopcua.run(conn, READ_STATE)
    assert result["connect"]["ok"], result
    assert result["session"]["ok"] is False
    assert result["session"]["statusCode"] == "BadUserAccessDenied"
    assert result["steps"] == []


async def test_valid_user_over_a_channel_without_security_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    """The server offers only SignAndEncrypt; a client that opens a None channel anyway gets
    no session, not even with the right user and password."""
    conn = connection(secured_endpoint, certs, pki_dir, secure=False)
    result = await nodeopcua.run(conn, READ_STATE)
    probed = result.get("probed", [])
    assert "endpoint None http://opcfoundation.org/UA/SecurityPolicy#None" in probed, result
    assert result["connect"]["ok"], result  # the None channel still serves discovery
    assert result["session"]["ok"] is False, f"a session without security read {result['steps']}"
    assert result["session"]["statusCode"] == "BadSecurityModeRejected", result
    assert result["steps"] == []


async def test_anonymous_over_a_channel_without_security_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    conn = connection(secured_endpoint, certs, pki_dir, secure=False, username=None, password=None)
    result = await nodeopcua.run(conn, READ_STATE)
    assert result["connect"]["ok"], result
    assert result["session"]["ok"] is False, f"an anonymous session read {result['steps']}"
    assert result["session"]["statusCode"] == "BadSecurityModeRejected", result
    assert result["steps"] == []
