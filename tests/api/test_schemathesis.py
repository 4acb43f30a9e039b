"""Property-based API tests: Schemathesis against the app served by uvicorn on loopback.

Every operation of the OpenAPI document gets a bounded, deterministic run of generated requests,
valid and invalid, with a token that may write. Each response must not be a 5xx, and its status
code, content type, headers and body must be what the document says (problem+json for every
error; each event of an event stream against the schema of one event, its JSON ``data`` against
the data's schema). An event stream never ends: it is read for :data:`STREAM_SECONDS` at most,
and the events that came by then are checked. Schemathesis's command line then runs every phase
it has (the document's examples, its coverage of each parameter's edges and of methods a path
does not serve, generated requests) with its stricter checks. Broken apps are run through the
same harnesses to show that the checks do fail.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import uvicorn
from fastapi import FastAPI, HTTPException
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import BaseModel, Field
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import create_app
from api.openapi import install_openapi
from api.sse import MEDIA_TYPE, EventStreamResponse, event_stream_responses, message
from controller.orders.model import OrderIn, OrderStatus
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.api.conftest import ADMIN, FakeLine, auth, b2c_body, line_with_api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
MAX_EXAMPLES = 30
STREAM_EXAMPLES = 8  # each may take STREAM_SECONDS
STREAM_SECONDS = 0.5  # an event stream is read this long at most; events sent by then count
# 503 is a documented answer here (not ready, or not in the role asked for), not a server error
READINESS = ("/readyz",)
ACCEPTED = "FUZZ-ACCEPTED"
RELEASED = "FUZZ-RELEASED"


@contextmanager
def serve(app: FastAPI, around: Callable[[], AbstractAsyncContextManager[None]]) -> Iterator[str]:
    """``app`` served by uvicorn on its own thread and event loop, inside ``around()`` (which
    runs on that loop); yields the base URL. The socket listens before the thread starts, so
    requests queue until the server accepts them."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then, and
    # without it keep-alive requests wait for delayed ACKs (40 ms each)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False)
    )
    failed: list[BaseException] = []

    async def main() -> None:
        async with around():
            await server.serve(sockets=[sock])

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # handed to the test thread, which raises it
            failed.append(exc)

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
    assert not thread.is_alive(), "the server did not stop"
    assert not failed, failed


Operation = APIOperation[Any, Any, Any, Any]


def is_stream(operation: Operation) -> bool:
    """The operation answers an event stream (``text/event-stream``)."""
    responses = operation.definition.raw.get("responses", {})
    return any(MEDIA_TYPE in r.get("content", {}) for r in responses.values())


def fuzz(base_url: str, *, headers: dict[str, str], order_ids: tuple[str, ...] = ()) -> list[str]:
    """Every operation with generated valid and invalid requests, and valid requests on each
    of ``order_ids``; the failures, one line each."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            if isinstance(result, Err):
                failures.append(f"an operation the harness cannot read: {result.err()}")
                continue
            operation = result.ok()
            stream = is_stream(operation)
            transport: dict[str, Any] = {"timeout": STREAM_SECONDS} if stream else {}
            runs: list[tuple[GenerationMode, dict[str, Any] | None]] = [
                (GenerationMode.POSITIVE, None),
                (GenerationMode.NEGATIVE, None),
            ]
            if "{order_id}" in operation.path:
                runs += [(GenerationMode.POSITIVE, {"order_id": i}) for i in order_ids]
            checks = [
                c for c in CHECKS if c is not not_a_server_error or operation.path not in READINESS
            ]
            for mode, path in runs:
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=path)

                @settings(
                    max_examples=STREAM_EXAMPLES if stream else MAX_EXAMPLES,
                    derandomize=True,
                    database=None,
                    deadline=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=strategy)
                def check(case: schemathesis.Case[Any]) -> None:
                    case.call_and_validate(
                        base_url=base_url,
                        session=session,
                        headers=headers,
                        checks=checks,  # noqa: B023 (called within this iteration)
                        **transport,  # noqa: B023
                    )

                try:
                    check()
                except Unsatisfiable:
                    # an operation with no parameters and no body has no invalid requests
                    if mode is not GenerationMode.NEGATIVE:
                        raise
                except (Failure, FailureGroup) as exc:
                    on = f" on {path['order_id']}" if path else ""
                    failures.append(f"{operation.label} ({mode.value}{on}): {exc}")
    return failures


@pytest.fixture
def served_line(tmp_path: Path, reference_line: LineConfig) -> Iterator[str]:
    """The API over a real SQLite store holding one accepted and one released order."""
    clock = ManualClock()
    store = SqliteOrderStore(tmp_path / "fuzz.db")
    backend = FakeLine(line_with_api(reference_line), store, clock)

    @asynccontextmanager
    async def store_open() -> AsyncIterator[None]:
        await store.open()
        try:
            body = OrderIn.model_validate(b2c_body())
            for order_id in (ACCEPTED, RELEASED):
                await store.create_order(order_id, body, clock.utcnow())
            await store.record(RELEASED, "released", clock.utcnow(), status=OrderStatus.RELEASED)
            yield
        finally:
            await store.close()

    with serve(create_app(backend), store_open) as base_url:
        yield base_url


def test_api_conforms_to_its_openapi(served_line: str) -> None:
    failures = fuzz(served_line, headers=auth(ADMIN), order_ids=(ACCEPTED, RELEASED))
    assert not failures, "\n\n".join(failures)


def test_api_without_a_token_conforms_too(served_line: str) -> None:
    assert not (failures := fuzz(served_line, headers={})), "\n\n".join(failures)


def _broken_app() -> FastAPI:
    app = FastAPI()

    @app.get("/v1/things/{thing}", responses={404: {"description": "No such thing."}})
    async def thing(thing: int) -> dict[str, int]:
        if thing % 2:
            raise HTTPException(409, "undocumented")  # a status the document does not list
        return {"thing": thing}

    return app


def test_the_harness_detects_nonconformance() -> None:
    @asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    with serve(_broken_app(), nothing) as base_url:
        failures = fuzz(base_url, headers={})
    assert failures
    assert any("409" in f and "GET /v1/things/{thing}" in f for f in failures), failures


class Tick(BaseModel):
    n: int = Field(ge=0)


def _broken_stream_app() -> FastAPI:
    """An endless event stream whose second event's data breaks the document."""
    app = FastAPI()

    async def ticks() -> AsyncIterator[bytes]:
        yield message("tick", {"n": 1}, id=1)
        yield message("tick", {"n": -2}, id=2)  # below the documented minimum
        await asyncio.Event().wait()  # then silence, like a stream with nothing new

    @app.get(
        "/v1/ticks",
        response_class=EventStreamResponse,
        responses=event_stream_responses(
            Tick,
            description="Ticks.",
            examples={},
            events=["tick"],
            id_pattern=r"^[0-9]+$",
        ),
    )
    async def stream() -> EventStreamResponse:
        return EventStreamResponse(ticks())

    install_openapi(app)  # as the API's: the data's schema among the components
    return app


