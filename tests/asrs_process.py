"""The AS/RS simulator in a process of its own, as a PLC that can be killed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from controller.config.loader import REFERENCE_LINE


@contextlib.asynccontextmanager
async def asrs_process(
    endpoint: str, state: Path, time_scale: float = 50.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``linectl sim asrs --state`` in its own process, until it listens."""
    args = ["sim", "asrs", "--config", str(REFERENCE_LINE), "--endpoint", endpoint]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli",
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
            while b"AS/RS simulator on" not in (line := await proc.stdout.readline()):
                assert line, "AS/RS simulator exited during start-up"
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
