"""``linectl report``: the KPI report of an order database, as HTML with plots and as JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def write_report(
    db: Path,
    html_out: Path | None,
    json_out: Path | None,
    line: str,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Compute the KPIs of ``db`` and write the HTML and JSON reports asked for; return the KPIs
    as JSON. ``source`` names where the data came from (default: the database's path).
    Raises :class:`controller.app.report.db.KpiSourceError` for a file that cannot be read."""
    from controller.app.report import db as kpi_db
    from controller.app.report import html as report_html
    from controller.app.report import kpi

    rows = kpi_db.read_rows(db)
    window = kpi.window_of(rows.orders, rows.events, rows.commands, since, until)
    kpis = kpi.compute(rows.orders, rows.events, rows.commands, window)
    data = kpi.as_dict(kpis)
    if html_out is not None:
        html_out.parent.mkdir(parents=True, exist_ok=True)
        html_out.write_text(report_html.render(kpis, line, source or str(db)), encoding="utf-8")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


def report(
    db: Annotated[Path | None, typer.Option("--db", help="Order database (SQLite).")] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Line file: read its store.")
    ] = None,
    out_path: Annotated[Path, typer.Option("--out", help="Write the HTML report here.")] = Path(
        "report.html"
    ),
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the KPIs as JSON here.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Window start, ISO 8601 (UTC unless it has an offset).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Window end, ISO 8601.")] = None,
) -> None:
    """KPI report of a line's order database: an HTML page with plots (opens offline)."""
    from controller.app.report.db import KpiSourceError, parse_time

    def fail(message: str) -> None:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if (db is None) == (config is None):
        fail("give exactly one of --db FILE or --config FILE")
    line = ""
    if config is not None:
        from controller.linefile.loader import ConfigError, load

        try:
            cfg = load(config)
        except ConfigError as exc:
            fail(exc.render())
        db, line = Path(cfg.store.path), cfg.line.id
    assert db is not None
    window: list[float | None] = []
    for name, text in (("--since", since), ("--until", until)):
        try:
            window.append(None if text is None else parse_time(text))
        except ValueError:
            fail(f"{name} {text!r} is not an ISO 8601 time")
    if None not in window and window[0] > window[1]:  # type: ignore[operator]
        fail("--since is after --until")
    try:
        write_report(db, out_path, json_path, line or db.name, window[0], window[1])
    except KpiSourceError as exc:
        fail(str(exc))
    typer.echo(f"HTML report written to {out_path}")
    if json_path is not None:
        typer.echo(f"JSON report written to {json_path}")
