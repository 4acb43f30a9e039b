"""``linectl line status`` and the API option over real HTTP: the API served by uvicorn on a
loopback port (a small backend over a real SQLite store), and an event-stream server of the
test's own for what a controller does not do on purpose (drop the stream, answer 503)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from typer.testing import CliRunner, Result

from api import create_app
from controller.app.cli.common import DEFAULT_API, api_url
from controller.app.cli.line_status import StreamRefused, snapshots
from controller.app.cli.main import app
from tests.api.conftest import ADMIN, READER, WRITER, FakeLine, auth, b2c_body, uvicorn_server

NO_ENV = {"LINECTL_API_TOKEN": None, "LINECTL_API_URL": None}


@pytest.fixture
async def api(backend: FakeLine) -> AsyncIterator[str]:
    async with uvicorn_server(create_app(backend)) as base_url:
        yield base_url


async def linectl(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """``linectl ARGS`` in a thread: the API serves on this loop."""
    return await asyncio.to_thread(
        CliRunner().invoke, app, list(args), env={**NO_ENV, **(env or {})}
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without linectl's variables (``LINECTL_*``), plus ``extra``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LINECTL_")} | extra


async def linectl_process(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """``linectl ARGS`` as a process of its own: its exit code and its output."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        *args,
        env=clean_env(**(env or {})),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, output.decode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def line_out(openapi: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of ``LineOut`` as the controller's OpenAPI document defines it."""
    schema = {"$ref": "#/components/schemas/LineOut", "components": openapi["components"]}
    return jsonschema.Draft202012Validator(schema)


async def test_status_once_drawn_and_as_json(api: str, backend: FakeLine) -> None:
    await backend.line_hold("shift-lead")
    r = await linectl("line", "status", "--api", api, "--token", READER)
    assert r.exit_code == 0, r.output
    first = r.stdout.splitlines()[0]
    assert first.startswith("line ref-line-1  HELD by shift-lead since ")
    assert "controller active" in first
    assert "conveyor C1  NOT CONNECTED" in r.stdout

    r = await linectl("line", "status", "--api", api, "--token", READER, "--json")
    assert r.exit_code == 0, r.output
    shown = json.loads(r.stdout)
    async with httpx.AsyncClient(base_url=api, headers=auth(READER)) as http:
        assert shown == (await http.get("/v1/line")).json()
        openapi = (await http.get("/openapi.json")).json()
    line_out(openapi).validate(shown)
    assert shown["held"]["by"] == "shift-lead"


async def test_a_refused_token_is_exit_3_and_an_unreachable_controller_exit_2(api: str) -> None:
    for args in (["line", "status"], ["line", "status", "--watch"]):
        r = await linectl(*args, "--api", api)
        assert r.exit_code == 3, r.output
        assert (
            "refused (HTTP 401)" in r.stderr and "give --token or set LINECTL_API_TOKEN" in r.stderr
        )
    r = await linectl("line", "status", "--api", api, "--token", WRITER, "--watch", "--json")
    assert r.exit_code == 3 and "refused (HTTP 403)" in r.stderr  # no orders:read
    r = await linectl("line", "status", "--api", f"http://127.0.0.1:{closed_port()}")
    assert r.exit_code == 2 and "cannot reach the controller" in r.stderr
    r = await linectl("line", "status", "--api", api, "--watch", "--interval", "0.1")
    assert r.exit_code == 2 and "--interval" in r.output
    # a URL without its scheme: a usage error at once, also when watching (nothing to retry)
    bare = api.removeprefix("http://")
    for args in (["line", "status"], ["line", "status", "--watch"]):
        r = await linectl(*args, "--api", bare, "--token", READER)
        assert r.exit_code == 2, r.output


async def test_the_api_is_found_by_option_then_env_then_line_file(
    api: str, backend: FakeLine, tmp_path: Path
) -> None:
    port = int(api.rsplit(":", 1)[1])
    document = backend.config.model_dump(mode="json", exclude_none=True)
    document["api"] = {"host": "0.0.0.0", "port": port}  # a wildcard host: reached on loopback
    line_file = tmp_path / "line.yaml"
    line_file.write_text(yaml.safe_dump(document))
    nowhere = f"http://127.0.0.1:{closed_port()}"

    # the line file alone
    r = await linectl("line", "status", "--config", str(line_file), "--token", READER)
    assert r.exit_code == 0, r.output
    r = await linectl("audit", "-c", str(line_file), "--json", env={"LINECTL_API_TOKEN": ADMIN})
    assert r.exit_code == 0, r.output
    # LINECTL_API_URL before the line file, --api before both
    r = await linectl(
        "line", "status", "-c", str(line_file), "--token", READER, env={"LINECTL_API_URL": nowhere}
    )
    assert r.exit_code == 2 and nowhere in r.stderr
    r = await linectl(
        "line",
        "resume",
        "--api",
        api,
        "-c",
        str(line_file),
        "--token",
        ADMIN,
        env={"LINECTL_API_URL": nowhere},
    )
    assert r.exit_code == 1 and "line running" in r.stdout, r.output  # its conveyor is offline
    r = await linectl("robot", "pause", "R01", "--token", ADMIN, env={"LINECTL_API_URL": api})
    assert r.exit_code == 1 and "robot R01 is not connected" in r.stderr  # it reached the API

    # the WMS simulator (its own process): its SKUs and its API from the same line file
    rc, output = await linectl_process(
        "sim", "wms", "-c", str(line_file), "--orders", "2", env={"LINECTL_API_TOKEN": WRITER}
    )
    assert rc == 0 and "2 created" in output, output
    assert len(backend.accepted) == 2
    rc, output = await linectl_process(
        "sim", "wms", "--url", api, "--orders", "1", "--prefix", "OLD", "--token", WRITER
    )
    assert rc == 0 and "--url is now --api" in output, output
    assert len(backend.accepted) == 3

    # devices check: LINECTL_API_URL asks the controller, --config checks from here
    r = await linectl(
        "devices", "check", "--json", env={"LINECTL_API_URL": api, "LINECTL_API_TOKEN": ADMIN}
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["devices"][0]["device"] == "conveyor C1"

    assert api_url(None) == DEFAULT_API
    document["api"] = {"host": "::", "port": 9000}
    line_file.write_text(yaml.safe_dump(document))
    assert api_url(None, line_file) == "http://[::1]:9000"
    document["api"] = {"port": 0}
    line_file.write_text(yaml.safe_dump(document))
    r = await linectl("audit", "-c", str(line_file))
    assert r.exit_code == 2 and "api.port is 0" in r.stderr


async def test_snapshots_of_the_controllers_stream(api: str, backend: FakeLine) -> None:
    """The decoder on the controller's real stream: the view at once, then each change."""

    def first_two() -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        with httpx.Client(base_url=api, headers=auth(READER), timeout=10) as client:
            for view in snapshots(client, 0.2):
                seen.append(view)
                if len(seen) == 1:  # an order changes the view
                    r = httpx.put(
                        f"{api}/v1/orders/S-1", json=b2c_body(), headers=auth(WRITER), timeout=10
                    )
                    assert r.status_code == 201, r.text
                else:
                    return seen
        raise AssertionError("the stream ended")

    first, second = await asyncio.to_thread(first_two)
    async with httpx.AsyncClient(base_url=api, headers=auth(READER)) as http:
        assert second == (await http.get("/v1/line")).json()
    assert (first["orders_queued"], second["orders_queued"]) == (0, 1)

    def without_token() -> None:
        with httpx.Client(base_url=api, timeout=10) as client:
            next(iter(snapshots(client, 0.2)))

    with pytest.raises(StreamRefused) as refused:
        await asyncio.to_thread(without_token)
    assert refused.value.code == 3


# --- a stream that drops ----------------------------------------------------------------------


class EventServer:
    """An HTTP server on loopback playing one scripted answer per connection, in turn: bytes
    written in the pieces given, then the connection closed or (``False``) left open."""

    def __init__(self, answers: list[tuple[list[bytes], bool]]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[bytes] = []
        self._open: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests.append(await reader.readuntil(b"\r\n\r\n"))
        pieces, close = self.answers[min(self.connections, len(self.answers) - 1)]
        self.connections += 1
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
        if close:
            writer.close()
        else:
            self._open.append(writer)

    def close_all(self) -> None:
        for writer in self._open:
            writer.close()


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
)


UNAVAILABLE = b"\r\n".join(
    (
        b"HTTP/1.1 503 Service Unavailable",
        b"content-type: application/problem+json",
        b"content-length: 31",
        b"connection: close",
        b"",
        b'{"detail": "store unavailable"}',
    )
)


def event(view: dict[str, Any]) -> bytes:
    """One ``line`` event, its non-ASCII text as UTF-8 (as the controller sends it)."""
    return f"event: line\r\ndata: {json.dumps(view, ensure_ascii=False)}\r\n\r\n".encode()


async def test_the_watch_survives_a_dropped_stream_and_a_failing_controller() -> None:
    first, second = {"line_id": "L1", "seq": 1, "note": "ü"}, {"line_id": "L1", "note": "é\u2028"}
    one = event(first)
    u = one.index("ü".encode()) + 1  # between the two bytes of the ü
    server = EventServer(
        [
            # the view cut at odd places, a heartbeat, then the connection drops
            (
                [
                    STREAM_HEAD,
                    b"retry: 2000\r\n: hello\r\n\r\n",
                    one[:9],
                    one[9:u],
                    one[u:-1],
                    one[-1:],
                    b": heartbeat\r\n\r\n",
                ],
                True,
            ),
            # the controller in trouble
            ([UNAVAILABLE], True),
            ([STREAM_HEAD, event(second)], False),
        ]
    )
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    env = clean_env()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.app.cli",
        "line",
        "status",
        "--watch",
        "--json",
        "--api",
        f"http://127.0.0.1:{port}",
        "--token",
        "t" * 24,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        async with asyncio.timeout(60):
            lines = [json.loads(await proc.stdout.readline()) for _ in range(2)]
        assert lines == [first, second]
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await proc.wait() == 0
        errors = (await proc.stderr.read()).decode()
        assert "Traceback" not in errors
        # the drop and the 503 are one outage, said once; and its end
        assert errors.count("trying again") == 1, errors
        assert "reachable again" in errors
        assert server.connections == 3
        assert all(b"GET /v1/line/stream?interval=1.0 " in r for r in server.requests)
        token = b"authorization: bearer " + b"t" * 24
        assert all(token in r.lower() for r in server.requests)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        server.close_all()
        listener.close()
        with contextlib.suppress(Exception):
            await listener.wait_closed()
