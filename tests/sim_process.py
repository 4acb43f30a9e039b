"""A simulator in a process of its own, as a PLC that can be killed and restarted:
``linectl sim conveyors --state`` or ``linectl sim asrs --state``."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

from controller.linefile.loader import REFERENCE_LINE

Kind = Literal["conveyors", "asrs"]
READY = {"conveyors": b"conveyor simulator on", "asrs": b"AS/RS simulator on"}


@contextlib.asynccontextmanager
async def sim_process(
    kind: Kind, endpoint: str, state: Path, time_scale: float, *extra: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``linectl sim <kind> --state`` on the reference line, until it listens."""
    args = ["sim", kind, "--config", str(REFERENCE_LINE), "--endpoint", endpoint, *extra]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *args,
        "--state",
        str(state),
        "--time-scale",
        str(time_scale),
        env=dict(os.environ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while READY[kind] not in (line := await proc.stdout.readline()):
                assert line, f"linectl sim {kind} exited during start-up"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def simulator_process(
    endpoint: str, state: Path, time_scale: float = 10.0
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """The conveyor simulator."""
    return sim_process("conveyors", endpoint, state, time_scale)


def asrs_process(
    endpoint: str, state: Path, time_scale: float = 50.0, conveyor: str | None = None
) -> contextlib.AbstractAsyncContextManager[asyncio.subprocess.Process]:
    """The AS/RS simulator; with ``conveyor``, totes set down at a P&D output go onto that
    conveyor simulator's belt."""
    extra = ("--conveyor", conveyor) if conveyor is not None else ()
    return sim_process("asrs", endpoint, state, time_scale, *extra)
