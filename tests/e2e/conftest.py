"""The whole simulated line as a fixture for the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.config.model import LineConfig
from tests.e2e.test_lifecycle import Line, running_line


@pytest.fixture
async def line(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> AsyncIterator[Line]:
    async with running_line(reference_line, mqtt_url, interface_name, tmp_path) as running:
        yield running
        # whatever a test did to the line, traffic control kept the robots apart
        assert running.sim.robots.collisions == []
