"""Fixtures of the interop tests: node-opcua installed once, the client's certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from controller.linefile.loader import load_reference
from devices.opcua.security import CertificateSet, generate_certificates
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from simulators.broker import free_port
from simulators.conveyor import ConveyorSimulator
from tests.interop.nodeopcua_client import Connection, NodeOpcua, install, locate

TIME_SCALE = 10.0  # an item goes round the reference loop in under 2 s of wall time


@pytest.fixture(scope="session")
def nodeopcua() -> NodeOpcua:
    """node-opcua ready to run jobs: skips without node and npm (unless required)."""
    node, npm = locate()
    install(npm)
    return NodeOpcua(node)


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    """A server and a client pair from ``linectl opcua certs``'s generator."""
    return generate_certificates(tmp_path_factory.mktemp("certs"), host="127.0.0.1")


@pytest.fixture(scope="session")
def pki_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """node-opcua's certificate store, kept out of the home folder."""
    return tmp_path_factory.mktemp("nodeopcua-pki")


@pytest.fixture(scope="module")
def line() -> LineConfig:
    return load_reference(env={})


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sim(line: LineConfig) -> AsyncIterator[ConveyorSimulator]:
    """The conveyor simulator on the reference line, without security, one per module."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/linectl/"
    async with ConveyorSimulator(line, ScaledClock(TIME_SCALE), endpoint) as s:
        yield s


@pytest.fixture
def conn(sim: ConveyorSimulator, pki_dir: Path) -> Connection:
    return Connection(sim.endpoint, pki_dir)
