"""Sessions of node-opcua on a conveyor simulator with ``security: Basic256Sha256``, on the
certificates ``linectl opcua certs`` writes: a valid user over SignAndEncrypt, anonymous, a wrong
password, and valid credentials over a channel without security.

node-opcua sends only what the server's endpoint descriptions allow; the refusals are checked
with ``probeUnadvertised``, so the token or channel reaches the server and the server is the one
that says no."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr

from controller.clock import ScaledClock
from controller.config.loader import load_reference
from devices.opcua.security import CLIENT_APPLICATION_URI, CertificateSet
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import Connection, Json, NodeOpcua, ok, path

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

USERNAME = "line-controller"
PASSWORD = "0123-conveyor"
BASIC256SHA256 = "http://opcfoundation.org/UA/SecurityPolicy#Basic256Sha256"
READ_STATE: list[Json] = [{"op": "read", "node": path("Line", "C1", "State")}]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def secured_endpoint(certs: CertificateSet) -> AsyncIterator[str]:
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
    """The client's certificate always; SignAndEncrypt/Basic256Sha256 or no security."""
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
    assert ok(state)["attributes"]["Value"]["value"] == "Execute"


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


async def test_required_valid_user_over_a_channel_without_security_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    """REQUIRED: the server offers only SignAndEncrypt; a client that opens a None channel
    anyway gets no session, not even with the right user and password."""
    conn = connection(secured_endpoint, certs, pki_dir, secure=False)
    result = await nodeopcua.run(conn, READ_STATE)
    probed = result.get("probed", [])
    assert "endpoint None http://opcfoundation.org/UA/SecurityPolicy#None" in probed, result
    refused = not result["connect"]["ok"] or not result["session"]["ok"]
    assert refused, f"a session without security was opened and read {result['steps']}"
    refusal = result["session"] if result["connect"]["ok"] else result["connect"]
    assert str(refusal["statusCode"]).startswith("Bad"), refusal


async def test_anonymous_over_a_channel_without_security_is_refused(
    nodeopcua: NodeOpcua, secured_endpoint: str, certs: CertificateSet, pki_dir: Path
) -> None:
    conn = connection(secured_endpoint, certs, pki_dir, secure=False, username=None, password=None)
    result = await nodeopcua.run(conn, READ_STATE)
    refused = not result["connect"]["ok"] or not result["session"]["ok"]
    assert refused, f"an anonymous session without security was opened: {result['steps']}"
    refusal = result["session"] if result["connect"]["ok"] else result["connect"]
    assert str(refusal["statusCode"]).startswith("Bad"), refusal
