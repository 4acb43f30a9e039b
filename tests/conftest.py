"""Shared fixtures: the reference line, the clock, and real protocol peers on loopback.

MQTT: ``MQTT_URL`` if set, else a broker on 127.0.0.1:1883 if one answers, else an embedded
amqtt broker started for the session. Each test gets its own VDA 5050 interface name, so tests
never see each other's messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlparse

import aiomqtt
import pytest

from controller.line.trips import Trip
from controller.linefile.loader import load_reference
from controller.store.sql.store import SqlStore
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from simulators.broker import EmbeddedBroker
from tests.store_backends import BACKENDS, StoreBackend


def pytest_configure(config: pytest.Config) -> None:
    # the CLI's consoles take their width from COLUMNS when they are made (at import), and
    # pytest-xdist starts its workers with COLUMNS=80: a test that asks for a wide terminal
    # (CliRunner's env) would get 80 columns. Unset before any test module imports the CLI,
    # a console reads the width each time it prints.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


@pytest.fixture
def uvicorn_logs_to_root() -> Iterator[None]:
    """uvicorn's loggers as linectl's API server has them (``log_config=None``): every record
    goes to the root logger's handler. A uvicorn server started earlier in the same process
    with uvicorn's own logging configuration (``access_log=False`` included) leaves them with
    handlers of their own, not propagating; they are put back as they were afterwards."""
    loggers = [logging.getLogger(n) for n in ("uvicorn", "uvicorn.error", "uvicorn.access")]
    states = [(lg.handlers[:], lg.propagate, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        lg.handlers[:] = []
        lg.propagate, lg.disabled = True, False
        lg.setLevel(logging.NOTSET)
    try:
        yield
    finally:
        for lg, (handlers, propagate, level, disabled) in zip(loggers, states, strict=True):
            lg.handlers[:] = handlers
            lg.propagate, lg.disabled = propagate, disabled
            lg.setLevel(level)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(autouse=True)
def strict_trip_transitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An illegal move of a trip's lifecycle fails the test (the service logs it instead)."""
    monkeypatch.setattr(Trip, "strict", True)


@pytest.fixture
def reference_line() -> LineConfig:
    return load_reference(env={})


@pytest.fixture
def manual_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def mqtt_url() -> AsyncIterator[str]:
    url = os.environ.get("MQTT_URL")
    if url:
        yield url
        return
    if _answers("127.0.0.1", 1883):
        yield "mqtt://127.0.0.1:1883"
        return
    async with EmbeddedBroker() as broker:
        yield broker.url


@pytest.fixture
def mqtt_host_port(mqtt_url: str) -> tuple[str, int]:
    u = urlparse(mqtt_url)
    return u.hostname or "127.0.0.1", u.port or 1883


@pytest.fixture
async def interface_name(mqtt_host_port: tuple[str, int]) -> AsyncIterator[str]:
    """A VDA 5050 interface name of this test's own; its retained messages are cleared after."""
    name = f"uagvtest{uuid.uuid4().hex[:10]}"
    yield name
    await _clear_retained(*mqtt_host_port, f"{name}/#")


async def _clear_retained(host: str, port: int, topic_filter: str) -> None:
    """Publish an empty retained message on every topic that holds one under the filter."""
    topics: set[str] = set()
    async with aiomqtt.Client(host, port, identifier=f"cleanup-{uuid.uuid4().hex[:8]}") as c:
        await c.subscribe(topic_filter, qos=1)
        try:
            async with asyncio.timeout(0.3):  # retained messages arrive right after SUBACK
                async for message in c.messages:
                    if message.retain and message.payload:
                        topics.add(message.topic.value)
        except TimeoutError:
            pass
        for topic in topics:
            await c.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteOrderStore]:
    """An open order store in a new SQLite file (modules and folders may define their own)."""
    s = SqliteOrderStore(tmp_path / "line.db")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BACKENDS)
def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    """Each store engine in turn (SQLite, PostgreSQL), for the store's contract tests."""
    backend = StoreBackend(request.param, tmp_path)
    try:
        yield backend
    finally:
        backend.cleanup()


@pytest.fixture
async def any_store(store_backend: StoreBackend) -> AsyncIterator[SqlStore]:
    """An open order store on each engine in turn (SQLite, PostgreSQL)."""
    s = store_backend.new()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
