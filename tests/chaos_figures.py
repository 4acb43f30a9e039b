"""What a chaos run left behind, measured from outside the controller.

:func:`measure` reads the orders over the HTTP API, the robots' own reports on the broker (a
:class:`RobotWatch`), the order store directly (its SQLite file or PostgreSQL schema) and the
simulators' retained state files, and counts: orders completed / exception / cancelled / lost
(not terminal, or unknown to the controller), totes still on a robot, order lines whose pick a
robot executed more than once (in one trip or in two), pick actions executed that no order's
history names, crane commands and diverts executed more than once (the simulators' journals),
units booked for a completed order that differ from what it ordered, ledger rows whose movements
do not add up to the on-hand, reservations left open on terminal orders and totes left open in
the reject chute.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql as psql

from tests.line_processes import RobotWatch

TERMINAL = ("completed", "cancelled", "exception")


@dataclass
class Figures:
    orders: int = 0
    completed: int = 0
    exception: int = 0
    cancelled: int = 0
    lost: int = 0  # not terminal, or unknown to the controller
    not_terminal: dict[str, str] = field(default_factory=dict)  # order -> status/step/reason
    totes_on_robots: dict[str, list[str | None]] = field(default_factory=dict)
    lines_picked_twice: list[str] = field(default_factory=list)
    picks_of_no_order: int = 0  # pick actions executed that no order's history names
    crane_commands_twice: list[str] = field(default_factory=list)
    crane_commands: int = 0
    diverts_twice: list[str] = field(default_factory=list)
    diverts: int = 0
    booked_mismatch: list[str] = field(default_factory=list)  # completed orders, units booked
    ledger_mismatch: list[str] = field(default_factory=list)
    reservations_open: int = 0
    reject_totes: Counter[str] = field(default_factory=Counter)  # open in the reject chute
    exception_reasons: Counter[str] = field(default_factory=Counter)

    @property
    def exception_share(self) -> float:
        return self.exception / self.orders if self.orders else 0.0

    def clean(self) -> bool:
        """The run's target: every order terminal, nothing stranded, doubled or unbooked."""
        return not (
            self.lost
            or self.totes_on_robots
            or self.lines_picked_twice
            or self.crane_commands_twice
            or self.diverts_twice
            or self.booked_mismatch
            or self.ledger_mismatch
            or self.reservations_open
        )

    def lines(self) -> list[str]:
        out = [
            f"orders            {self.orders}",
            f"completed         {self.completed}",
            f"exception         {self.exception} ({self.exception_share:.1%})",
            f"cancelled         {self.cancelled}",
            f"lost              {self.lost}",
            f"totes on robots   {sum(len(v) for v in self.totes_on_robots.values())}"
            + (f" {self.totes_on_robots}" if self.totes_on_robots else ""),
            f"lines picked twice {len(self.lines_picked_twice)}",
            f"picks of no order {self.picks_of_no_order}",
            f"crane commands    {self.crane_commands}, executed twice "
            f"{len(self.crane_commands_twice)}",
            f"diverts           {self.diverts}, executed twice {len(self.diverts_twice)}",
            f"booked != ordered {len(self.booked_mismatch)} completed orders",
            f"ledger mismatches {len(self.ledger_mismatch)}",
            f"open reservations {self.reservations_open} (on terminal orders)",
            f"reject-chute totes {sum(self.reject_totes.values())} open"
            + (f" {dict(self.reject_totes)}" if self.reject_totes else ""),
        ]
        for what in ("lines_picked_twice", "booked_mismatch", "ledger_mismatch"):
            out += [f"  {what}: {x}" for x in getattr(self, what)[:10]]
        out += [f"  not terminal: {o} {s}" for o, s in list(self.not_terminal.items())[:10]]
        if self.exception_reasons:
            out.append("exception reasons:")
            out += [f"  {n:4d}  {r}" for r, n in self.exception_reasons.most_common()]
        return out


async def fetch_orders(
    http: httpx.AsyncClient, order_ids: list[str]
) -> dict[str, dict[str, Any] | None]:
    out: dict[str, dict[str, Any] | None] = {}
    for order_id in order_ids:
        response = await http.get(f"/v1/orders/{order_id}")
        out[order_id] = response.json() if response.status_code == 200 else None
    return out


def _reason(order: dict[str, Any]) -> str:
    if order.get("waiting_reason"):
        return str(order["waiting_reason"])
    last = next((e for e in reversed(order["history"]) if e.get("status") == "exception"), None)
    if last is None:
        return "(no event)"
    data = last.get("data") or {}
    detail = data.get("reason") or data.get("error") or ""
    return f"{last['type']}: {detail}".rstrip(": ")


def _general(reason: str) -> str:
    """A reason without its order, tote and robot names, to group by."""
    return re.sub(r"\b[A-Z]{1,4}-?\d+[\w-]*\b", "#", reason)


