"""node-opcua, a second OPC UA client stack, driven from the tests through ``run-job.js``.

The server side of linectl and its own tests use asyncua; a client of another stack catches what
two ends of one library agree on by accident (encodings, status codes, browse paths, event
filters). ``nodeopcua/run-job.js`` takes one JSON job (connection, security, user, steps) and
prints one JSON result; :class:`NodeOpcua` runs it and hands the result back as a dict, so the
tests decide what is right. The packages come from ``nodeopcua/package-lock.json`` (``npm ci``,
once, when ``node_modules`` is missing or holds another version).
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FOLDER = Path(__file__).resolve().parent / "nodeopcua"
SCRIPT = FOLDER / "run-job.js"
REQUIRE_ENV = "LINECTL_REQUIRE_NODEOPCUA"
JOB_WALL_SECONDS = 90.0  # a job's own timeout is 60 s; loading node-opcua takes a few

LC = "lc"  # the alias of the line's conveyor namespace in every job
LC_URI = "urn:linectl:conveyors"
PACKML = "packml"
PACKML_URI = "http://opcfoundation.org/UA/PackML/"

BASE_EVENT_TYPE = "i=2041"
SERVER_OBJECT = "i=2253"
EVENT_FIELDS = [  # BaseEventType's fields and those of the conveyor's two event types
    "EventType",
    "SourceNode",
    "SourceName",
    "Time",
    "Message",
    *(f"{LC}:{n}" for n in ("ItemId", "Codes", "NoRead", "MultiRead")),
    *(f"{LC}:{n}" for n in ("ChuteId", "DivertId", "Success", "Sequence")),
]

Json = dict[str, Any]


def pinned_version() -> str:
    """The node-opcua version ``package.json`` pins."""
    package = json.loads((FOLDER / "package.json").read_text())
    return str(package["dependencies"]["node-opcua"])


def installed_version() -> str | None:
    manifest = FOLDER / "node_modules" / "node-opcua" / "package.json"
    if not manifest.is_file():
        return None
    return str(json.loads(manifest.read_text())["version"])


def install(npm: str) -> None:
    """``npm ci`` in the folder unless the pinned node-opcua is there already.

    A lock file keeps parallel test processes from installing at the same time."""
    with (FOLDER / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed_version() == pinned_version():
            return
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=FOLDER,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci in {FOLDER} failed:\n{done.stdout}{done.stderr}")


def locate() -> tuple[str, str]:
    """node and npm, or skip (fail when ``LINECTL_REQUIRE_NODEOPCUA=1``)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if p is None)
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{missing} not found and {REQUIRE_ENV}=1")
        pytest.skip(
            f"{missing} not installed (Debian packages nodejs npm): the node-opcua interop "
            f"tests need them; {REQUIRE_ENV}=1 makes this a failure"
        )
    return node, npm


@dataclass(frozen=True)
class Connection:
    """How a job connects: endpoint, security, user and the client's certificate store."""

    endpoint: str
    pki_dir: Path
    security_mode: str = "None"
    security_policy: str = "None"
    username: str | None = None
    password: str | None = None
    certificate: Path | None = None
    private_key: Path | None = None
    application_uri: str | None = None
    endpoint_must_exist: bool = True
    probe_unadvertised: bool = False  # see run-job.js: the server, not the client, refuses
    namespace: str = LC_URI

    def job(self, steps: Sequence[Json]) -> Json:
        job: Json = {
            "endpoint": self.endpoint,
            "securityMode": self.security_mode,
            "securityPolicy": self.security_policy,
            "user": None,
            "pkiDir": str(self.pki_dir),
            "endpointMustExist": self.endpoint_must_exist,
            "probeUnadvertised": self.probe_unadvertised,
            "namespaces": {LC: self.namespace, PACKML: PACKML_URI},
            "steps": list(steps),
        }
        if self.username is not None:
            job["user"] = {"username": self.username, "password": self.password or ""}
        if self.certificate is not None and self.private_key is not None:
            job["certificate"] = str(self.certificate)
            job["privateKey"] = str(self.private_key)
        if self.application_uri is not None:
            job["applicationUri"] = self.application_uri
        return job


