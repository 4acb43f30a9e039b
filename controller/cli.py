"""The ``linectl`` command line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from controller import cli_ops, logs
from controller.config.loader import ConfigError, load, load_reference

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Edge controller for fulfilment lines."
)
config_app = typer.Typer(no_args_is_help=True, help="Line files.")
sim_app = typer.Typer(no_args_is_help=True, help="Device simulators, each on its own.")
app.add_typer(config_app, name="config")
app.add_typer(sim_app, name="sim")

log = logging.getLogger(__name__)
err = Console(stderr=True)
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Line file (YAML).")]
LogLevel = Annotated[str, typer.Option("--log-level", help="debug, info, warning, error.")]
LogFormat = Annotated[str, typer.Option("--log-format", help="text (key=value) or json.")]


def _load(path: Path | None) -> Any:
    try:
        return load(path) if path is not None else load_reference()
    except ConfigError as exc:
        err.print(exc.render(), markup=False, highlight=False)
        raise typer.Exit(1) from None


SLOW_STOP_SECONDS = 10.0


def _report_slow_stop(main: asyncio.Task[Any]) -> None:
    """The stop takes long: say once which tasks are still running, and where."""
    if main.done():
        return
    pending = [t for t in asyncio.all_tasks() if not t.done() and t is not main]
    log.warning(
        "stop is taking long; tasks still running",
        extra={
            "seconds": SLOW_STOP_SECONDS,
            "tasks": [
                f"{t.get_name()} at "
                + "; ".join(f"{f.f_code.co_filename}:{f.f_lineno}" for f in t.get_stack(limit=3))
                for t in pending
            ],
        },
    )


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main``; SIGINT/SIGTERM cancel it so every task stops cleanly."""

    async def runner() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None

        def stop() -> None:
            task.cancel()
            loop.call_later(SLOW_STOP_SECONDS, _report_slow_stop, task)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            return await main
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        return asyncio.run(runner())
    return None


@config_app.command("validate")
def config_validate(file: Path) -> None:
    """Check a line file; print one line per problem and exit 1 if there are any."""
    cfg = _load(file)
    out.print(
        f"{file}: ok ({len(cfg.robots.fleet)} robots, {len(cfg.robots.nodes)} map nodes, "
        f"{len(cfg.conveyor.zones)} zones, {len(cfg.conveyor.sorter.chutes)} chutes, "
        f"{len(cfg.skus)} SKUs)",
        highlight=False,
    )


@app.command()
def demo(
    orders: Annotated[int, typer.Option(min=1, help="Orders the WMS sends.")] = 300,
    b2b_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of B2B orders.")] = 0.2,
    time_scale: Annotated[float, typer.Option(min=0.1, help="Line seconds per wall second.")] = 30,
    report: Annotated[Path | None, typer.Option(help="Write the JSON report here.")] = None,
    broker: Annotated[str | None, typer.Option(help="Use this broker: mqtt://host:port")] = None,
    config: ConfigOpt = None,
    timeout: Annotated[float, typer.Option(help="Give up after this many wall seconds.")] = 600.0,
    seed: Annotated[int, typer.Option(help="Seed of the WMS workload.")] = 7,
    log_level: LogLevel = "warning",
    log_format: LogFormat = "text",
) -> None:
    """Run a whole line in one process on simulators and report KPIs."""
    from controller.demo import DemoOptions, Progress, run_demo

    logs.setup(log_level, log_format)
    base = _load(config)
    html = report.with_suffix(".html") if report is not None else None
    opts = DemoOptions(orders, b2b_share, time_scale, broker, timeout, seed, html_report=html)
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
    with ctx:
        result = _run(run_demo(base, opts, on_progress))
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
    t = Table(title="linectl demo", show_header=False)
    t.add_column("KPI")
    t.add_column("value", justify="right")
    t.add_row("orders created", str(r["orders_created"]))
    for status, n in r["by_status"].items():
        if n:
            t.add_row(f"  {status}", str(n))
    t.add_row("wall time", f"{r['wall_seconds']} s")
    t.add_row("line time", f"{r['line_seconds']} s (x{r['time_scale']:g})")
    t.add_row("throughput (line)", f"{r['orders_per_hour_line']} orders/h")
    t.add_row("throughput (wall)", f"{r['orders_per_hour_wall']} orders/h")
    ct = r["cycle_time_line_seconds"]
    t.add_row("cycle time p50 / p95", f"{ct['p50']} s / {ct['p95']} s")
    t.add_row("sort decisions", _brief({k: int(v) for k, v in r["sort_decisions"].items()}))
    t.add_row("scan-to-divert mean", f"{r['scan_to_divert_seconds_mean'] * 1000:.1f} ms")
    t.add_row("robot collisions", str(r["robot_collisions"]))
    for aisle, kinds in r.get("asrs", {}).items():
        cycles = ", ".join(
            f"{k} {int(v['cycles'])} x {v['mean_seconds']} s" for k, v in kinds.items()
        )
        t.add_row(f"AS/RS {aisle} cycles", cycles or "none")
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


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Line file (YAML).")],
    simulate: Annotated[bool, typer.Option(help="Start simulators for the devices.")] = False,
    host: Annotated[str | None, typer.Option(help="API host (default from the line file).")] = None,
    port: Annotated[int | None, typer.Option(help="API port (default from the line file).")] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="With --simulate: the robots' broker, mqtt://host:port (else embedded)."),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """Run the controller service until SIGTERM/SIGINT."""
    from controller.runner import run_service

    logs.setup(log_level, log_format)
    if broker is not None:
        from devices.vda5050.link import broker_address

        if not simulate:
            err.print("--broker needs --simulate (the service uses mqtt.url of the line file)")
            raise typer.Exit(2)
        try:
            broker_address(broker)
        except ValueError as exc:
            err.print(f"--broker: {exc}", markup=False, highlight=False)
            raise typer.Exit(2) from None
    cfg = _load(config)
    _run(run_service(cfg, simulate=simulate, host=host, port=port, broker=broker))


