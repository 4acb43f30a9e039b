"""The OpenAPI document: FastAPI's, plus the schemas that routes reference by hand.

``PUT``, ``PATCH`` and ``POST .../cancel`` on ``/v1/orders/{id}`` read their bodies themselves
(so authorization comes first), which means FastAPI does not see their models
(:class:`~controller.orders.model.OrderIn`, :class:`~api.change_bodies.OrderPatch`,
:class:`~api.change_bodies.CancelIn`); their schemas and the :class:`~api.problems.Problem`
schema every error response points at are added here. Schemas that a route's declaration brings
along in ``$defs`` (such as the ``data`` of an event stream, see :mod:`api.sse`) are moved to the
document's components, where their references point. An optional parameter is declared by the
schema of its value alone: an absent parameter is not a ``null`` one (FastAPI writes
``anyOf: [..., {"type": "null"}]`` for an optional parameter, and a client or a test generator
reading that sends the text ``null``). Examples keep their ``null`` values: FastAPI drops every
``null`` from the document it writes, which would leave an example without the required fields
that are null in it, so the examples routes declare are put back as they are.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.change_bodies import CancelIn, OrderPatch
from api.methods import flat_routes
from api.problems import Problem
from controller.orders.model import OrderIn

_REF_TEMPLATE = "#/components/schemas/{model}"


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[model.__name__] = schema


def _hoist_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move every ``$defs`` entry below ``node`` to ``schemas`` (the components)."""
    if isinstance(node, dict):
        defs = node.pop("$defs", None)
        if isinstance(defs, dict):
            for name, sub in defs.items():
                _hoist_defs(sub, schemas)
                schemas.setdefault(name, sub)
        for value in node.values():
            _hoist_defs(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_defs(value, schemas)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's ``schema`` without the ``null`` alternative of an optional parameter."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list) or {"type": "null"} not in branches:
        return schema
    rest = [b for b in branches if b != {"type": "null"}]
    outer = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(rest) == 1:
        return {**rest[0], **outer}
    return {**outer, "anyOf": rest}


def _parameters_without_null(paths: dict[str, Any]) -> None:
    for item in paths.values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if "schema" in parameter:
                    parameter["schema"] = _without_null(parameter["schema"])


def _declared_examples(app: FastAPI, paths: dict[str, Any]) -> None:
    """Put the response examples of each route into ``paths`` as the route declares them."""
    for route in flat_routes(app.router):
        declared = getattr(getattr(route, "original_route", route), "responses", None)
        item = paths.get(getattr(route, "path", None) or "")
        if not declared or item is None:
            continue
        for method in route.methods or ():
            responses = item.get(method.lower(), {}).get("responses", {})
            for status, response in declared.items():
                documented = responses.get(str(status), {}).get("content", {})
                for media_type, media in response.get("content", {}).items():
                    for key in ("example", "examples"):
                        if key in media and media_type in documented:
                            documented[media_type][key] = copy.deepcopy(media[key])


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            _add_schema(schemas, OrderIn)
            _add_schema(schemas, OrderPatch)
            _add_schema(schemas, CancelIn)
            _add_schema(schemas, Problem)
            _hoist_defs(doc["paths"], schemas)
            _parameters_without_null(doc["paths"])
            _declared_examples(app, doc["paths"])
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
