"""Webhook deliveries go only where the receiver policy allows, checked before each attempt and
again on connecting: a link-local callback and a name that turns into loopback between the
check and the connection are refused and recorded; an allowed name is delivered to the address
it was checked at. Real dispatcher, SQLite outbox and uvicorn receiver; name resolution is the
one seam replaced (the tests never leave loopback)."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

import pytest

from controller.orders.model import OrderStatus
from controller.store.outbox import DeliveryState
from controller.store.sqlite.store import SqliteOrderStore
from controller.webhooks import policy as webhook_policy
from controller.webhooks import transport as webhook_transport
from controller.webhooks.policy import Address
from kernel.clock import ScaledClock
from tests.api.conftest import uvicorn_server
from tests.integration.test_webhooks import T0, Outcomes, Receiver, add_order, config, running


@pytest.fixture
def clock() -> ScaledClock:
    return ScaledClock(time_scale=100)


def last_errors(path: Path) -> list[tuple[str, str, int, str]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT url, state, attempts, last_error FROM outbox"))


def resolving(monkeypatch: pytest.MonkeyPatch, module: object, to: str) -> list[str]:
    """Make ``module``'s name resolution answer ``to`` for every name; the names asked."""
    asked: list[str] = []

    async def fake(host: str, port: int) -> list[Address]:
        asked.append(host)
        return [ipaddress.ip_address(to)]

    monkeypatch.setattr(module, "resolve", fake)
    return asked


async def test_a_link_local_callback_is_dead_at_once_with_the_reason(
    store: SqliteOrderStore, clock: ScaledClock, tmp_path: Path
) -> None:
    outcomes = Outcomes()
    metadata = "http://169.254.169.254/latest/meta-data/"
    async with running(config(), store, outcomes, clock) as metrics:
        await add_order(store, "A", callback_url=metadata)
        [(delivery, state)] = await outcomes.take(1)
    assert (delivery.url, state) == (metadata, DeliveryState.DEAD)
    [(_, db_state, attempts, error)] = last_errors(tmp_path / "line.db")
    assert (db_state, attempts) == ("dead", 1)
    assert error == ("refused: 169.254.169.254 is a link-local address, never a webhook receiver")
    dead = metrics.registry.get_sample_value(
        "linectl_webhook_deliveries_total", {"outcome": "dead"}
    )
    assert dead == 1


async def test_a_name_that_turns_into_loopback_is_refused_on_connecting(
    store: SqliteOrderStore, clock: ScaledClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is public when checked and loopback when connected to."""
    receiver, outcomes = Receiver(), Outcomes()
    checked = resolving(monkeypatch, webhook_policy, "93.184.216.34")
    connected = resolving(monkeypatch, webhook_transport, "127.0.0.1")
    async with uvicorn_server(receiver.app()) as url:
        port = url.rsplit(":", 1)[1]
        async with running(config(allow_loopback=False), store, outcomes, clock):
            await add_order(store, "A", callback_url=f"http://rebind.test:{port}/cb")
            [(_, state)] = await outcomes.take(1)
    assert state is DeliveryState.DEAD
    assert checked == ["rebind.test"] and connected == ["rebind.test"]
    assert receiver.received.empty()
    [(_, _, _, error)] = last_errors(tmp_path / "line.db")
    assert error == (
        "refused: rebind.test resolves to 127.0.0.1, a loopback address "
        "(webhooks.allow_loopback is off)"
    )


async def test_an_allowed_name_is_delivered_to_the_address_it_was_checked_at(
    store: SqliteOrderStore, clock: ScaledClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, outcomes = Receiver(), Outcomes()
    resolving(monkeypatch, webhook_policy, "127.0.0.1")
    connected = resolving(monkeypatch, webhook_transport, "127.0.0.1")
    async with uvicorn_server(receiver.app()) as url:
        port = url.rsplit(":", 1)[1]
        cfg = config(allowed_hosts=["*.wms.test"])
        async with running(cfg, store, outcomes, clock):
            await add_order(store, "A", callback_url=f"http://orders.wms.test:{port}/cb")
            await store.record("A", "released", T0, status=OrderStatus.RELEASED)
            got = await receiver.take(2)
            await outcomes.take(2)
    assert [g.document["type"] for g in got] == ["accepted", "released"]
    assert {g.headers["host"] for g in got} == {f"orders.wms.test:{port}"}
    assert connected and set(connected) == {"orders.wms.test"}