def _sim_setup(
    config: Path | None, time_scale: float | None, log_level: str, log_format: str
) -> tuple[Any, Any]:
    from controller.clock import ScaledClock

    logs.setup(log_level, log_format)
    cfg = _load(config)
    return cfg, ScaledClock(time_scale or cfg.clock.time_scale)


@sim_app.command("robots")
def sim_robots(
    config: ConfigOpt = None,
    broker: Annotated[str | None, typer.Option(help="MQTT broker (default: mqtt.url).")] = None,
    time_scale: Annotated[float | None, typer.Option(help="Default: clock.time_scale.")] = None,
    faults: Annotated[
        Path | None, typer.Option(help="Fault script (YAML), see docs/simulators.md.")
    ] = None,
    conveyor: Annotated[
        str | None,
        typer.Option(
            help="OPC UA endpoint of a conveyor simulator: totes dropped at induction nodes "
            "go onto its belt (Simulation.Induct)."
        ),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """The robot fleet as VDA 5050 peers on an MQTT broker."""
    from simulators.induction import RemoteInduction
    from simulators.robots import RobotFleetSimulator
    from simulators.robots.script import FaultScriptError, load_script

    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    script = []
    if faults is not None:
        try:
            script = load_script(faults, [r.serial for r in cfg.robots.fleet])
        except FaultScriptError as exc:
            err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    if conveyor is None:
        _run(RobotFleetSimulator(cfg, clock, broker or cfg.mqtt.url).run(script))
        return
    try:
        hand_over = RemoteInduction(cfg, conveyor)
    except ValueError as exc:
        err.print(f"--conveyor: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    fleet = RobotFleetSimulator(cfg, clock, broker or cfg.mqtt.url, on_drop=hand_over.on_drop)

    async def with_conveyor() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(hand_over.run(), name="sim.robots.handover")
            tg.create_task(fleet.run(script), name="sim.robots")

    _run(with_conveyor())


@sim_app.command("conveyors")
def sim_conveyors(
    config: ConfigOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="Default: conveyor.opcua.endpoint.")] = None,
    time_scale: Annotated[float | None, typer.Option(help="Default: clock.time_scale.")] = None,
    cert: Annotated[
        Path | None, typer.Option(help="Server certificate (security Basic256Sha256).")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key.")] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Retained state file (as a PLC's retentive memory): written while running, "
            "taken over on start when present."
        ),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """The conveyor loop and sorter as an OPC UA server."""
    from simulators.conveyor import ConveyorSimulator
    from simulators.conveyor.retained import RetainedStateError

    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    try:
        sim = ConveyorSimulator(
            cfg, clock, endpoint, certificate=cert, private_key=key, state_file=state
        )
    except ValueError as exc:
        err.print(f"{exc} (--cert, --key; see linectl opcua certs)", markup=False)
        raise typer.Exit(1) from None

    async def serve() -> str | None:
        try:
            async with sim:
                security = cfg.conveyor.opcua.security
                out.print(
                    f"conveyor simulator on {sim.endpoint} (security {security})", highlight=False
                )
                await asyncio.Event().wait()
        except RetainedStateError as exc:
            return str(exc)
        return None

    problem = _run(serve())
    if problem is not None:
        err.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@sim_app.command("asrs")
def sim_asrs(
    config: ConfigOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="Default: asrs.opcua.endpoint.")] = None,
    time_scale: Annotated[float | None, typer.Option(help="Default: clock.time_scale.")] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Retained state file (rack contents, journal): written while running, "
            "taken over on start when present."
        ),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """The AS/RS cranes as an OPC UA server."""
    from simulators.asrs import AsrsSimulator
    from simulators.asrs.retained import RetainedStateError

    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    try:
        sim = AsrsSimulator(cfg, clock, endpoint, state_file=state)
    except ValueError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None

    async def serve() -> str | None:
        try:
            async with sim:
                out.print(f"AS/RS simulator on {sim.endpoint}", highlight=False)
                await asyncio.Event().wait()
        except RetainedStateError as exc:
            return str(exc)
        return None

    problem = _run(serve())
    if problem is not None:
        err.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@sim_app.command("wms")
