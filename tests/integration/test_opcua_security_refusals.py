"""What a secured conveyor simulator refuses (unsecured channels, anonymous and wrong logins,
untrusted client certificates), what the adapter refuses (a server offering less than the line
asks for, a certificate other than the pinned one), and how ``linectl devices check`` names
each cause. Real asyncua servers and clients on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from asyncua import Client, Node, Server, ua
from pydantic import SecretStr
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE
from devices.check import check_conveyor
from devices.check_report import Finding, Status
from devices.opcua.security import SERVER_APPLICATION_URI, CertificateSet, generate_certificates
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.integration.test_opcua_security import PASSWORD, USERNAME, WAIT, Secured, secured

pytestmark = pytest.mark.integration


def _endpoint() -> str:
    return f"opc.tcp://127.0.0.1:{free_port()}/linectl/"


@pytest.fixture
def certs(tmp_path: Path) -> CertificateSet:
    return generate_certificates(tmp_path / "certs", host="127.0.0.1")


@pytest.fixture
def stranger(tmp_path: Path) -> CertificateSet:
    """Another, valid set of certificates nobody told the simulator about."""
    return generate_certificates(tmp_path / "stranger", host="127.0.0.1")


@pytest.fixture
async def sim(reference_line: LineConfig, certs: CertificateSet) -> AsyncIterator[Secured]:
    config = secured(reference_line, certs)
    clock = ScaledClock(100)
    async with ConveyorSimulator(
        config,
        clock,
        _endpoint(),
        certificate=certs.server_certificate,
        private_key=certs.server_key,
    ) as simulator:
        yield Secured(config, certs, simulator, clock)


def at(config: LineConfig, endpoint: str) -> LineConfig:
    opcua = config.conveyor.opcua.model_copy(update={"endpoint": endpoint})
    return config.model_copy(
        update={"conveyor": config.conveyor.model_copy(update={"opcua": opcua})}
    )


async def endpoint_finding(config: LineConfig, endpoint: str) -> Finding:
    report = await check_conveyor(at(config, endpoint), connect_timeout=WAIT)
    return report.findings[0]


async def find_method(client: Client, name: str) -> tuple[Node, Node]:
    """(object, method) of the first method called ``name`` under Objects (conveyor nodes)."""
    todo = [client.nodes.objects]
    while todo:
        node = todo.pop(0)
        for child in await node.get_children():
            if child.nodeid.NamespaceIndex == 0:
                continue
            browse_name = await child.read_browse_name()
            if browse_name.Name == name and await child.read_node_class() == ua.NodeClass.Method:
                return node, child
            todo.append(child)
    raise AssertionError(f"no method {name}")


# --- the simulator: channels, logins, certificates ------------------------------------------


async def test_a_session_over_the_unsecured_channel_is_refused_with_valid_credentials(
    sim: Secured,
) -> None:
    opcua = sim.config.conveyor.opcua
    admitted = Client(sim.endpoint, timeout=WAIT)
    admitted.application_uri = "urn:linectl:controller"
    await admitted.set_security_string(
        f"Basic256Sha256,SignAndEncrypt,{opcua.certificate},{opcua.private_key}"
    )
    admitted.set_user(USERNAME)
    admitted.set_password(PASSWORD)
    async with admitted:
        unit, hold = await find_method(admitted, "Hold")

    raw = Client(sim.endpoint, timeout=WAIT)  # security None: the discovery channel
    await raw.connect_socket()
    try:
        await raw.send_hello()
        await raw.open_secure_channel()
        assert await raw.get_endpoints()  # discovery is still answered there
        with pytest.raises(ua.uaerrors.BadSecurityModeRejected):
            await raw.create_session()
        token = ua.UserNameIdentityToken(
            PolicyId="username", UserName=USERNAME, Password=PASSWORD.encode()
        )
        activate = ua.ActivateSessionParameters(UserIdentityToken=token)
        with pytest.raises(ua.uaerrors.BadSecurityModeRejected):
            await raw.uaclient.activate_session(activate)
        call = ua.CallMethodRequest(ObjectId=unit.nodeid, MethodId=hold.nodeid)
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await raw.uaclient.call([call])
        assert refused.value.code in (
            ua.StatusCodes.BadSessionNotActivated,
            ua.StatusCodes.BadSessionIdInvalid,
        )
    finally:
        raw.disconnect_socket()
    assert sim.sim.state == "Execute"


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"username": None, "password": None}, "BadIdentityTokenRejected"),
        ({"password": SecretStr("not-it")}, "BadUserAccessDenied"),
        ({"username": "someone-else"}, "BadUserAccessDenied"),
    ],
    ids=["anonymous", "wrong-password", "wrong-user"],
)
async def test_anonymous_and_wrong_logins_are_refused(
    sim: Secured, changes: dict[str, object], code: str
) -> None:
    down = await sim.availability(secured(sim.config, sim.certs, **changes))
    assert not down.available
    assert code in down.reason


async def test_an_untrusted_client_certificate_is_refused_and_logged_once(
    sim: Secured, stranger: CertificateSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="simulators.opcua_security")
    config = secured(
        sim.config,
        sim.certs,
        certificate=str(stranger.client_certificate),
        private_key=str(stranger.client_key),
    )
    for _ in range(2):
        finding = await endpoint_finding(config, sim.endpoint)
        assert finding.status is Status.REFUSED
        assert finding.detail == "certificate not trusted by the server (BadCertificateUntrusted)"
    refusals = [r for r in caplog.records if r.getMessage() == "OPC UA client certificate refused"]
    assert len(refusals) == 1
    assert "CN=linectl controller" in refusals[0].subject  # type: ignore[attr-defined]
    assert len(refusals[0].thumbprint) == 40  # type: ignore[attr-defined]


async def test_a_trust_folder_admits_the_certificates_in_it_and_no_other(
    reference_line: LineConfig, certs: CertificateSet, stranger: CertificateSet, tmp_path: Path
) -> None:
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    shutil.copy(stranger.client_certificate, trusted / "stranger.pem")
    config = secured(reference_line, certs)
    async with ConveyorSimulator(
        config,
        ScaledClock(100),
        _endpoint(),
        certificate=certs.server_certificate,
        private_key=certs.server_key,
        trusted_clients=trusted,
    ) as simulator:
        other = secured(
            config,
            certs,
            certificate=str(stranger.client_certificate),
            private_key=str(stranger.client_key),
        )
        assert (await endpoint_finding(other, simulator.endpoint)).ok
        refused = await endpoint_finding(config, simulator.endpoint)
        assert refused.detail.startswith("certificate not trusted by the server")


async def test_security_none_offers_anonymous_only_and_names_the_simulator(
    reference_line: LineConfig,
) -> None:
    async with ConveyorSimulator(reference_line, ScaledClock(100), _endpoint()) as simulator:
        client = Client(simulator.endpoint, timeout=WAIT)
        endpoints = await client.connect_and_get_server_endpoints()
        assert {t.TokenType for e in endpoints for t in e.UserIdentityTokens} == {
            ua.UserTokenType.Anonymous
        }
        assert {e.SecurityPolicyUri.rpartition("#")[2] for e in endpoints} == {"None"}
        server = endpoints[0].Server
        assert server.ApplicationUri == SERVER_APPLICATION_URI
        assert server.ProductUri == "urn:linectl:simulators:conveyor"
        assert server.ApplicationName.Text == "linectl conveyor simulator C1"
        async with client:
            build = await client.nodes.server.get_child(["0:ServerStatus", "0:BuildInfo"])
            names = {
                n: await (await build.get_child(f"0:{n}")).read_value()
                for n in ("ProductName", "ManufacturerName", "ProductUri")
            }
            assert names == {
                "ProductName": "linectl conveyor simulator",
                "ManufacturerName": "linectl",
                "ProductUri": "urn:linectl:simulators:conveyor",
            }
            # a user name is no way in: the token is not offered, and refused when sent
            token = ua.UserNameIdentityToken(PolicyId="username", UserName="x", Password=b"y")
            with pytest.raises(ua.uaerrors.BadIdentityTokenRejected):
                await client.uaclient.activate_session(
                    ua.ActivateSessionParameters(UserIdentityToken=token)
                )


def test_the_simulator_refuses_settings_it_cannot_serve_safely(
    reference_line: LineConfig, certs: CertificateSet
) -> None:
    anonymous = secured(reference_line, certs, username=None, password=None)
    with pytest.raises(ValueError, match="username and password"):
        ConveyorSimulator(
            anonymous,
            ScaledClock(1),
            certificate=certs.server_certificate,
            private_key=certs.server_key,
        )
    in_clear = secured(
        reference_line,
        certs,
        security="None",
        certificate=None,
        private_key=None,
        server_certificate=None,
    )
    with pytest.raises(ValueError, match="need security Basic256Sha256"):
        ConveyorSimulator(in_clear, ScaledClock(1))


def test_config_validate_wants_a_login_with_basic256sha256(certs: CertificateSet) -> None:
    env = {
        "LINECTL_CONVEYOR__OPCUA__SECURITY": "Basic256Sha256",
        "LINECTL_CONVEYOR__OPCUA__CERTIFICATE": str(certs.client_certificate),
        "LINECTL_CONVEYOR__OPCUA__PRIVATE_KEY": str(certs.client_key),
    }
    args = ["config", "validate", str(REFERENCE_LINE)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code != 0
    assert "conveyor.opcua.username" in result.output
    assert "conveyor.opcua.password" in result.output
    assert "LINECTL_CONVEYOR__OPCUA__PASSWORD" in result.output

    env |= {
        "LINECTL_CONVEYOR__OPCUA__USERNAME": USERNAME,
        "LINECTL_CONVEYOR__OPCUA__PASSWORD": PASSWORD,
    }
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "ok" in result.output


# --- the adapter and devices check: less security than asked for, the pin, causes -----------


async def test_a_server_offering_only_security_none_is_refused_by_the_adapter(
    reference_line: LineConfig, certs: CertificateSet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="devices.opcua.sorter")
    wanted = "server offers no Basic256Sha256 SignAndEncrypt endpoint; offers: None"
    async with ConveyorSimulator(reference_line, ScaledClock(100), _endpoint()) as plain:
        secured_line = at(secured(reference_line, certs), plain.endpoint)
        finding = await endpoint_finding(secured_line, plain.endpoint)
        assert (finding.status, finding.detail) == (Status.REFUSED, wanted)

        probe = Secured(secured_line, certs, plain, ScaledClock(100))
        down = await probe.availability(secured_line)
        assert not down.available
        assert wanted in down.reason
    started = [r for r in caplog.records if r.getMessage() == "conveyor outage started"]
    assert len(started) == 1


async def test_a_server_offering_only_sign_is_refused(
    reference_line: LineConfig, certs: CertificateSet
) -> None:
    server = Server()
    await server.init()
    endpoint = _endpoint()
    server.set_endpoint(endpoint)
    server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_Sign])
    await server.load_certificate(str(certs.server_certificate))
    await server.load_private_key(str(certs.server_key))
    async with server:
        finding = await endpoint_finding(secured(reference_line, certs), endpoint)
    assert finding.status is Status.REFUSED
    assert finding.detail == (
        "server offers no Basic256Sha256 SignAndEncrypt endpoint; offers: Basic256Sha256 Sign"
    )


async def test_devices_check_names_the_cause(sim: Secured, stranger: CertificateSet) -> None:
    wrong_password = secured(sim.config, sim.certs, password=SecretStr("not-it"))
    finding = await endpoint_finding(wrong_password, sim.endpoint)
    assert finding.status is Status.REFUSED
    assert finding.detail == "login refused (user/password) (BadUserAccessDenied)"

    other_pin = secured(sim.config, sim.certs, server_certificate=str(stranger.server_certificate))
    finding = await endpoint_finding(other_pin, sim.endpoint)
    assert finding.status is Status.REFUSED
    assert finding.detail.startswith("server certificate does not match the pinned one")

    finding = await endpoint_finding(sim.config, _endpoint())  # nobody listens there
    assert (finding.status, finding.detail) == (
        Status.UNREACHABLE,
        "unreachable (connection refused)",
    )

    assert (await endpoint_finding(sim.config, sim.endpoint)).ok


async def test_devices_check_command_shows_an_untrusted_certificate(
    sim: Secured, stranger: CertificateSet, mqtt_url: str
) -> None:
    env = {
        "LINECTL_CONVEYOR__OPCUA__ENDPOINT": sim.endpoint,
        "LINECTL_CONVEYOR__OPCUA__SECURITY": "Basic256Sha256",
        "LINECTL_CONVEYOR__OPCUA__CERTIFICATE": str(stranger.client_certificate),
        "LINECTL_CONVEYOR__OPCUA__PRIVATE_KEY": str(stranger.client_key),
        "LINECTL_CONVEYOR__OPCUA__USERNAME": USERNAME,
        "LINECTL_CONVEYOR__OPCUA__PASSWORD": PASSWORD,
        "LINECTL_ASRS__OPCUA__ENDPOINT": _endpoint(),
        "LINECTL_MQTT__URL": mqtt_url,
        "LINECTL_MQTT__INTERFACE_NAME": "uagvsecuritycheck",
    }
    args = ["devices", "check", "--config", str(REFERENCE_LINE), "--wait", "0.3", "--json"]
    # its own process: the command runs its own event loop, the simulator runs in this one
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await proc.communicate()
    assert proc.returncode == 1, stdout
    conveyor = json.loads(stdout)["devices"][0]
    assert conveyor["findings"][0] == {
        "item": "endpoint",
        "status": "refused",
        "detail": "certificate not trusted by the server (BadCertificateUntrusted)",
    }
