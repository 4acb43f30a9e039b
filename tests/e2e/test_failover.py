"""A line with a standby: two ``linectl run`` on one PostgreSQL store, the active one cut off
from the database.

Controller ``a`` takes the line's lease and commands it; controller ``b`` waits as the standby.
When ``a`` can no longer reach the database it stops commanding the line and ends, and ``b``
takes over and finishes every order once. The active controller killed (SIGKILL) mid-flow, again
and again, is :mod:`tests.e2e.test_failover_chaos`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from kernel.config.model import FailoverConfig, LineConfig, StoreConfig
from tests.chaos_figures import TERMINAL, PostgresSchema, fetch_orders, measure
from tests.chaos_flow import Bodies, units_picked_by_robots
from tests.failover_run import failover_orders
from tests.line_processes import RobotWatch, line_processes
from tests.pg_relay import Relay
from tests.standby_pair import Controller, StandbyPair
from tests.store_backends import drop_schema, new_schema_name, postgres_dsn

pytestmark = pytest.mark.e2e

TIME_SCALE = 10.0
LEASE = FailoverConfig(enabled=True, lease_seconds=3.0, renew_seconds=0.5)


async def put_orders(c: Controller, orders: Bodies) -> None:
    async with c.http() as http:
        for order_id, body in orders.items():
            r = await http.put(f"/v1/orders/{order_id}", json=body)
            assert r.status_code in (200, 201), (order_id, r.text)


async def statuses(c: Controller, order_ids: list[str]) -> dict[str, str]:
    out = {}
    async with c.http() as http:
        for order_id in order_ids:
            r = await http.get(f"/v1/orders/{order_id}")
            out[order_id] = r.json()["status"] if r.status_code == 200 else "missing"
    return out


async def histories(c: Controller, order_ids: list[str]) -> str:
    """The history of each order that did not complete, for a failure's message."""
    out = []
    async with c.http() as http:
        for order_id in order_ids:
            order = (await http.get(f"/v1/orders/{order_id}")).json()
            if order.get("status") != "completed":
                events = [f"{e['type']} {e.get('data') or ''}" for e in order.get("history", [])]
                out.append(f"{order_id} {order.get('status')}: " + " > ".join(events))
    return "\n".join(out)


async def settled(
    c: Controller, order_ids: list[str], watch: RobotWatch, within: float
) -> dict[str, str]:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(httpx.TransportError):
            now = await statuses(c, order_ids)
            if all(s in TERMINAL for s in now.values()) and not watch.totes_on_robots():
                return now
        assert time.monotonic() < deadline, f"orders not settled: {now}"
        await asyncio.sleep(1.0)


@pytest.mark.timeout(300)
async def test_an_active_controller_cut_off_from_the_database_stops_and_the_standby_takes_over(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    """The active controller reaches the database through a relay that stops forwarding
    anything (connections open, nothing answered): it cannot renew its lease, stops commanding
    the line and ends (exit 75); the standby takes over and every order completes once."""
    dsn = postgres_dsn()
    schema = new_schema_name()
    store = StoreConfig(backend="postgresql", dsn=SecretStr(dsn), db_schema=schema)
    orders = failover_orders(10, 5, reference_line, TIME_SCALE)
    relay = Relay()
    await relay.mend()
    try:
        async with line_processes(
            reference_line,
            mqtt_url,
            interface_name,
            tmp_path,
            time_scale=TIME_SCALE,
            store=store,
            failover=LEASE,
        ) as (line, watch):
            pair = StandbyPair(line.line_file, line.log_dir)
            a, b = pair["a"], pair["b"]
            try:
                await pair.start("a", env={"LINECTL_STORE__DSN": relay.dsn})
                await pair.wait_active("a")
                await pair.start("b")
                await pair.standby_of("b", "controller-a")
                await put_orders(b, orders)
                await asyncio.sleep(3.0)
                relay.blackhole()
                await pair.wait_active("b", within=30)
                assert a.proc is not None
                async with asyncio.timeout(60):
                    code = await a.proc.wait()
                assert code == 75, a.log_tail()
                lost = [r for r in a.records() if r.get("msg", "").startswith("lost the line's")]
                assert len(lost) == 1, a.log_tail()
                done = await settled(b, list(orders), watch, within=180)
                assert set(done.values()) == {"completed"}, await histories(b, list(orders))
                async with b.http() as http:
                    final = await fetch_orders(http, list(orders))
                ordered = {o: units_picked_by_robots(body) for o, body in orders.items()}
                figures = measure(
                    final,
                    ordered,
                    watch,
                    PostgresSchema(dsn, schema),
                    tmp_path / "conveyor.json",
                    tmp_path / "asrs.json",
                )
                assert figures.clean(), "\n".join(figures.lines())
            finally:
                await pair.kill_all()
    finally:
        await relay.cut()
        drop_schema(schema)