def sim_wms(
    url: Annotated[str, typer.Option(help="linectl API base URL.")] = "http://127.0.0.1:8080",
    token: Annotated[str | None, typer.Option(envvar="LINECTL_API_TOKEN", help="Bearer.")] = None,
    orders: Annotated[int, typer.Option(min=1)] = 100,
    b2b_share: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.2,
    seed: int = 7,
    prefix: Annotated[
        str,
        typer.Option(
            help="Order ids are PREFIX-000001, ...: another prefix for another batch.",
        ),
    ] = "WMS",
    start: Annotated[int, typer.Option(min=1, help="Number of the first order id.")] = 1,
    config: ConfigOpt = None,
) -> None:
    """Send a batch of B2C/B2B orders to a running controller."""
    import re
    from datetime import UTC, datetime

    from simulators.wms import WmsGenerator

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", prefix):
        err.print("--prefix: letters, digits, '.', '_' and '-', starting with a letter or digit")
        raise typer.Exit(2)
    cfg = _load(config)
    gen = WmsGenerator(cfg, url, token, seed=seed, b2b_share=b2b_share, prefix=prefix)
    res = _run(gen.send(orders, datetime.now(UTC), start=start))
    if res is None:
        raise typer.Exit(130)
    out.print(
        f"sent {res.sent}: {res.created} created, {res.duplicates} existing, "
        f"{len(res.rejected)} rejected",
        highlight=False,
    )
    for order_id, status, detail in res.rejected[:20]:
        err.print(f"{order_id}: HTTP {status}: {detail}", markup=False)
    raise typer.Exit(0 if not res.rejected else 1)


opcua_app = typer.Typer(no_args_is_help=True, help="OPC UA link to the conveyors.")
app.add_typer(opcua_app, name="opcua")


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
    the server certificate to ``conveyor.opcua.server_certificate`` to pin it.
    """
    from devices.opcua.security import generate_certificates

    written = generate_certificates(out_dir, host, days)
    for path in written.paths():
        out.print(f"wrote {path}", highlight=False, soft_wrap=True)


devices_app = typer.Typer(no_args_is_help=True, help="Field devices of a line.")
app.add_typer(devices_app, name="devices")


@devices_app.command("check")
def devices_check(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Line file (YAML).")] = None,
    api: Annotated[str | None, typer.Option(help="Check from the controller at this URL.")] = None,
    token: cli_ops.Token = None,
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

    From here with ``--config FILE``, or by the controller at ``--api URL`` (audited, needs a
    token with line:operate). Exit 0 when everything is there and right, 1 otherwise, 2 when the
    line file is unusable or the controller cannot be reached, 3 when the token is refused.
    """
    from devices.check import check_line

    logs.setup(log_level, "text")
    if (config is None) == (api is None):
        err.print("give exactly one of --config FILE or --api URL")
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
        reports = _run(check_line(cfg, wait, connect_timeout))
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
            status = f"[{'green' if f.ok else 'red'}]{f.status}[/]"
            t.add_row(escape(f.item), status, escape(f.detail))
        found = len(r.findings) - len(problems)
        t.add_row("(all checked)", f"{found} of {len(r.findings)} found", "")
        out.print(t)
    bad = [r.device for r in reports if not r.ok]
    out.print(f"problems: {', '.join(bad)}" if bad else "all devices ok", highlight=False)


