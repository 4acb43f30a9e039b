"""The ``linectl`` command line: the application, ``linectl config validate`` and ``linectl run``.

The other commands live in one module per group (:mod:`controller.app.cli.sim`,
:mod:`controller.app.cli.demo`, :mod:`controller.app.cli.devices`, :mod:`controller.app.cli.asrs`,
:mod:`controller.app.cli.report`, :mod:`controller.app.cli.ops`) and are added at the end of this
module; ``linectl --help`` lists the commands, then the groups, each in the order they are added.
What the commands share is in :mod:`controller.app.cli.common`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from controller.app.cli import asrs as cli_asrs
from controller.app.cli import demo as cli_demo
from controller.app.cli import devices as cli_devices
from controller.app.cli import line_status as cli_line_status
from controller.app.cli import ops as cli_ops
from controller.app.cli import sim as cli_sim
from controller.app.cli.common import (
    LogFormat,
    LogLevel,
    TimeScaleOpt,
    cannot_listen,
    check_broker,
    err,
    first_error,
    load_line,
    out,
    run_until_stopped,
    setup_logs,
)
from controller.app.cli.report import report as kpi_report

# the exit code of ``linectl run`` when another controller took the line over (EX_TEMPFAIL: a
# supervisor starts it again, and it waits as the standby)
LEASE_LOST = 75

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Edge controller for fulfilment lines."
)
config_app = typer.Typer(no_args_is_help=True, help="Line files.")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("linectl")
    except PackageNotFoundError:
        return "0+unknown"


def _print_version(given: bool) -> None:
    if given:
        out.print(f"linectl {_version()}", highlight=False)
        raise typer.Exit(0)


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


@config_app.command("validate")
def config_validate(file: Path) -> None:
    """Check a line file; print one line per problem and exit 1 if there are any."""
    cfg = load_line(file)
    out.print(
        f"{file}: ok ({len(cfg.robots.fleet)} robots, {len(cfg.robots.nodes)} map nodes, "
        f"{len(cfg.conveyor.zones)} zones, {len(cfg.conveyor.sorter.chutes)} chutes, "
        f"{len(cfg.skus)} SKUs)",
        highlight=False,
        soft_wrap=True,
    )


def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Line file (YAML).")],
    simulate: Annotated[bool, typer.Option(help="Start simulators for the devices.")] = False,
    host: Annotated[str | None, typer.Option(help="API host (default from the line file).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default from the line file).")] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="With --simulate: the robots' broker, mqtt://host:port (else embedded)."),
    ] = None,
    time_scale: TimeScaleOpt = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """Run the controller service until SIGTERM/SIGINT (on a line with a standby, also until
    another controller takes the line over: exit code 75).

    Exit code 69 when the API's port is in use, 1 when the order store cannot be reached."""
    from controller.app.http import API
    from controller.app.runner import run_service
    from controller.service.lease_keeper import LeaseLost
    from controller.store.base import StoreUnavailable
    from kernel.ports import CannotListen

    setup_logs(log_level, log_format)
    if broker is not None and not simulate:
        err.print("--broker needs --simulate (the service uses mqtt.url of the line file)")
        raise typer.Exit(2)
    cfg = load_line(config)
    if time_scale is not None:
        cfg = cfg.with_overrides(clock=cfg.clock.model_copy(update={"time_scale": time_scale}))
    if simulate and cfg.failover.enabled:
        err.print(
            "--simulate runs one controller with its own simulators; a line with a standby "
            "(failover.enabled) runs its simulators apart: linectl sim conveyors|asrs|robots"
        )
        raise typer.Exit(2)
    if broker is not None or not simulate:  # else the embedded broker, anonymous
        check_broker(cfg, broker)
    try:
        run_until_stopped(run_service(cfg, simulate=simulate, host=host, port=port, broker=broker))
    except* LeaseLost as group:
        err.print(f"linectl run: {group.exceptions[0]}; this controller stops (exit {LEASE_LOST})")
        # now, even with a store call still hanging on a database that stopped answering
        # (its worker thread would hold up the interpreter's exit)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(LEASE_LOST)
    except* StoreUnavailable as group:  # the store cannot be reached or opened at the start
        err.print(f"linectl run: {group.exceptions[0]}")
        raise typer.Exit(1) from None
    except* CannotListen as group:
        exc = first_error(group)
        if exc.what != API:  # one of --simulate's simulators, on a free port
            cannot_listen(exc, "the simulators take free ports: run it again", "run it again")
        in_use = "stop what listens there (another linectl run?) or give another --port"
        cannot_listen(exc, in_use, "check --host and --port (api.host, api.port)")


app.add_typer(config_app, name="config")
cli_sim.register(app)  # sim
cli_demo.register(app)  # demo
app.command()(run)
cli_devices.register(app)  # opcua, devices
cli_asrs.register(app)  # asrs
app.command("report")(kpi_report)
cli_ops.register(app)  # line, conveyor, robot, audit
cli_line_status.register(cli_ops.line_app)  # line status


def main() -> None:
    app()


if __name__ == "__main__":
    main()
