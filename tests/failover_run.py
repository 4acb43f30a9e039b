"""A failover run: an active controller and its standby on the simulated line, orders flowing,
the active one killed (SIGKILL) again and again at random moments.

Used by the failover chaos test (a few kills) and by ``bench/failover.py`` (ten or more). Every
part is a process of its own: the conveyor and AS/RS simulators (with their retained journals),
the robot fleet, and two ``linectl run`` on one PostgreSQL schema. Orders go in over HTTP to
whichever controller answers (both take orders into the shared store). After each kill the
killed controller is started again and must come back as the standby. Measured from outside:

- per kill, the wall seconds from the kill until the other controller reports itself active
  (``/readyz``) and until its first command reaches a robot (the first VDA 5050 ``order`` or
  ``instantActions`` message on the broker after the kill: the killed one sends nothing more);
- at the end, :func:`tests.chaos_figures.measure`: every order terminal, none lost, no line
  picked twice, no crane command or divert executed twice, the ledger adding up.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiomqtt
import httpx
from pydantic import SecretStr

from devices.vda5050.link import broker_address
from kernel.clock import ScaledClock
from kernel.config.model import FailoverConfig, LineConfig, StoreConfig
from tests.chaos_figures import TERMINAL, Figures, PostgresSchema, fetch_orders, measure
from tests.chaos_flow import Bodies, one_aisle_orders, units_picked_by_robots, with_replenishments
from tests.line_processes import RobotWatch, line_processes
from tests.standby_pair import StandbyPair
from tests.store_backends import drop_schema, new_schema_name, postgres_dsn

LEASE = FailoverConfig(enabled=True, lease_seconds=3.0, renew_seconds=0.5)


@dataclass
class Takeover:
    killed: str
    active: str  # the controller that took over
    to_active: float  # wall seconds from the kill until it reported itself active
    to_command: float | None  # ... until its first command reached a robot (None: none seen)
    at: float = 0.0  # when it was killed (monotonic)


@dataclass
class FailoverResult:
    figures: Figures
    takeovers: list[Takeover] = field(default_factory=list)
    seed: int = 0
    flow: float = 0.0  # wall seconds from the first order to the last one settled
    stuck: dict[str, list[str]] = field(default_factory=dict)  # not terminal: last events
    lease_seconds: float = 0.0
    renew_seconds: float = 0.0

    def lines(self) -> list[str]:
        to_active = [t.to_active for t in self.takeovers]
        to_command = [t.to_command for t in self.takeovers if t.to_command is not None]
        out = [
            f"seed {self.seed}, {len(self.takeovers)} kills, flow {self.flow:.0f} s, "
            f"lease {self.lease_seconds:g} s renewed every {self.renew_seconds:g} s"
        ]
        for t in self.takeovers:
            cmd = "-" if t.to_command is None else f"{t.to_command:.2f} s"
            out.append(
                f"  killed {t.killed}: {t.active} active after {t.to_active:.2f} s, "
                f"first command after {cmd}"
            )
        if to_active:
            out.append(
                f"kill -> active        median {statistics.median(to_active):.2f} s, "
                f"max {max(to_active):.2f} s"
            )
        if to_command:
            out.append(
                f"kill -> first command median {statistics.median(to_command):.2f} s, "
                f"max {max(to_command):.2f} s ({len(to_command)} of {len(self.takeovers)} seen)"
            )
        out += self.figures.lines()
        out += [f"  history of {o}: {' > '.join(h)}" for o, h in self.stuck.items()]
        return out


class CommandWatch:
    """When VDA 5050 commands (``order``, ``instantActions``) reach the broker, heard as any
    other client of it."""

    def __init__(self, interface_name: str) -> None:
        self._interface = interface_name
        self.times: list[float] = []

    async def run(self, mqtt_url: str) -> None:
        address = broker_address(mqtt_url)
        async with aiomqtt.Client(
            address.host, address.port, identifier=f"commands-{uuid.uuid4().hex[:8]}"
        ) as client:
            await client.subscribe(f"{self._interface}/v2/+/+/order", qos=1)
            await client.subscribe(f"{self._interface}/v2/+/+/instantActions", qos=1)
            async for message in client.messages:
                if message.payload and not message.retain:
                    self.times.append(time.monotonic())

    def first_after(self, t: float) -> float | None:
        return next((x for x in self.times if x > t), None)


def failover_orders(n: int, seed: int, reference: LineConfig, time_scale: float) -> Bodies:
    carriers = sorted(reference.conveyor.sorter.sort_plan)
    now = ScaledClock(time_scale).utcnow()
    orders = one_aisle_orders(n, seed=seed, carriers=carriers, now=now)
    return with_replenishments(orders, 3, carriers, now)


async def _put(pair: StandbyPair, orders: Bodies, spread: float) -> None:
    """Every order in over HTTP, evenly over ``spread`` wall seconds, to whichever controller
    answers (both take orders); a refused or failed request is tried on the other one."""
    start = time.monotonic()
    names = ["b", "a"]
    for i, (order_id, body) in enumerate(orders.items()):
        await asyncio.sleep(max(0.0, start + spread * i / len(orders) - time.monotonic()))
        while True:
            name = names[i % 2]
            names.reverse()
            c = pair[name]
            if c.running:
                with contextlib.suppress(httpx.TransportError):
                    async with c.http() as http:
                        r = await http.put(f"/v1/orders/{order_id}", json=body)
                    if r.status_code in (200, 201):
                        break
                    assert r.status_code >= 500, (order_id, r.text)
            await asyncio.sleep(0.2)


async def _active(pair: StandbyPair) -> str | None:
    for name in ("a", "b"):
        role = await pair.role(name)
        if role is not None and role.get("role") == "active":
            return name
    return None


async def _settle(
    pair: StandbyPair, order_ids: list[str], watch: RobotWatch, within: float
) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        name = await _active(pair)
        if name is not None:
            with contextlib.suppress(httpx.TransportError):
                async with pair[name].http() as http:
                    got = await fetch_orders(http, order_ids)
                done = all(v is not None and v["status"] in TERMINAL for v in got.values())
                if done and not watch.totes_on_robots():
                    return True
        await asyncio.sleep(1.0)
    return False


async def failover_run(
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    root: Path,
    *,
    orders: int,
    kills: int,
    seed: int,
    time_scale: float = 10.0,
    spread: float | None = None,
    gap: tuple[float, float] = (3.0, 8.0),
    settle_within: float = 300.0,
    lease: FailoverConfig = LEASE,
    standby_checks: Callable[[StandbyPair], Awaitable[None]] | None = None,
) -> FailoverResult:
    """Run the line with a standby under ``kills`` SIGKILLs of the active controller, each after
    a random ``gap`` (wall seconds) of flow; ``orders`` orders spread over ``spread`` wall
    seconds (default: the time the kills take). ``standby_checks`` runs once controller ``b``
    waits as the standby of ``a``, before the first order."""
    rng = random.Random(seed)
    dsn = postgres_dsn()
    schema = new_schema_name()
    store = StoreConfig(backend="postgresql", dsn=SecretStr(dsn), db_schema=schema)
    bodies = failover_orders(orders, seed, reference_line, time_scale)
    order_ids = list(bodies)
    gaps = [rng.uniform(*gap) for _ in range(kills)]
    spread = spread if spread is not None else sum(gaps) + gap[0]
    result = FailoverResult(
        figures=Figures(),
        seed=seed,
        lease_seconds=lease.lease_seconds,
        renew_seconds=lease.renew_seconds,
    )
    try:
        async with line_processes(
            reference_line,
            mqtt_url,
            interface_name,
            root,
            time_scale=time_scale,
            store=store,
            failover=lease,
        ) as (line, watch):
            pair = StandbyPair(line.line_file, line.log_dir)
            commands = CommandWatch(interface_name)
            try:
                async with asyncio.TaskGroup() as tg:
                    listening = tg.create_task(commands.run(mqtt_url), name="test.commands")
                    await pair.start("a")
                    await pair.wait_active("a")
                    await pair.start("b")
                    await pair.standby_of("b", "controller-a")
                    if standby_checks is not None:
                        await standby_checks(pair)
                    t0 = time.monotonic()
                    feeding = tg.create_task(_put(pair, bodies, spread), name="test.orders")
                    for pause in gaps:
                        await asyncio.sleep(pause)
                        killed = await _active(pair)
                        assert killed is not None, "no controller is active"
                        other = "b" if killed == "a" else "a"
                        at = time.monotonic()
                        await pair.stop(killed, signal.SIGKILL)
                        await pair.wait_active(other, within=30.0)
                        to_active = time.monotonic() - at
                        await pair.start(killed)
                        await pair.standby_of(killed, f"controller-{other}")
                        first = commands.first_after(at)
                        to_command = None if first is None else first - at
                        result.takeovers.append(Takeover(killed, other, to_active, to_command, at))
                    await feeding
                    settled = await _settle(pair, order_ids, watch, settle_within)
                    result.flow = time.monotonic() - t0
                    # a takeover's first command may have come after the first look
                    for t in result.takeovers:
                        if t.to_command is None:
                            first = commands.first_after(t.at)
                            t.to_command = None if first is None else first - t.at
                    name = await _active(pair) or "a"
                    async with pair[name].http() as http:
                        final = await fetch_orders(http, order_ids)
                    listening.cancel()
                for order_id, order in final.items():
                    if order is not None and order["status"] not in TERMINAL:
                        result.stuck[order_id] = [e["type"] for e in order["history"]][-8:]
                ordered = {o: units_picked_by_robots(b) for o, b in bodies.items()}
                result.figures = measure(
                    final,
                    ordered,
                    watch,
                    PostgresSchema(dsn, schema),
                    root / "conveyor.json",
                    root / "asrs.json",
                )
                if not settled:
                    result.figures.not_terminal.setdefault("(run)", "not settled in time")
            finally:
                await pair.kill_all()
    finally:
        drop_schema(schema)
    return result
