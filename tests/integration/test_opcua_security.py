"""Basic256Sha256/SignAndEncrypt with user and password between the sorter adapter and the
conveyor simulator, on certificates from ``linectl opcua certs``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from asyncua import Client, ua
from asyncua.crypto import security_policies
from pydantic import SecretStr

from devices.base import ConveyorAvailability, DeviceEvent, ItemDiverted, ItemScanned
from devices.opcua import OpcUaSorter
from devices.opcua.security import CLIENT_APPLICATION_URI, CertificateSet, generate_certificates
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig, OpcUaEndpoint
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator

pytestmark = pytest.mark.integration

WAIT = 10.0  # wall seconds; key exchange and a loop at time scale 100 take well under one
USERNAME = "line-controller"
PASSWORD = "0123-conveyor"


def secured(line: LineConfig, certs: CertificateSet, **changes: object) -> LineConfig:
    """``line`` with its OPC UA link on Basic256Sha256, the client pair and the pinned server."""
    opcua = line.conveyor.opcua.model_copy(
        update={
            "security": "Basic256Sha256",
            "certificate": str(certs.client_certificate),
            "private_key": str(certs.client_key),
            "server_certificate": str(certs.server_certificate),
            "username": USERNAME,
            "password": SecretStr(PASSWORD),
            **changes,
        }
    )
    conveyor = line.conveyor.model_copy(update={"opcua": opcua})
    return line.model_copy(update={"conveyor": conveyor})


@dataclass
class Secured:
    config: LineConfig
    certs: CertificateSet
    sim: ConveyorSimulator
    clock: ScaledClock

    @property
    def endpoint(self) -> str:
        return self.sim.endpoint

    async def availability(self, config: LineConfig) -> ConveyorAvailability:
        """The first availability an adapter with ``config`` reports, then it is stopped."""
        events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        sorter = OpcUaSorter(config, self.clock, Metrics(), self.endpoint)
        task = asyncio.create_task(sorter.run(events), name="conveyor[C1].run")
        try:
            return await next_of(events, ConveyorAvailability)
        finally:
            task.cancel()
            await asyncio.wait([task])


T = TypeVar("T", bound=DeviceEvent)


async def next_of(events: asyncio.Queue[DeviceEvent], kind: type[T]) -> T:
    async with asyncio.timeout(WAIT):
        while True:
            event = await events.get()
            if isinstance(event, kind):
                return event


@pytest.fixture
def certs(tmp_path: Path) -> CertificateSet:
    return generate_certificates(tmp_path / "certs", host="127.0.0.1")


@pytest.fixture
async def secured_sim(reference_line: LineConfig, certs: CertificateSet) -> AsyncIterator[Secured]:
    config = secured(reference_line, certs)
    clock = ScaledClock(100)
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(
        config,
        clock,
        endpoint,
        certificate=certs.server_certificate,
        private_key=certs.server_key,
    ) as sim:
        yield Secured(config, certs, sim, clock)


def test_certificates_name_the_applications(certs: CertificateSet) -> None:
    from cryptography import x509

    client = x509.load_pem_x509_certificate(certs.client_certificate.read_bytes())
    san = client.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [CLIENT_APPLICATION_URI]
    server = x509.load_pem_x509_certificate(certs.server_certificate.read_bytes())
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert certs.client_key.stat().st_mode & 0o077 == 0


async def test_only_sign_and_encrypt_is_offered(secured_sim: Secured) -> None:
    client = Client(secured_sim.endpoint)
    endpoints = await client.connect_and_get_server_endpoints()
    offered = {(e.SecurityPolicyUri, e.SecurityMode) for e in endpoints}
    assert offered == {
        (
            security_policies.SecurityPolicyBasic256Sha256.URI,
            ua.MessageSecurityMode.SignAndEncrypt,
        )
    }
    tokens = {t.TokenType for e in endpoints for t in e.UserIdentityTokens}
    assert tokens == {ua.UserTokenType.UserName}


async def test_adapter_scans_and_diverts_over_the_secured_session(secured_sim: Secured) -> None:
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    sorter = OpcUaSorter(secured_sim.config, secured_sim.clock, Metrics(), secured_sim.endpoint)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sorter.run(events), name="conveyor[C1].run")
        up = await next_of(events, ConveyorAvailability)
        assert up.available, up.reason
        assert sorter.snapshot().state == "Execute"

        item_id = await secured_sim.sim.induct("TOTE-S1", "Z01")
        while (scan := await next_of(events, ItemScanned)).item_id != item_id:
            pass
        assert scan.codes == ("TOTE-S1",)
        await sorter.divert(item_id, "VAS-2")
        done = await next_of(events, ItemDiverted)
        assert (done.item_id, done.chute_id, done.ok) == (item_id, "VAS-2", True)
        task.cancel()


async def test_wrong_password_is_refused(secured_sim: Secured) -> None:
    wrong = secured(secured_sim.config, secured_sim.certs, password=SecretStr("not-it"))
    down = await secured_sim.availability(wrong)
    assert not down.available
    assert "BadUserAccessDenied" in down.reason


async def test_anonymous_session_is_refused(secured_sim: Secured) -> None:
    anonymous = secured(secured_sim.config, secured_sim.certs, username=None, password=None)
    down = await secured_sim.availability(anonymous)
    assert not down.available
    assert "BadIdentityTokenRejected" in down.reason


async def test_client_without_security_is_refused(secured_sim: Secured) -> None:
    plain = secured(
        secured_sim.config,
        secured_sim.certs,
        security="None",
        certificate=None,
        private_key=None,
        server_certificate=None,
    )
    down = await secured_sim.availability(plain)
    assert not down.available
    # refused at CreateSession, before the client could send its password in the clear
    assert "BadSecurityModeRejected" in down.reason

    client = Client(secured_sim.endpoint, timeout=WAIT)
    client.set_user(USERNAME)
    client.set_password(PASSWORD)
    with pytest.raises((ua.UaError, OSError)):
        await client.connect()
    client.disconnect_socket()


def test_basic256sha256_needs_the_client_certificate_key_and_login() -> None:
    from controller.linefile.checks import _opcua_security

    issues = _opcua_security(OpcUaEndpoint(security="Basic256Sha256"))
    assert {i.path[-1] for i in issues} == {"certificate", "private_key", "username", "password"}
    clear = _opcua_security(OpcUaEndpoint(username="u", password=SecretStr("p")))
    assert [i.path[-1] for i in clear] == ["security"]
    assert _opcua_security(OpcUaEndpoint()) == []


def test_password_from_the_environment_is_taken_as_written() -> None:
    from controller.linefile.loader import REFERENCE_LINE, parse

    env = {
        "LINECTL_CONVEYOR__OPCUA__SECURITY": "Basic256Sha256",
        "LINECTL_CONVEYOR__OPCUA__CERTIFICATE": "certs/client-cert.pem",
        "LINECTL_CONVEYOR__OPCUA__PRIVATE_KEY": "certs/client-key.pem",
        "LINECTL_CONVEYOR__OPCUA__USERNAME": USERNAME,
        "LINECTL_CONVEYOR__OPCUA__PASSWORD": "0123",
    }
    opcua = parse(REFERENCE_LINE.read_text(), "reference", env).conveyor.opcua
    assert opcua.password is not None and opcua.password.get_secret_value() == "0123"
    assert "0123" not in repr(opcua)


def test_certs_command_prints_what_it_wrote(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from controller.app.cli.main import app

    result = CliRunner().invoke(app, ["opcua", "certs", "--out", str(tmp_path), "--host", "plc1"])
    assert result.exit_code == 0, result.output
    names = ("server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem")
    for name in names:
        assert (tmp_path / name).is_file() and name in result.output