asrs_app = typer.Typer(no_args_is_help=True, help="AS/RS sizing.")
app.add_typer(asrs_app, name="asrs")


@asrs_app.command("estimate")
def asrs_estimate(
    length: Annotated[float | None, typer.Option(help="Rack length along the aisle (m).")] = None,
    height: Annotated[float | None, typer.Option(help="Rack height (m).")] = None,
    vx: Annotated[
        float | None, typer.Option("--vx", help="Crane speed along the aisle (m/s).")
    ] = None,
    vy: Annotated[float | None, typer.Option("--vy", help="Hoist speed (m/s).")] = None,
    ax: Annotated[
        float | None, typer.Option("--ax", help="Acceleration along the aisle (m/s², 0: none).")
    ] = None,
    ay: Annotated[
        float | None, typer.Option("--ay", help="Hoist acceleration (m/s², 0: none).")
    ] = None,
    pd: Annotated[
        float | None, typer.Option("--pd", help="Seconds per pick-up or deposit (default 5).")
    ] = None,
    bays: Annotated[int | None, typer.Option(help="Bays (default: length / 0.7 m).")] = None,
    levels: Annotated[int | None, typer.Option(help="Levels (default: height / 0.5 m).")] = None,
    samples: Annotated[int, typer.Option(min=2, help="Monte Carlo cycles of each kind.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Seed of the Monte Carlo run.")] = 7,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Rack and crane from this line file (crane options given replace its values).",
        ),
    ] = None,
    aisle: Annotated[
        str | None, typer.Option(help="Aisle of the line file (default: the first).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Expected single- and dual-command cycle times and cycles per hour of a crane under random
    storage: the Bozer-White model, the exact mean over the rack's locations, and a Monte Carlo
    run of the crane kinematics the simulator uses. Exit 2 on bad input."""
    from controller import asrs_estimate as est
    from routing.asrs_model import rack_of_size

    def fail(message: str) -> NoReturn:
        err.print(f"error: {message}", markup=False, highlight=False)
        raise typer.Exit(2)

    try:
        if config is not None:
            given = [
                n
                for n, v in (
                    ("--length", length),
                    ("--height", height),
                    ("--bays", bays),
                    ("--levels", levels),
                )
                if v is not None
            ]
            if given:
                fail(
                    f"{', '.join(given)} cannot be used with --config "
                    "(the rack comes from the line file)"
                )
            try:
                line = load(config)
            except ConfigError as exc:
                err.print(exc.render(), markup=False, highlight=False)
                raise typer.Exit(2) from None
            rack, crane = est.from_line(line, aisle)
            k = est.kinematics(
                crane.speed_x if vx is None else vx,
                crane.speed_y if vy is None else vy,
                crane.accel_x if ax is None else ax,
                crane.accel_y if ay is None else ay,
                crane.pd_time if pd is None else pd,
            )
        else:
            if aisle is not None:
                fail("--aisle needs --config")
            missing = [
                n
                for n, v in (("--length", length), ("--height", height), ("--vx", vx), ("--vy", vy))
                if v is None
            ]
            if missing:
                fail(
                    f"give {', '.join(missing)} "
                    "(or --config FILE to take the rack and crane from a line file)"
                )
            assert length is not None and height is not None and vx is not None and vy is not None
            k = est.kinematics(vx, vy, ax or 0.0, ay or 0.0, 5.0 if pd is None else pd)
            rack = rack_of_size(length, height, bays, levels)
        result = est.estimate(rack, k, samples, seed)
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps(est.as_dict(result), indent=2))
    else:
        out.print(est.table(result))


from controller.cli_report import report as kpi_report  # noqa: E402

app.command("report")(kpi_report)


cli_ops.register(app)  # line, conveyor, robot, audit


def main() -> None:
    app()


if __name__ == "__main__":
    main()
