"""The OpenAPI document: FastAPI's, plus the schemas that routes reference by hand.

``PUT``, ``PATCH`` and ``POST .../cancel`` on ``/v1/orders/{id}`` read their bodies themselves
(so authorization comes first), which means FastAPI does not see their models
(:class:`~controller.orders.model.OrderIn`, :class:`~api.change_bodies.OrderPatch`,
:class:`~api.change_bodies.CancelIn`); their schemas and the :class:`~api.problems.Problem`
schema every error response points at are added here.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from api.change_bodies import CancelIn, OrderPatch
from api.problems import Problem
from controller.orders.model import OrderIn

_REF_TEMPLATE = "#/components/schemas/{model}"


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[model.__name__] = schema


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
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
