"""``linectl report``: the KPI report of a line's order store, as HTML with plots and as JSON."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

if TYPE_CHECKING:
    from controller.app.report.db import Source

DSN_ENV = "LINECTL_STORE__DSN"
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")  # as the line file's store.db_schema


def write_report(
    db: Source,
    html_out: Path | None,
    json_out: Path | None,
    line: str,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
) -> dict[str, Any]:
    """Compute the KPIs of the store ``db`` (a SQLite file, or one line's schema in PostgreSQL)
    and write the HTML and JSON reports asked for; return the KPIs as JSON. ``source`` names
    where the data came from (default: the store's path, or server and schema). Raises
    :class:`controller.app.report.db.KpiSourceError` for a store that cannot be read."""
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
    db: Annotated[
        Path | None, typer.Option("--db", help="The line's order store: a SQLite file.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Line file: read the store its store section names (SQLite or PostgreSQL; "
            f"the DSN may come from {DSN_ENV}).",
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            help="PostgreSQL holding the line's store (libpq string or URI); with --line or "
            f"--schema. Default: {DSN_ENV} when --line or --schema is given.",
        ),
    ] = None,
    line_id: Annotated[
        str | None,
        typer.Option(
            "--line",
            help="With --dsn: the line to report, read from its schema linectl_<line id> (the "
            "default of store.db_schema); also the report's title.",
        ),
    ] = None,
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help="With --dsn: the line's schema when its line file names one (store.db_schema).",
        ),
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
    """KPI report of one line's order store: an HTML page with plots (opens offline).

    Name the store in one of three ways: --db FILE (a SQLite store); --config LINE_FILE (the
    store the line file names, SQLite or PostgreSQL); or, for lines that share one PostgreSQL
    database each in its own schema, --dsn DSN with --line ID (schema linectl_<id>) or --schema
    NAME. Only that line's orders are read, in one read-only transaction; nothing is written.

    Example: linectl report --dsn postgresql://report@db.site:5432/linectl --line line-2
    """
    from controller.app.report.db import KpiSourceError, PostgresSource, parse_time, source_of

    def fail(message: str) -> NoReturn:
        typer.echo(f"error: {message}", err=True)
        raise typer.Exit(2)

    if dsn is None and db is None and config is None and (line_id or schema):
        dsn = os.environ.get(DSN_ENV) or None
        if dsn is None:
            fail(f"--line and --schema read from PostgreSQL: give --dsn DSN (or set {DSN_ENV})")
    if [db, config, dsn].count(None) != 2:
        fail("give exactly one of --db FILE, --config FILE or --dsn DSN")
    if (line_id or schema) and dsn is None:
        fail("--line and --schema go with --dsn (a line file names its line and schema)")
    src: Source
    line = ""
    if config is not None:
        from controller.linefile.loader import ConfigError, load

        try:
            cfg = load(config)
        except ConfigError as exc:
            fail(exc.render())
        src, line = source_of(cfg.store, cfg.line.id), cfg.line.id
    elif dsn is not None:
        from kernel.config.model import default_schema

        if not (line_id or schema):
            fail("--dsn needs --line ID or --schema NAME: the one line to report")
        if schema is not None and not _SCHEMA.match(schema):
            fail(f"--schema {schema!r} is not a schema name (lower-case letters, digits, _)")
        src = PostgresSource(dsn, schema or default_schema(line_id or ""))
        line = line_id or src.schema
    else:
        assert db is not None
        src, line = db, db.name
    window: list[float | None] = []
    for name, text in (("--since", since), ("--until", until)):
        try:
            window.append(None if text is None else parse_time(text))
        except ValueError:
            fail(f"{name} {text!r} is not an ISO 8601 time")
    if None not in window and window[0] > window[1]:  # type: ignore[operator]
        fail("--since is after --until")
    try:
        write_report(src, out_path, json_path, line, window[0], window[1])
    except KpiSourceError as exc:
        fail(str(exc))
    typer.echo(f"HTML report written to {out_path}")
    if json_path is not None:
        typer.echo(f"JSON report written to {json_path}")
