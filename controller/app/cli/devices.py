"""``linectl opcua certs`` and ``linectl devices check``: setting up and checking the links to a
line's field devices (the conveyors' OPC UA server, the robots on MQTT, the AS/RS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from controller.app.cli import ops as cli_ops
from controller.app.cli.common import (
    API_ENV,
    ApiOpt,
    LogLevel,
    TokenOpt,
    err,
    out,
    run_until_stopped,
    setup_logs,
)
from controller.linefile.loader import ConfigError, load

opcua_app = typer.Typer(no_args_is_help=True, help="OPC UA link to the conveyors.")
devices_app = typer.Typer(no_args_is_help=True, help="Field devices of a line.")


def register(app: typer.Typer) -> None:
    """Add ``linectl opcua`` and ``linectl devices`` to ``app``."""
    app.add_typer(opcua_app, name="opcua")
    app.add_typer(devices_app, name="devices")


@opcua_app.command("certs")
def opcua_certs(
    out_dir: Annotated[Path, typer.Option("--out", help="Directory to write the files to.")],
    host: Annotated[
        str, typer.Option(help="Address or name the conveyor server is reached at.")
    ] = "127.0.0.1",
    days: Annotated[int, typer.Option(min=1, help="Validity in days.")] = 365,
) -> None:
    """Write self-signed certificates and keys for the conveyor server and the controller.

    For security Basic256Sha256: the server pair goes to ``linectl sim conveyors --cert --key``
    (or a real PLC), the client pair to ``conveyor.opcua.certificate`` and ``private_key``, and
    the server certificate to ``conveyor.opcua.server_certificate`` to pin it. Exit 1 when
    the folder cannot be written.
    """
    from devices.opcua.security import generate_certificates

    try:
        written = generate_certificates(out_dir, host, days)
    except OSError as exc:  # a folder that cannot be made or written, a full disk, ...
        where = f" ({exc.filename})" if exc.filename and Path(exc.filename) != out_dir else ""
        reason = exc.strerror or str(exc)
        if isinstance(exc, FileExistsError):  # what mkdir says of a file where the folder goes
            reason = f"{reason} and is not a folder"
        err.print(
            f"--out {out_dir}: cannot write the certificates there{where}: {reason}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    for path in written.paths():
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)


@devices_app.command("check")
def devices_check(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Check from here the line file's devices.")
    ] = None,
    api: ApiOpt = None,
    token: TokenOpt = None,
    wait: Annotated[
        float, typer.Option(min=0.1, help="Seconds to listen for the robots' messages.")
    ] = 3.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
    connect_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to reach the OPC UA server.")
    ] = 5.0,
    log_level: LogLevel = "error",
) -> None:
    """Browse every configured device and report what is found, missing or of the wrong type.

    From here with ``--config FILE``, or by the controller at ``--api URL`` (or at
    LINECTL_API_URL without --config; audited, needs a token with line:operate). Exit 0 when
    everything is there and right, 1 otherwise, 2 when the line file is unusable or the
    controller cannot be reached, 3 when the token is refused.
    """
    from devices.check import check_line

    setup_logs(log_level, "text")
    source = ctx.get_parameter_source("api")
    if config is not None and source is not None and source.name == "ENVIRONMENT":
        api = None  # LINECTL_API_URL is where the API is, not a request to check through it
    if (config is None) == (api is None):
        err.print(f"give exactly one of --config FILE or --api URL (or set {API_ENV})")
        raise typer.Exit(2)
    if config is None:
        assert api is not None
        reports = cli_ops.check_via_api(api, token, wait, connect_timeout)
    else:
        try:
            cfg = load(config)
        except ConfigError as exc:
            err.print(exc.render(), markup=False, highlight=False)
            raise typer.Exit(2) from None
        reports = run_until_stopped(check_line(cfg, wait, connect_timeout))
    if reports is None:
        raise typer.Exit(130)
    ok = all(r.ok for r in reports)
    if as_json:
        print(json.dumps({"ok": ok, "devices": [r.as_dict() for r in reports]}, indent=2))
    else:
        _device_tables(reports)
    raise typer.Exit(0 if ok else 1)


SHOWN_IN_FULL = 10  # a device with more findings than this lists only its problems


def _device_tables(reports: list[Any]) -> None:
    """One table per device: its problems, then how much of what was expected was found."""
    from rich.markup import escape  # device texts may hold brackets (JSON paths)

    for r in reports:
        title = (
            f"{escape(r.device)}  {escape(r.address)}  [{'green]ok' if r.ok else 'red]PROBLEMS'}[/]"
        )
        facts = escape("  ".join(f"{k}: {v}" for k, v in r.facts))
        t = Table(title=title, caption=facts or None, title_justify="left")
        for column in ("item", "status", "detail"):
            t.add_column(column)
        problems = r.problems()
        for f in r.findings if len(r.findings) <= SHOWN_IN_FULL else problems:
            color = "red" if not f.ok else "yellow" if f.status == "note" else "green"
            status = f"[{color}]{f.status}[/]"
            t.add_row(escape(f.item), status, escape(f.detail))
        found = len(r.findings) - len(problems)
        t.add_row("(all checked)", f"{found} of {len(r.findings)} found", "")
        out.print(t)
    bad = [r.device for r in reports if not r.ok]
    out.print(f"problems: {', '.join(bad)}" if bad else "all devices ok", highlight=False)
