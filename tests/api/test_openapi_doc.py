"""The OpenAPI document as a reader and a client generator see it: every parameter described,
examples on the main routes that fit their schemas and lie in the future, event streams
described event by event, as the stream really sends them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api import create_app
from api.sse import MEDIA_TYPE, StreamExample, event_stream_responses
from controller.orders.model import OrderIn, OrderStatus
from controller.store.sqlite.store import SqliteOrderStore
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from tests.api.conftest import READER, FakeLine, auth, b2c_body, line_with_api, uvicorn_server
from tests.api.test_events_api import messages, next_events

# a date-time anywhere in a string: an example value, or one inside a JSON text or a sentence
DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})[Tt ]\d{2}:\d{2}")
DOC_URI = "urn:linectl:openapi"
# the main routes, and the answers whose examples they show
MAIN_EXAMPLES = {
    ("put", "/v1/orders/{order_id}"): ("200", "201"),
    ("get", "/v1/orders/{order_id}"): ("200",),
    ("get", "/v1/orders"): ("200",),
    ("get", "/v1/line"): ("200",),
    ("get", "/v1/events"): ("200",),
    ("get", "/livez"): ("200",),
    ("get", "/readyz"): ("200",),
}


def _pointer(*parts: str) -> str:
    return "#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def walk(node: Any, *where: str) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every value below ``node`` with its path."""
    yield where, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, *where, str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, *where, str(i))


def document_problems(doc: dict[str, Any], today: date) -> list[str]:
    """A parameter without a description, and a date-time earlier than ``today`` anywhere in
    the document (an example that can no longer be sent as it is, or that looks stale)."""
    problems: list[str] = []
    for path, item in doc.get("paths", {}).items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if not str(parameter.get("description", "")).strip():
                    problems.append(
                        f"{method.upper()} {path}: {parameter['in']} parameter "
                        f"{parameter['name']} has no description"
                    )
    for where, value in walk(doc):
        if not isinstance(value, str):
            continue
        for match in DATE_TIME.finditer(value):
            year, month, day = (int(g) for g in match.groups())
            if date(year, month, day) < today:
                problems.append(f"{'/'.join(where)}: {match.group(0)} is in the past")
    return problems


@pytest.fixture
async def doc(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    document: dict[str, Any] = r.json()
    return document


def test_every_parameter_is_described_and_no_date_lies_in_the_past(doc: dict[str, Any]) -> None:
    today = datetime.now(UTC).date()
    assert not (problems := document_problems(doc, today)), "\n".join(problems)


def test_the_document_check_finds_what_it_looks_for() -> None:
    doc = {
        "paths": {
            "/things/{id}": {
                "get": {
                    "parameters": [
                        {"name": "id", "in": "path", "description": "The thing."},
                        {"name": "since", "in": "query", "schema": {"examples": ["x"]}},
                        {"name": "X-Trace", "in": "header", "description": " "},
                    ],
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {
                                    "example": {"at": "2026-01-02T03:04:05Z"},
                                    "examples": {
                                        "e": {"value": {"data": '{"at":"2031-01-01T00:00:00Z"}'}}
                                    },
                                }
                            }
                        }
                    },
                }
            }
        }
    }
    problems = document_problems(doc, date(2030, 1, 1))
    assert problems == [
        "GET /things/{id}: query parameter since has no description",
        "GET /things/{id}: header parameter X-Trace has no description",
        "paths//things/{id}/get/responses/200/content/application/json/example/at: "
        "2026-01-02T03:04 is in the past",
    ]
    assert len(document_problems(doc, date(2031, 6, 1))) == 4  # the JSON text's date too


def _validator(doc: dict[str, Any], *pointer: str) -> Draft202012Validator:
    """A validator for the schema at ``pointer`` in ``doc``, its references resolved there."""
    registry: Registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": DOC_URI + _pointer(*pointer)},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def _examples(media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    return found + [e["value"] for e in media.get("examples", {}).values()]


