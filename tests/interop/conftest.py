"""Fixtures of the interop tests: node-opcua installed once, the client's certificates."""

from __future__ import annotations

from pathlib import Path

import pytest

from devices.opcua.security import CertificateSet, generate_certificates
from tests.interop.nodeopcua_client import NodeOpcua, install, locate


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