class NodeOpcua:
    """Runs jobs through ``run-job.js`` with the given ``node``."""

    def __init__(self, node: str) -> None:
        self._node = node

    async def run(self, connection: Connection, steps: Sequence[Json]) -> Json:
        """The job's result; the namespace array is checked only by the steps that need it."""
        job = json.dumps(connection.job(steps))
        proc = await asyncio.create_subprocess_exec(
            self._node,
            str(SCRIPT),
            cwd=FOLDER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(JOB_WALL_SECONDS):
                out, err = await proc.communicate(job.encode())
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        lines = out.decode().strip().splitlines()
        assert lines, f"run-job.js printed nothing (exit {proc.returncode}):\n{err.decode()}"
        result: Json = json.loads(lines[-1])
        assert "fatal" not in result, f"run-job.js failed: {result['fatal']}\n{err.decode()}"
        return result

    async def steps(self, connection: Connection, steps: Sequence[Json]) -> list[Json]:
        """The steps' results of a job that must connect and open its session."""
        result = await self.run(connection, steps)
        assert result["connect"]["ok"], result["connect"]
        assert result["session"]["ok"], result["session"]
        assert len(result["steps"]) == len(steps), result
        return list(result["steps"])


def path(*names: str, start: Json | None = None) -> Json:
    """A node reference by browse path from Objects (or ``start``), names in the line's
    namespace unless they carry an alias (``"0:Name"`` is ``Name`` in namespace 0)."""
    parts = [n[2:] if n.startswith("0:") else n if ":" in n else f"{LC}:{n}" for n in names]
    ref: Json = {"path": parts}
    if start is not None:
        ref["start"] = start
    return ref


def node(node_id: str) -> Json:
    return {"nodeId": node_id}


def ok(step: Json) -> Json:
    """A step that ran without an exception (its status codes are for the test to judge)."""
    assert step.get("ok"), step
    return step


def string_args(*values: str | Json) -> list[Json]:
    return [{"dataType": "String", "value": v} for v in values]


def unit(*names: str) -> Json:
    """A node of the reference line's conveyor unit, ``Objects/Line/C1/...``."""
    return path("Line", "C1", *names)


def packml(*names: str) -> tuple[str, ...]:
    """Browse names in the PackML namespace (OPC 30050), found by its URI in every job."""
    return tuple(f"{PACKML}:{n}" for n in names)


# the unit's three nested state machines (OPC 30050), by browse path below the unit
MACHINES: dict[str, tuple[str, ...]] = {
    "BaseStateMachine": packml("BaseStateMachine"),
    "MachineState": packml("BaseStateMachine", "MachineState"),
    "ExecuteState": packml("BaseStateMachine", "MachineState", "ExecuteState"),
}


def machine(name: str, *below: str) -> Json:
    """One of the unit's state machines (``"ExecuteState"``), or a node ``below`` it."""
    return unit(*MACHINES[name], *below)


def current_state(name: str, *below: str) -> Json:
    """``CurrentState`` of a state machine, or its ``Id`` or ``Number`` (``below``)."""
    return machine(name, "0:CurrentState", *(f"0:{b}" for b in below))


def browse(ref: Json, **extra: Any) -> Json:
    return {"op": "browse", "node": ref, **extra}


def read(ref: Json, *attributes: str) -> Json:
    return {"op": "read", "node": ref, "attributes": list(attributes) or ["Value"]}


def call(obj: Json, method: str | Json, *args: Json, **extra: Any) -> Json:
    """A call step; ``method`` is a child's browse name (``"lc:Divert"``) or a node reference."""
    return {"op": "call", "object": obj, "method": method, "inputArguments": list(args), **extra}