def measure(
    orders: dict[str, dict[str, Any] | None],
    ordered: dict[str, dict[str, int]],  # order -> sku -> units
    watch: RobotWatch,
    store: Path | PostgresSchema,
    conveyor_state: Path,
    asrs_state: Path,
) -> Figures:
    f = Figures(orders=len(orders))
    for order_id, order in orders.items():
        status = None if order is None else order["status"]
        if status == "completed":
            f.completed += 1
        elif status == "cancelled":
            f.cancelled += 1
        elif status == "exception":
            f.exception += 1
            f.exception_reasons[_general(_reason(order))] += 1  # type: ignore[arg-type]
        else:
            f.lost += 1
            f.not_terminal[order_id] = (
                "missing"
                if order is None
                else f"{order['status']}/{order['step']}/{order['waiting_reason']}"
            )
    f.totes_on_robots = watch.totes_on_robots()
    _picks(f, orders, watch)
    _ledger(f, orders, ordered, store)
    _journals(f, conveyor_state, asrs_state)
    return f


def _picks(f: Figures, orders: dict[str, dict[str, Any] | None], watch: RobotWatch) -> None:
    """Pick actions the robots executed, per order line (the pick actions its trips carried, in
    the order's history), and per (tote, location) for picks no order's history names."""
    assigned: set[tuple[str, str]] = set()
    for order_id, order in orders.items():
        per_line: dict[str, set[str]] = {}
        for e in order["history"] if order else []:
            if e["type"] not in ("robot_assigned", "robot_continued"):
                continue
            tote = str(e["data"].get("tote"))
            for pk in e["data"].get("picks", []):
                assigned.add((tote, str(pk["location"])))
                if "action" in pk:
                    per_line.setdefault(str(pk["line_id"]), set()).add(str(pk["action"]))
        for line_id, actions in sorted(per_line.items()):
            done = sorted(actions & watch.executed)
            if len(done) > 1:
                f.lines_picked_twice.append(f"{order_id} line {line_id}: {done}")
    for key, n in watch.executed_picks().items():
        if key not in assigned:
            f.picks_of_no_order += n


@dataclass(frozen=True)
class PostgresSchema:
    """A line's store in PostgreSQL, for :func:`measure` to read."""

    dsn: str
    schema: str


class _Reader:
    """Read-only queries with ``?`` placeholders on the SQLite file or the PostgreSQL schema."""

    def __init__(self, store: Path | PostgresSchema) -> None:
        self._pg = isinstance(store, PostgresSchema)
        if isinstance(store, PostgresSchema):
            self._conn: Any = psycopg.connect(store.dsn, autocommit=True)
            self._conn.execute(
                psql.SQL("SET search_path TO {}").format(psql.Identifier(store.schema))
            )
        else:
            self._conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        if self._pg:
            query = query.replace("?", "%s")
        return self._conn.execute(query, params)

    def close(self) -> None:
        self._conn.close()


def _ledger(
    f: Figures,
    orders: dict[str, dict[str, Any] | None],
    ordered: dict[str, dict[str, int]],
    store: Path | PostgresSchema,
) -> None:
    conn = _Reader(store)
    try:
        sums = {
            (loc, tote, sku): int(total)
            for loc, tote, sku, total in conn.execute(
                "SELECT location, tote, sku, SUM(delta) FROM stock_movements "
                "GROUP BY location, tote, sku"
            )
        }
        on_hand = {
            (loc, tote, sku): int(n)
            for loc, tote, sku, n in conn.execute("SELECT location, tote, sku, on_hand FROM stock")
        }
        for key in sorted(set(sums) | set(on_hand)):
            if sums.get(key, 0) != on_hand.get(key, 0):
                f.ledger_mismatch.append(
                    f"{key}: movements {sums.get(key, 0)}, on hand {on_hand.get(key, 0)}"
                )
        booked: dict[str, Counter[str]] = {}
        for order_id, sku, delta in conn.execute(
            "SELECT order_id, sku, delta FROM stock_movements "
            "WHERE kind = 'robot_pick_confirmed' AND order_id IS NOT NULL"
        ):
            booked.setdefault(order_id, Counter())[sku] -= int(delta)
        for order_id, order in orders.items():
            if order is not None and order["status"] == "completed":
                got = {s: n for s, n in booked.get(order_id, Counter()).items() if n}
                if got != ordered[order_id]:
                    f.booked_mismatch.append(f"{order_id}: ordered {ordered[order_id]}, {got}")
        terminal = [o for o, v in orders.items() if v is not None and v["status"] in TERMINAL]
        for order_id in terminal:
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM reservations WHERE order_id = ? AND state = 'reserved'",
                (order_id,),
            ).fetchone()
            f.reservations_open += int(n)
        for (reason,) in conn.execute("SELECT reason FROM reject_totes WHERE state = 'open'"):
            f.reject_totes[_general(str(reason))] += 1
    finally:
        conn.close()


def _journals(f: Figures, conveyor_state: Path, asrs_state: Path) -> None:
    """Diverts and crane commands the simulators executed more than once (their retained
    journals: a divert per item on the belt, a crane command per command id)."""
    if conveyor_state.exists():
        loop = json.loads(conveyor_state.read_text())["loop"]
        done = Counter(d["item_id"] for d in loop["journal"] if d["ok"])
        f.diverts = sum(done.values())
        f.diverts_twice = sorted(i for i, n in done.items() if n > 1)
    if asrs_state.exists():
        cranes = json.loads(asrs_state.read_text())["cranes"]
        done = Counter(e["command_id"] for c in cranes for e in c["journal"] if e["ok"])
        f.crane_commands = sum(done.values())
        f.crane_commands_twice = sorted(i for i, n in done.items() if n > 1)
