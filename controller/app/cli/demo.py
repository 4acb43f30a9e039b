"""``linectl demo``: a whole line in one process on simulators, with its progress as it runs
and a table of its KPIs at the end (and the JSON and HTML reports when asked for)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from controller.app.cli.common import (
    ConfigOpt,
    DemoTimeScaleOpt,
    LogFormat,
    LogLevel,
    cannot_listen,
    check_broker,
    err,
    first_error,
    load_line,
    out,
    run_until_stopped,
    setup_logs,
)

OwnBroker = Literal["auto", "mosquitto", "embedded"]


def register(app: typer.Typer) -> None:
    """Add ``linectl demo`` to ``app``."""
    app.command()(demo)


def demo(
    orders: Annotated[int, typer.Option(min=1, help="Orders the WMS sends.")] = 300,
    b2b_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of B2B orders.")] = 0.2,
    time_scale: DemoTimeScaleOpt = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the JSON report here, and the HTML KPI report beside it."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="Keep the demo's order store in this new SQLite file (for linectl report --db).",
        ),
    ] = None,
    broker: Annotated[str | None, typer.Option(help="Use this broker: mqtt://host:port")] = None,
    own_broker: Annotated[
        OwnBroker,
        typer.Option(
            help="Without --broker, the broker the demo starts: auto (a private Mosquitto when "
            "the mosquitto binary is installed, else the embedded one), mosquitto or embedded.",
        ),
    ] = "auto",
    config: ConfigOpt = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many wall seconds.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the WMS workload.")] = 7,
    log_level: LogLevel = "warning",
    log_format: LogFormat = "text",
) -> None:
    """Run a whole line in one process on simulators and report KPIs.

    Exit 0 when every order is terminal, 1 otherwise, 69 when a port it takes is in use."""
    from controller.app.demo import DemoOptions, Progress, run_demo
    from kernel.ports import CannotListen
    from simulators.broker import LocalBroker, MosquittoError, find_mosquitto

    setup_logs(log_level, log_format)
    base = load_line(config)
    if broker is not None:
        check_broker(base, broker)
    elif own_broker == "mosquitto" and find_mosquitto() is None:
        err.print("--own-broker mosquitto: the mosquitto binary is not installed (not on PATH)")
        raise typer.Exit(2)
    if store is not None and store.exists():
        err.print(f"--store {store}: the file exists; give a new one", markup=False)
        raise typer.Exit(2)
    html = report.with_suffix(".html") if report is not None else None
    opts = DemoOptions(
        orders,
        b2b_share,
        time_scale,
        broker,
        timeout,
        seed,
        store_path=str(store) if store is not None else None,
        html_report=html,
        own_broker=LocalBroker(own_broker),
    )
    bar: RichProgress | None = None
    task_id: Any = None
    last_line = [0.0]

    def on_progress(p: Progress) -> None:
        nonlocal bar, task_id
        if bar is not None:
            bar.update(task_id, total=p.total, completed=p.terminal, status=_brief(p.by_status))
            return
        import time

        if time.monotonic() - last_line[0] >= 5 or p.terminal >= p.total:
            last_line[0] = time.monotonic()
            print(f"orders terminal {p.terminal}/{p.total}  {_brief(p.by_status)}", flush=True)

    if err.is_terminal:
        bar = RichProgress(
            TextColumn("orders"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=err,
        )
        task_id = bar.add_task("orders", total=orders, status="starting")
    ctx = bar if bar is not None else contextlib.nullcontext()
    try:
        with ctx:
            result = run_until_stopped(run_demo(base, opts, on_progress))
    except* CannotListen as group:  # a free port taken by another process in the meantime
        again = "the demo takes free loopback ports: run it again"
        cannot_listen(first_error(group), again, again)
    except* MosquittoError as group:
        err.print(f"{first_error(group)}; --own-broker embedded runs without it", markup=False)
        raise typer.Exit(1) from None
    if result is None:
        err.print("demo interrupted")
        raise typer.Exit(130)
    _summary(result)
    if report is not None:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result, indent=2) + "\n")
        out.print(f"report written to {report}", highlight=False)
        out.print(f"HTML report written to {html}", highlight=False, soft_wrap=True)
    raise typer.Exit(0 if result["all_terminal"] and result["orders_created"] == orders else 1)


def _brief(by_status: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in by_status.items() if v)


def _summary(r: dict[str, Any]) -> None:
    """What the demo saw, then the KPIs of its order store as ``linectl report`` shows them
    (the same figures, units and names: :mod:`controller.app.report.summary`)."""
    from controller.app.report.summary import HEAD, table

    t = Table(title="linectl demo", show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    t.add_row("orders created", str(r["orders_created"]))
    for status, n in r["by_status"].items():
        if n:
            t.add_row(f"  {status}", str(n))
    t.add_row("wall time", f"{r['wall_seconds']} s (line time x{r['time_scale']:g})")
    t.add_row("orders / h of wall time", f"{r['orders_per_hour_wall']}")
    t.add_row("scan-to-divert mean", f"{r['scan_to_divert_seconds_mean'] * 1000:.1f} ms")
    t.add_row("robot collisions", str(r["robot_collisions"]))
    flows = r.get("asrs_flows")
    if flows:
        totes = {k: int(v) for k, v in flows["case_totes"].items()}
        totes["returned"] = int(flows["totes_returned"])
        t.add_row(
            "B2B orders with AS/RS cases",
            f"{flows['b2b_orders_with_case_picks']} ({_brief(totes) or 'no totes'})",
        )
        repl = {k: int(v) for k, v in flows["replenishments"].items()}
        t.add_row("replenishments", _brief(repl) or "none")
    t.add_row("all orders terminal", "yes" if r["all_terminal"] else "NO")
    out.print(t)

    kpi = r["kpi"]
    window = kpi["window"]
    rows, notes = table(kpi["summary"])
    k = Table(
        title=f"KPIs (linectl report): line time {window['since']} to {window['until']}, "
        f"{kpi['summary']['window_hours']:.2f} h",
        title_justify="left",
    )
    for i, head in enumerate(HEAD):
        k.add_column(head, justify="left" if i == 0 else "right")
    for row in rows:
        k.add_row(*row)
    out.print(k)
    for name, text in notes:
        out.print(f"{name}: {text}", highlight=False, soft_wrap=True)
