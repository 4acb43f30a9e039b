"""Two ``linectl run`` of one line on one PostgreSQL store: an active controller and its standby.

:class:`StandbyPair` starts, kills and stops the controllers of a line file (see
:func:`tests.line_processes.line_processes`, with ``store`` on PostgreSQL and ``failover``
enabled), each a process of its own with its own API port and instance name, and asks their APIs
which role each holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from simulators.broker import free_port
from tests.line_processes import TOKEN, _env, until


@dataclass
class Controller:
    name: str
    port: int
    log: Path
    proc: asyncio.subprocess.Process | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def http(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10.0)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def records(self) -> list[dict[str, Any]]:
        """Every JSON log record of every run of this controller."""
        out = []
        with contextlib.suppress(OSError):
            for line in self.log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out


@dataclass
class StandbyPair:
    """Controllers ``a`` and ``b`` of the line file ``line_file``, logs in ``log_dir``."""

    line_file: Path
    log_dir: Path
    controllers: dict[str, Controller] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("a", "b"):
            self.controllers[name] = Controller(
                name, free_port(), self.log_dir / f"controller-{name}.log"
            )

    def __getitem__(self, name: str) -> Controller:
        return self.controllers[name]

    async def start(self, name: str, env: dict[str, str] | None = None) -> None:
        """``linectl run`` as controller ``name`` (with ``env`` added to its environment),
        until its API answers ``/livez``."""
        c = self.controllers[name]
        assert not c.running
        c.starts += 1
        with c.log.open("ab") as out:
            c.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "controller.app.cli",
                "run",
                "--config",
                str(self.line_file),
                "--port",
                str(c.port),
                "--log-format",
                "json",
                env={**_env(), "LINECTL_FAILOVER__INSTANCE": f"controller-{name}", **(env or {})},
                stdout=out,
                stderr=out,
            )
        async with c.http() as http:

            async def answers() -> bool:
                assert c.running, f"controller {name} exited:\n{c.log_tail()}"
                with contextlib.suppress(httpx.TransportError):
                    return (await http.get("/livez")).status_code == 200
                return False

            await until(f"controller {name} answers", answers, within=60.0)

    async def stop(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int:
        c = self.controllers[name]
        assert c.proc is not None and c.running
        c.proc.send_signal(sig)
        async with asyncio.timeout(30):
            return await c.proc.wait()

    async def role(self, name: str) -> dict[str, Any] | None:
        """The controller's ``/readyz`` document (its ``controller`` role), None when it does
        not answer."""
        c = self.controllers[name]
        if not c.running:
            return None
        async with c.http() as http:
            try:
                r = await http.get("/readyz")
            except httpx.TransportError:
                return None
        return dict(r.json().get("controller") or {})

    async def wait_active(self, name: str, within: float = 60.0) -> float:
        """Wait until controller ``name`` is active; the wall seconds it took."""
        t0 = time.monotonic()

        async def active() -> bool:
            c = self.controllers[name]
            assert c.running, f"controller {name} exited:\n{c.log_tail()}"
            role = await self.role(name)
            return role is not None and role.get("role") == "active"

        await until(f"controller {name} is active", active, within=within)
        return time.monotonic() - t0

    async def standby_of(self, name: str, active: str, within: float = 30.0) -> dict[str, Any]:
        """Wait until controller ``name`` is the standby and names ``active`` as the active
        controller; its role document."""
        seen: dict[str, Any] = {}

        async def waiting() -> bool:
            nonlocal seen
            c = self.controllers[name]
            assert c.running, f"controller {name} exited:\n{c.log_tail()}"
            seen = await self.role(name) or {}
            assert seen.get("role") in (None, "standby"), f"{name} is not the standby: {seen}"
            return (seen.get("active") or {}).get("instance") == active

        await until(f"controller {name} is the standby of {active}", waiting, within=within)
        return seen

    async def kill_all(self) -> None:
        for c in self.controllers.values():
            if c.running:
                assert c.proc is not None
                c.proc.kill()
                await c.proc.wait()
