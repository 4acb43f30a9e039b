"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from kernel.config.model import Conveyor, LineConfig


@pytest.fixture
def conveyor(reference_line: LineConfig) -> Conveyor:
    """The reference line's conveyor loop."""
    return reference_line.conveyor
