"""The operator's picture of the line in a terminal: ``GET /v1/line``'s document (and the chute
capacities of ``GET /v1/line/plan``) drawn with rich, for ``linectl line status``.

Pure functions from the documents to a rich renderable; nothing here calls the API. Times in the
documents are line time (UTC) and are shown as such; every text from the API is escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.columns import Columns
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

# the order statuses in their life's order (the API lists every one)
STATUS_ORDER = (
    "accepted",
    "released",
    "picking",
    "in_transit",
    "sorted",
    "completed",
    "exception",
    "cancelled",
    "failed",
)
PROBLEM_STATUSES = frozenset({"exception", "failed"})
LOW_BATTERY, WEAK_BATTERY = 20.0, 40.0  # percent: red below the first, yellow below the second
BOX = box.SIMPLE_HEAD  # tables without side borders: more room for the columns
NEARLY_FULL = 0.8  # share of a chute's capacity shown in yellow
SHOWN_PATH = 3  # reserved nodes of a robot's way shown before the count of the rest
SHOWN_ORDERS = 2  # orders of a robot's trip shown before the count of the rest


def render(
    view: Mapping[str, Any],
    plan: Mapping[str, Any] | None = None,
    *,
    received_at: datetime | None = None,
) -> RenderableType:
    """The whole picture: the line's state, its conveyors and chutes, the AS/RS cranes, the
    robots and the orders. ``plan`` (the line's layout) adds the chutes' kind and capacity;
    ``received_at`` (wall time) is shown as the time of the snapshot."""
    parts: list[RenderableType] = [header(view, received_at)]
    controller = view.get("controller") or {}
    if controller.get("role") == "standby":
        parts.append(standby(controller))
        parts.append(orders(view))
        return Group(*parts)
    chutes_of = _plan_chutes(plan)
    for c in view.get("conveyors") or []:
        parts.append(conveyor(c, chutes_of))
    if view.get("cranes"):
        parts.append(cranes(view["cranes"]))
    parts.append(robots(view.get("robots") or []))
    parts.append(orders(view))
    return Group(*parts)


def header(view: Mapping[str, Any], received_at: datetime | None = None) -> Text:
    """``line L1  RUNNING`` (or held by whom since when, or why the store holds it), the
    controller's role, and the time of the snapshot."""
    text = Text()
    text.append(f"line {view.get('line_id', '?')}  ", style="bold")
    held = view.get("held")
    if held:
        text.append(f"HELD by {held['by']} since {clock_time(held['since'])}", style="bold yellow")
    else:
        text.append("RUNNING", style="bold green")
    if view.get("store_hold"):
        text.append(f"  STORE HOLD: {view['store_hold']}", style="bold red")
    role = (view.get("controller") or {}).get("role", "active")
    text.append(f"  controller {role}", style="cyan" if role == "active" else "bold magenta")
    if received_at is not None:
        text.append(f"  as of {received_at:%H:%M:%S}", style="dim")
    return text


def standby(controller: Mapping[str, Any]) -> Text:
    """A standby commands no device: where the active controller is."""
    me = controller.get("instance") or "this controller"
    text = Text(f"{me} is the standby (term {controller.get('term')}); ", style="magenta")
    active = controller.get("active")
    if not active:
        text.append("no controller holds the line's lease yet.", style="bold red")
        return text
    who = active.get("instance") or "another controller"
    state = "" if active.get("live") else " (its lease has expired)"
    text.append(f"the line is commanded by {who}{state}")
    if active.get("api_url"):
        text.append(" at ")
        text.append(str(active["api_url"]), style="bold")
        text.append(f": linectl line status --api {active['api_url']}")
    return text


# --- conveyors --------------------------------------------------------------------------------


def conveyor(c: Mapping[str, Any], chutes_of: Mapping[str, Mapping[str, Any]]) -> RenderableType:
    """The conveyor's state, jams and held zones, the zones with items, and its chutes."""
    title = Text(f"conveyor {c['conveyor_id']}  ", style="bold")
    if not c.get("connected"):
        title.append("NOT CONNECTED", style="bold red")
    else:
        state = str(c.get("state"))
        title.append(state, style="green" if state == "Execute" else "yellow")
    zones = list(c.get("zones") or [])
    jammed = list(c.get("jammed_zones") or [])
    held = [z["zone_id"] for z in zones if z.get("held")]
    occupied = [z for z in zones if z.get("occupied")]
    facts = Text("  ")
    facts.append(f"jams: {', '.join(jammed)}" if jammed else "no jam", "bold red" if jammed else "")
    if held:
        facts.append(f"  held zones: {', '.join(held)}", style="yellow")
    if zones:
        facts.append(f"  occupied zones: {len(occupied)}/{len(zones)}")
    title.append_text(facts)
    shown = [z for z in zones if z.get("occupied") or z.get("jammed") or z.get("held")]
    tables: list[RenderableType] = [title]
    if shown:
        tables.append(_zones(shown))
    tables.append(_chutes(c.get("chutes") or [], chutes_of))
    return Group(*tables)


def _zones(zones: Iterable[Mapping[str, Any]]) -> Table:
    t = Table(title="zones with items, jams or holds", title_justify="left", box=BOX)
    for column in ("zone", "item", "tote", "order", "to chute", ""):
        t.add_column(column, no_wrap=True)
    for z in zones:
        flags = []
        if z.get("jammed"):
            flags.append("[bold red]JAM[/]")
        if z.get("held"):
            flags.append("[yellow]held[/]")
        if z.get("running") is False:
            flags.append("[dim]stopped[/]")
        t.add_row(
            escape(z["zone_id"]),
            *(_text(z.get(k)) for k in ("item_id", "tote", "order_id", "chute")),
            " ".join(flags),
        )
    return t


def _chutes(
    chutes: Sequence[Mapping[str, Any]], plan: Mapping[str, Mapping[str, Any]]
) -> RenderableType:
    """Each chute with its kind and fill (``totes/capacity``), side by side as the width allows;
    full, nearly full and disabled chutes in colour."""
    cells = []
    for ch in chutes:
        planned = plan.get(ch["chute_id"], {})
        capacity = planned.get("capacity")
        fill = f"{ch['count']}/{capacity}" if capacity is not None else str(ch["count"])
        cell = Text(f"{ch['chute_id']} ")
        if planned.get("kind"):
            cell.append(f"{planned['kind']} ", style="dim")
        if ch.get("full"):
            cell.append(f"{fill} FULL", style="bold red")
        elif not ch.get("enabled"):
            cell.append(f"{fill} disabled", style="yellow")
        elif capacity and ch["count"] >= NEARLY_FULL * capacity:
            cell.append(fill, style="yellow")
        else:
            cell.append(fill)
        cells.append(cell)
    return Group(Text("chutes (totes/capacity)", style="italic"), Columns(cells, padding=(0, 3)))


def _plan_chutes(plan: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if not plan:
        return {}
    return {c["id"]: c for c in (plan.get("conveyor") or {}).get("chutes", [])}


# --- cranes -----------------------------------------------------------------------------------


def cranes(cranes: Sequence[Mapping[str, Any]]) -> Table:
    """Each crane: its state and position, its command and queue, the totes at its P&D input,
    and the controller's open transports of its aisle."""
    t = Table(title="AS/RS cranes", title_justify="left", box=BOX)
    for column in ("crane", "state", "at (m)", "command", "queue", "P&D in", "store/retr.", "sent"):
        t.add_column(column, no_wrap=True)
    t.add_column("notes", overflow="fold")
    for c in cranes:
        if not c.get("connected"):
            state = "[bold red]not connected[/]"
        else:
            colour = {"Fault": "bold red", "Idle": "green"}.get(str(c.get("state")), "cyan")
            state = f"[{colour}]{escape(str(c.get('state')))}[/]"
        at = "-" if c.get("x") is None else f"{c['x']:.1f}, {c.get('y') or 0:.1f}"
        tr = c.get("transports") or {}
        notes = []
        if c.get("fault"):
            notes.append(f"[bold red]{escape(c['fault'])}[/]")
        if tr.get("check"):
            notes.append(f"[yellow]{tr['check']} lost to a power loss, to check[/]")
        if tr.get("fault_hold"):
            notes.append("[red]fault hold[/]")
        t.add_row(
            escape(f"{c['crane']} ({c['aisle']})"),
            state,
            at,
            _text(c.get("current_command")),
            str(c.get("queue_length", 0)),
            str(len(c.get("pd_input") or [])),
            f"{tr.get('waiting_stores', 0)}/{tr.get('waiting_retrieves', 0)}" if tr else "-",
            str(tr.get("sent", 0) + tr.get("pending", 0)) if tr else "-",
            "; ".join(notes),
        )
    return t


# --- robots -----------------------------------------------------------------------------------


def robot_state(r: Mapping[str, Any]) -> tuple[str, str]:
    """What a robot is doing, in one word, and its colour."""
    if r.get("connection") != "ONLINE":
        return str(r.get("connection") or "offline").lower(), "bold red"
    if r.get("paused"):
        return "paused", "yellow"
    if r.get("attention"):
        return "needs operator", "bold red"
    if r.get("errors"):
        return "error", "red"
    if r.get("operating_mode") not in (None, "AUTOMATIC"):
        return str(r["operating_mode"]).lower(), "yellow"
    if r.get("charging"):
        return "charging", "cyan"
    if r.get("busy") or r.get("driving"):
        return "driving" if r.get("driving") else "busy", "green"
    return ("idle", "dim") if r.get("available") else ("unavailable", "yellow")


def robots(robots: Sequence[Mapping[str, Any]]) -> Table:
    t = Table(title="robots", title_justify="left", box=BOX)
    for column, justify in (
        ("robot", "left"),
        ("state", "left"),
        ("battery", "right"),
        ("node", "left"),
        ("traffic", "left"),
        ("carrying", "left"),
    ):
        t.add_column(column, justify=justify, no_wrap=column in ("robot", "battery", "node"))  # type: ignore[arg-type]
    t.add_column("notes", overflow="fold")
    for r in robots:
        word, colour = robot_state(r)
        carried = [c["order_id"] for c in r.get("carrying") or []]
        carrying = ", ".join(escape(o) for o in carried[:SHOWN_ORDERS])
        if len(carried) > SHOWN_ORDERS:
            carrying += f" (+{len(carried) - SHOWN_ORDERS})"
        t.add_row(
            escape(r["serial"]),
            f"[{colour}]{escape(word)}[/]",
            _battery(r.get("battery"), r.get("charging")),
            _text(r.get("last_node_id")),
            _traffic(r.get("traffic")),
            carrying or "-",
            _notes(r),
        )
    if not robots:
        t.add_row("-", "[dim]no robots reported[/]", "", "", "", "", "")
    return t


def _battery(charge: float | None, charging: bool | None) -> str:
    if charge is None:
        return "-"
    colour = "red" if charge < LOW_BATTERY else "yellow" if charge < WEAK_BATTERY else ""
    text = f"{charge:.0f} %" + (" +" if charging else "")
    return f"[{colour}]{text}[/]" if colour else text


def _traffic(traffic: Mapping[str, Any] | None) -> str:
    if traffic is None:
        return "-"
    if not traffic.get("known"):
        return "[yellow]position unknown[/]"
    base = list(traffic.get("base") or [])
    way = " > ".join(escape(n) for n in base[:SHOWN_PATH])
    if len(base) > SHOWN_PATH:
        way += f" (+{len(base) - SHOWN_PATH})"
    horizon = len(traffic.get("horizon") or [])
    if horizon:
        way += f", {horizon} planned"
    waiting = traffic.get("waiting_for")
    if waiting:
        way += (
            f"; [yellow]waits for {escape(waiting['node'])} ({escape(waiting['holder'])}, "
            f"{waiting['seconds']:.0f} s)[/]"
        )
    return way or "-"


def _notes(r: Mapping[str, Any]) -> str:
    notes = []
    if r.get("attention"):
        notes.append(f"[bold red]{escape(r['attention'])}[/]")
    notes += [f"[red]{escape(e)}[/]" for e in r.get("errors") or []]
    if r.get("fault_hold_seconds") is not None:
        notes.append(f"[yellow]no new trip for {r['fault_hold_seconds']:.0f} s[/]")
    if r.get("order_hold"):
        notes.append(f"[yellow]{escape(r['order_hold'])}[/]")
    notes += [f"[yellow]factsheet: {escape(p)}[/]" for p in r.get("factsheet_problems") or []]
    return "; ".join(notes)


# --- orders -----------------------------------------------------------------------------------


def orders(view: Mapping[str, Any]) -> RenderableType:
    """Orders by status, the queue, and the oldest waiting orders with why they wait."""
    summary = view.get("orders")
    if summary is None:
        return Text(
            f"orders queued: {view.get('orders_queued', 0)} (counts by status: the active "
            "controller's)",
            style="dim",
        )
    by_status = summary.get("by_status") or {}
    text = Text("orders  ", style="bold")
    names = [s for s in STATUS_ORDER if s in by_status] + sorted(set(by_status) - set(STATUS_ORDER))
    for name in names:
        n = by_status[name]
        style = "bold red" if name in PROBLEM_STATUSES and n else "" if n else "dim"
        text.append(f"{name} {n}", style=style)
        text.append("  ")
    text.append(f"queued {summary.get('queued', 0)}", style="bold")
    if summary.get("counted_at"):
        text.append(f"  (counted {clock_time(summary['counted_at'])})", style="dim")
    oldest = summary.get("oldest_waiting") or []
    if not oldest:
        return text
    t = Table(title="oldest waiting orders", title_justify="left", box=BOX)
    for column in ("order", "type", "prio", "created", "due", "destination"):
        t.add_column(column, no_wrap=True)
    t.add_column("waiting because", overflow="fold")
    for o in oldest:
        t.add_row(
            escape(o["order_id"]),
            escape(o["type"]),
            str(o["priority"]),
            clock_time(o["created_at"]),
            clock_time(o["due_at"]),
            escape(o["destination"]),
            escape(o["waiting_reason"]) if o.get("waiting_reason") else "[dim]not looked at yet[/]",
        )
    return Group(text, t)


# --- small helpers ----------------------------------------------------------------------------


def clock_time(iso: str) -> str:
    """An ISO 8601 time as ``HH:MM:SS`` in UTC (line times are); text that is not a time as
    it is."""
    try:
        t = datetime.fromisoformat(str(iso))
    except ValueError:
        return escape(str(iso))
    if t.tzinfo is not None:
        t = t.astimezone(UTC)
    return f"{t:%H:%M:%S}"


def _text(value: Any) -> str:
    return "-" if value in (None, "") else escape(str(value))
