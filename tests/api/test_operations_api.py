"""Liveness, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

import httpx

from tests.api.conftest import WRITER, FakeLine, auth, b2c_body


async def test_livez(client: httpx.AsyncClient) -> None:
    r = await client.get("/livez")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.head("/livez")
    assert r.status_code == 200


async def test_readyz(client: httpx.AsyncClient, backend: FakeLine) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {
        "ready": True,
        "checks": {"config": True, "store": True, "intake": True},
        "controller": {
            "role": "active",
            "failover": False,
            "instance": None,
            "term": None,
            "active": None,
        },
    }
    # the line's only controller is the active one
    assert (await client.get("/readyz", params={"role": "active"})).status_code == 200
    r = await client.get("/readyz", params={"role": "standby"})
    assert r.status_code == 503
    assert r.json()["not_ready"] == ["role"]
    assert r.json()["reasons"]["role"] == "this controller is the active, not the standby"

    backend.ready["intake"] = False
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["not_ready"] == ["intake"]
    assert problem["checks"]["store"] is True
    assert "intake" in problem["detail"]

    r = await client.get("/livez")
    assert r.status_code == 200


async def test_metrics_exposition(client: httpx.AsyncClient) -> None:
    r = await client.put("/v1/orders/M-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 201
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=")
    assert 'linectl_orders_received_total{type="b2c"} 1.0' in r.text
    assert "# TYPE linectl_order_cycle_seconds histogram" in r.text

    r = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


async def test_openapi_documents_bodies_examples_and_problems(client: httpx.AsyncClient) -> None:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["info"]["title"] == "linectl"
    schemas = doc["components"]["schemas"]
    assert {"OrderIn", "OrderLine", "Handling", "Problem", "OrderOut"} <= set(schemas)
    assert len(schemas["OrderIn"]["examples"]) == 2

    put = doc["paths"]["/v1/orders/{order_id}"]["put"]
    body = put["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/OrderIn"}
    assert set(body["examples"]) == {"b2c", "b2b"}
    for status in ("400", "401", "403", "409", "413", "415", "422"):
        content = put["responses"][status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert {"200", "201"} <= set(put["responses"])
    assert "bearer" in doc["components"]["securitySchemes"]

    # every $ref in the document resolves
    text = r.text
    for name in set(part.split('"')[0] for part in text.split("#/components/schemas/")[1:]):
        assert name in schemas, name


async def test_store_outage_is_a_503_problem(client: httpx.AsyncClient, backend: FakeLine) -> None:
    await backend.store.close()
    r = await client.put("/v1/orders/S-1", json=b2c_body(), headers=auth(WRITER))
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "5"
    assert backend.accepted == []
