"""The locked-down robot broker: the shipped Mosquitto config and ACL on a Mosquitto of the
test's own, with the logins scripts/mqtt-logins.py makes.

A robot may publish only its own topics, only the controller may send orders, anonymous
clients and wrong passwords are refused, master control and the simulated robots (each with its
own login) run the fleet through it, over plain MQTT and over mutual TLS, and no log line ever
holds a password.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiomqtt
import pytest

from devices.base import (
    DeviceEvent,
    RobotAvailability,
    RobotOrder,
    RobotOrderFinished,
    RouteEdge,
    RouteNode,
)
from devices.vda5050.broker import broker_settings
from devices.vda5050.master.control import VdaMasterControl
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig, MqttTls
from kernel.logs import JsonFormatter
from kernel.metrics import Metrics
from simulators.broker import free_port
from simulators.robots import RobotFleetSimulator
from simulators.robots.logins import load_logins
from tests.integration.site_broker import (
    MOSQUITTO,
    MOSQUITTO_PASSWD,
    Logins,
    SiteBroker,
    TlsListener,
    make_logins,
)
from tests.tls_certs import Pki

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        MOSQUITTO is None or MOSQUITTO_PASSWD is None,
        reason="needs the mosquitto broker and mosquitto_passwd (Debian package mosquitto)",
    ),
]

WAIT = 20.0  # wall seconds for what must happen
MANUFACTURER = "linectl-sim"  # the reference line's robot model manufacturer


def state_topic(serial: str, subtopic: str = "state") -> str:
    return f"uagv/v2/{MANUFACTURER}/{serial}/{subtopic}"


@pytest.fixture(scope="module")
def logins(tmp_path_factory: pytest.TempPathFactory) -> Logins:
    return make_logins(tmp_path_factory.mktemp("logins") / "mqtt")


@pytest.fixture
async def broker(tmp_path: Path, logins: Logins) -> AsyncIterator[SiteBroker]:
    async with SiteBroker(tmp_path, free_port(), logins.passwd) as b:
        yield b


def client(broker: SiteBroker, user: str | None, password: str | None) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=user,
        password=password,
        identifier=f"test-{user}-{uuid.uuid4().hex[:6]}",
    )


async def next_message(c: aiomqtt.Client) -> aiomqtt.Message:
    async with asyncio.timeout(WAIT):
        return await anext(aiter(c.messages))


def secured_line(line: LineConfig, url: str, logins: Logins, **mqtt: object) -> LineConfig:
    settings = {
        "url": url,
        "username": "linectl",
        "password_file": str(logins.controller_password_file),
    } | mqtt
    return line.model_copy(update={"mqtt": line.mqtt.model_copy(update=settings)})


async def until_available(
    events: asyncio.Queue[DeviceEvent],
    serials: set[str],
    broker: SiteBroker,
    *,
    available: bool = True,
) -> None:
    waiting = set(serials)
    try:
        async with asyncio.timeout(WAIT):
            while waiting:
                ev = await events.get()
                if isinstance(ev, RobotAvailability) and ev.available == available:
                    waiting.discard(ev.serial)
    except TimeoutError:
        raise AssertionError(
            f"robots {sorted(waiting)} never {'' if available else 'un'}available:\n{broker.log}"
        ) from None


def round_trip(line: LineConfig, path: list[str]) -> RobotOrder:
    nodes = []
    for node_id in path:
        n = line.node(node_id)
        nodes.append(RouteNode(node_id, n.x, n.y, line.node_map_id(n), ()))
    edges = tuple(
        RouteEdge(a.node_id, b.node_id, math.dist((a.x, a.y), (b.x, b.y)))
        for a, b in itertools.pairwise(nodes)
    )
    return RobotOrder("secured-trip", tuple(nodes), edges)


# --- the ACL -----------------------------------------------------------------------------------


async def test_a_robot_publishes_only_its_own_state_and_never_an_order(
    broker: SiteBroker, logins: Logins
) -> None:
    async with (
        client(broker, "linectl", logins.controller_password) as controller,
        client(broker, "R02", logins.password("R02")) as r02,
        client(broker, "R01", logins.password("R01")) as r01,
    ):
        await controller.subscribe("uagv/v2/+/+/state", qos=1)
        await r02.subscribe(state_topic("R02", "order"), qos=1)
        # the forgeries first: messages of one connection are delivered in order, so had the
        # broker let them through they would arrive before the controls that follow
        await r01.publish(state_topic("R02"), b'{"forged": true}', qos=1)
        await r01.publish(state_topic("R02", "order"), b'{"forged": true}', qos=1)
        await r01.publish(state_topic("R01", "order"), b'{"forged": true}', qos=1)
        await r01.publish(state_topic("R01"), b'{"own": true}', qos=1)
        await controller.publish(state_topic("R02", "order"), b'{"real": true}', qos=1)

        seen = await next_message(controller)
        assert (seen.topic.value, seen.payload) == (state_topic("R01"), b'{"own": true}')
        order = await next_message(r02)
        assert (order.topic.value, order.payload) == (
            state_topic("R02", "order"),
            b'{"real": true}',
        )


async def test_a_robot_cannot_leave_a_retained_message_for_another(
    broker: SiteBroker, logins: Logins
) -> None:
    broken = b'{"connectionState": "CONNECTIONBROKEN"}'
    async with client(broker, "R01", logins.password("R01")) as r01:
        await r01.publish(state_topic("R02", "connection"), broken, qos=1, retain=True)
        await r01.publish(state_topic("R01", "connection"), b"own", qos=1, retain=True)
    async with client(broker, "linectl", logins.controller_password) as controller:
        # one subscription after the other: a retained message for R02 would come first
        await controller.subscribe(state_topic("R02", "connection"), qos=1)
        await controller.subscribe(state_topic("R01", "connection"), qos=1)
        seen = await next_message(controller)
        assert (seen.topic.value, seen.payload) == (state_topic("R01", "connection"), b"own")


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("R01", "wrong-password"), ("intruder", "whatever")],
    ids=["anonymous", "wrong-password", "unknown-user"],
)
async def test_clients_without_a_valid_login_are_refused(
    broker: SiteBroker, logins: Logins, user: str | None, password: str | None
) -> None:
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)not authori"):
        async with client(broker, user, password):
            pass


# --- the fleet through the locked-down broker ----------------------------------------------------


async def test_master_control_and_robots_with_their_own_logins_run_the_fleet(
    reference_line: LineConfig, broker: SiteBroker, logins: Logins
) -> None:
    url = f"mqtt://127.0.0.1:{broker.port}"
    line = secured_line(reference_line, url, logins)
    serials = [r.serial for r in line.robots.fleet]
    robot_logins = load_logins(logins.robot_logins, serials)
    clock = ScaledClock(20)
    master = VdaMasterControl(line, clock, Metrics(), url)
    robots = RobotFleetSimulator(line, clock, url, logins=robot_logins)
    assert robots.logins == {s: s for s in serials}
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(master.run(events)), tg.create_task(robots.run())]
        try:
            # every robot: its ONLINE, factsheet and states pass the ACL, the controller reads them
            await until_available(events, set(serials), broker)
            # an order reaches the robot, and the states showing it driving it come back
            await master.send_order("R01", round_trip(line, ["P1", "G00", "P1"]))
            async with asyncio.timeout(WAIT):
                while not isinstance(ev := await events.get(), RobotOrderFinished):
                    pass
            assert (ev.serial, ev.order_id) == ("R01", "secured-trip")
        finally:
            for task in tasks:
                task.cancel()
    assert "R01" in broker.log and "linectl" in broker.log  # logged in as themselves


async def test_no_log_line_holds_a_password(
    reference_line: LineConfig,
    broker: SiteBroker,
    logins: Logins,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Every level, every logger (aiomqtt and paho included), through a refused login, a
    connection, an outage and its end."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="mqtt")  # aiomqtt's and paho's, WARNING by default
    url = f"mqtt://127.0.0.1:{broker.port}"
    wrong = tmp_path / "wrong.password"
    wrong.write_text("Wr0ng-but-secret\n")
    refused = secured_line(reference_line, url, logins, password_file=str(wrong))
    line = secured_line(reference_line, url, logins)
    serials = {r.serial for r in line.robots.fleet}
    robot_logins = load_logins(logins.robot_logins, serials)
    clock = ScaledClock(20)
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
    master = VdaMasterControl(line, clock, Metrics(), url)
    intruder = VdaMasterControl(refused, clock, Metrics(), url)
    robots = RobotFleetSimulator(line, clock, url, logins=robot_logins)

    def said(message: str) -> bool:
        return any(r.getMessage() == message for r in caplog.records)

    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(master.run(events)),
            tg.create_task(intruder.run(asyncio.Queue())),
            tg.create_task(robots.run()),
        ]
        try:
            await until_available(events, serials, broker)
            await broker.stop()
            await until_available(events, serials, broker, available=False)
            await broker.start()
            await until_available(events, serials, broker)
        finally:
            for task in tasks:
                task.cancel()
    outages = [r for r in caplog.records if r.getMessage() == "MQTT broker outage started"]
    assert any("not authori" in str(getattr(r, "reason", "")).lower() for r in outages)
    assert said("MQTT broker outage ended")
    formatter = JsonFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert len(caplog.records) > 20 and any(r.levelno == logging.DEBUG for r in caplog.records)
    secrets = [logins.controller_password, "Wr0ng-but-secret"]
    secrets += [logins.password(s) for s in serials]
    for secret in secrets:
        assert secret not in text
    assert json.dumps(logins.controller_password)[1:-1] not in text


# --- TLS ---------------------------------------------------------------------------------------


async def test_master_control_and_robots_over_mutual_tls(
    reference_line: LineConfig, tmp_path: Path, logins: Logins
) -> None:
    pki = Pki(tmp_path / "pki")
    server = pki.issue("broker", server_ip="127.0.0.1")
    controller_cert = pki.issue("linectl")
    tls = TlsListener(free_port(), pki.ca, server.cert, server.key)
    async with SiteBroker(tmp_path, free_port(), logins.passwd, tls) as broker:
        url = f"mqtts://127.0.0.1:{tls.port}"
        line = secured_line(
            reference_line,
            url,
            logins,
            tls=_tls(pki.ca, controller_cert.cert, controller_cert.key),
        )
        serials = [r.serial for r in line.robots.fleet]
        robot_logins = load_logins(logins.robot_logins, serials)
        for serial in serials:  # each robot with its own client certificate
            own = pki.issue(serial)
            robot_logins[serial] = replace(
                robot_logins[serial], cert_file=str(own.cert), key_file=str(own.key)
            )
        clock = ScaledClock(20)
        events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        master = VdaMasterControl(line, clock, Metrics(), url)
        robots = RobotFleetSimulator(line, clock, url, logins=robot_logins)
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(master.run(events)), tg.create_task(robots.run())]
            try:
                await until_available(events, set(serials), broker)
            finally:
                for task in tasks:
                    task.cancel()

        # without a client certificate the TLS listener refuses the connection
        no_cert = line.model_copy(
            update={"mqtt": line.mqtt.model_copy(update={"tls": _tls(pki.ca, None, None)})}
        )
        # and a broker certificate from another CA is not trusted
        other = Pki(tmp_path / "other", "another CA")
        stranger = line.model_copy(
            update={
                "mqtt": line.mqtt.model_copy(
                    update={"tls": _tls(other.ca, controller_cert.cert, controller_cert.key)}
                )
            }
        )
        # (TLS 1.3: the broker refuses the missing certificate after the handshake, so the
        # client learns it when no CONNACK comes)
        for refused, reason in ((no_cert, "timed out"), (stranger, "certificate verify failed")):
            settings = broker_settings(refused.mqtt)
            with pytest.raises(aiomqtt.MqttError, match=reason):
                async with settings.client(f"test-{uuid.uuid4().hex[:6]}", timeout=3):
                    pass
        assert "linectl" in broker.log


def _tls(ca: Path, cert: Path | None, key: Path | None) -> MqttTls:
    return MqttTls(
        ca_file=str(ca),
        cert_file=str(cert) if cert else None,
        key_file=str(key) if key else None,
    )