def test_the_main_routes_show_examples_that_fit_their_schemas(doc: dict[str, Any]) -> None:
    for (method, path), statuses in MAIN_EXAMPLES.items():
        responses = doc["paths"][path][method]["responses"]
        for status in statuses:
            content = responses[status]["content"]
            assert any(_examples(media) for media in content.values()), (method, path, status)

    checked = 0
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            bodies = [("requestBody",)] if "requestBody" in operation else []
            places = bodies + [("responses", status) for status in operation["responses"]]
            for place in places:
                at = (path, method, *place)
                node = doc["paths"][path][method]
                for part in place:
                    node = node[part]
                for media_type, media in node.get("content", {}).items():
                    validator = _validator(doc, "paths", *at, "content", media_type, "schema")
                    for example in _examples(media):
                        errors = [e.message for e in validator.iter_errors(example)]
                        assert not errors, (method, path, place, errors)
                        if media_type == MEDIA_TYPE:
                            content = _validator(
                                doc,
                                *("paths", *at, "content", media_type, "schema"),
                                *("properties", "data", "contentSchema"),
                            )
                            content.validate(json.loads(example["data"]))
                        checked += 1
    assert checked >= 10

    for name, schema in doc["components"]["schemas"].items():
        for example in schema.get("examples", []):
            _validator(doc, "components", "schemas", name).validate(example)


def test_parameter_examples_fit_their_schemas(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for i, parameter in enumerate(operation.get("parameters", [])):
                validator = _validator(doc, "paths", path, method, "parameters", str(i), "schema")
                for example in parameter["schema"].get("examples", []):
                    assert validator.is_valid(example), (method, path, parameter["name"])


def test_optional_parameters_are_not_declared_nullable(doc: dict[str, Any]) -> None:
    """An absent parameter is not a null one: no `{"type": "null"}` alternative, which client
    generators and Schemathesis would send as the text `null`."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                text = json.dumps(parameter["schema"])
                assert '"null"' not in text, (method, path, parameter["name"], text)


async def test_the_event_streams_events_fit_the_schema_of_one_event(
    tmp_path: Path, reference_line: LineConfig
) -> None:
    clock = ManualClock()
    store = SqliteOrderStore(tmp_path / "events.db")
    await store.open()
    try:
        await store.create_order("DOC-1", OrderIn.model_validate(b2c_body()), clock.utcnow())
        await store.record("DOC-1", "robot_assigned", clock.utcnow(), status=OrderStatus.RELEASED)
        await store.record(
            "DOC-1", "updated", clock.utcnow(), data={"priority": {"old": 5, "new": 7}}
        )
        backend = FakeLine(line_with_api(reference_line), store, clock)
        async with (
            uvicorn_server(create_app(backend)) as url,
            httpx.AsyncClient(base_url=url, headers=auth(READER)) as http,
        ):
            document = (await http.get("/openapi.json")).json()
            where = ("paths", "/v1/events", "get", "responses", "200", "content", MEDIA_TYPE)
            event_schema = _validator(document, *where, "schema")
            data_schema = _validator(document, *where, "schema", "properties", "data")
            content_schema = _validator(
                document, *where, "schema", "properties", "data", "contentSchema"
            )
            async with http.stream("GET", "/v1/events", params={"after": 0}) as response:
                events = await next_events(messages(response), 3)
    finally:
        await store.close()
    assert [m.event for m in events] == ["accepted", "robot_assigned", "updated"]
    for m in events:
        parsed = {"id": m.id, "event": m.event, "data": json.dumps(m.data)}
        event_schema.validate(parsed)
        data_schema.validate(parsed["data"])
        content_schema.validate(m.data)
    # the schema would notice a stream that broke it
    assert not event_schema.is_valid({"event": "accepted", "data": "{}"})  # no id
    assert not event_schema.is_valid({"id": "1", "event": "Accepted!", "data": "{}"})
    assert not content_schema.is_valid({**(events[0].data or {}), "status": "lost"})


class _Tick(BaseModel):
    n: int


def test_a_stream_example_that_does_not_fit_its_model_is_refused() -> None:
    with pytest.raises(ValidationError):
        event_stream_responses(
            _Tick,
            description="Ticks.",
            examples={"bad": StreamExample(event="tick", data={"n": "many"})},
        )
    responses = event_stream_responses(
        _Tick, description="Ticks.", examples={"one": StreamExample(event="tick", data={"n": 1})}
    )
    media = responses[200]["content"][MEDIA_TYPE]
    assert media["examples"]["one"]["value"] == {"event": "tick", "data": '{"n":1}'}
    assert 'event: tick\ndata: {"n":1}\n\n' in responses[200]["description"]