def test_the_harness_reads_endless_streams_and_detects_a_nonconforming_event() -> None:
    @asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    with serve(_broken_stream_app(), nothing) as base_url:
        failures = fuzz(base_url, headers={})
    assert any("GET /v1/ticks" in f and "-2" in f for f in failures), failures


# --- Schemathesis's command line, every phase ---------------------------------------------------

# Requests whose data fits the schema yet breaks a rule of the line (an SKU not in its master, a
# due time in the past, a cursor the store never issued) are refused with 422 by design, so
# `positive_data_acceptance` is off. A body over the size limit is refused with 413 before it
# is parsed. The documented 503s of /readyz (not ready, or not in the role asked for) and of
# device commands (the device is not connected, as none is here) are answers, not server
# errors; an undocumented 5xx still fails `status_code_conformance`.
CLI_CONFIG = """
[checks.positive_data_acceptance]
enabled = false

[checks.negative_data_rejection]
expected-statuses = [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"
]

[[operations]]
# the event streams of the document
include-path-regex = '{streams}'
request-timeout = {stream_seconds}
max-stream-events = 5

[[operations]]
include-path = "/readyz"
checks.not_a_server_error.enabled = false

[[operations]]
include-path-regex = "^/v1/(robots|conveyors)/"
checks.not_a_server_error.enabled = false
"""
CLI_MAX_EXAMPLES = 10
CLI_SEED = 20301


def run_cli(base_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``st run`` with every phase against the app at ``base_url``, configured as above."""
    doc = requests.get(f"{base_url}/openapi.json", timeout=10).json()
    streams = [
        path
        for path, item in doc["paths"].items()
        for operation in item.values()
        if any(MEDIA_TYPE in r.get("content", {}) for r in operation["responses"].values())
    ]
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        CLI_CONFIG.format(
            streams="^(" + "|".join(re.escape(p) for p in streams) + ")$",
            stream_seconds=STREAM_SECONDS,
        )
    )
    command = [
        sys.executable,
        "-c",
        "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{base_url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(CLI_MAX_EXAMPLES),
        "--seed",
        str(CLI_SEED),
        "--generation-deterministic",
        "--request-timeout",
        "10",
        "--warnings",
        "off",
        *args,
    ]
    # run beside its configuration: the files it keeps (failures to replay) stay there
    return subprocess.run(
        command, cwd=config.parent, capture_output=True, text=True, timeout=600, check=False
    )


def test_schemathesis_run_with_every_phase_passes(served_line: str, tmp_path: Path) -> None:
    """With a token that may do anything; `ignored_auth` sends requests without it too."""
    done = run_cli(served_line, tmp_path, "--header", f"Authorization: Bearer {ADMIN}")
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]
    assert "Coverage" in done.stdout and "Fuzzing" in done.stdout, done.stdout


def test_schemathesis_run_fails_an_app_that_breaks_its_document(tmp_path: Path) -> None:
    @asynccontextmanager
    async def nothing() -> AsyncIterator[None]:
        yield

    with serve(_broken_stream_app(), nothing) as base_url:
        done = run_cli(base_url, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "SSE event" in done.stdout and "GET /v1/ticks" in done.stdout, done.stdout
