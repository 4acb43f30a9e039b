"""``linectl sim``: each device simulator on its own (robots, conveyors, AS/RS) and the WMS
load generator, for a line whose controller runs elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any

import typer

from controller.app.cli.common import (
    API_ENV,
    ApiOpt,
    ConfigOpt,
    LogFormat,
    LogLevel,
    TimeScaleOpt,
    TokenOpt,
    api_url,
    cannot_listen,
    check_broker,
    err,
    first_error,
    load_line,
    out,
    run_until_stopped,
    setup_logs,
)

DEFAULT_TOLERANCE_XY = 0.1  # metres, as simulators.robots.profile (not imported at start-up)
sim_app = typer.Typer(no_args_is_help=True, help="Device simulators, each on its own.")


def register(app: typer.Typer) -> None:
    """Add ``linectl sim`` to ``app``."""
    app.add_typer(sim_app, name="sim")


def _serve(
    sim: AbstractAsyncContextManager[Any],
    banner: Callable[[], str],
    retained_error: type[Exception],
    endpoint_setting: str,
    beside: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve an OPC UA simulator until stopped, printing ``banner()`` once it listens, with
    ``beside()`` (a hand-over to another simulator) running while it serves. A retained state
    file it cannot take over ends it with the reason and exit code 1; an endpoint whose port is
    in use with exit code 69 (``endpoint_setting`` names where the endpoint comes from)."""
    from kernel.ports import CannotListen

    async def serve() -> str | None:
        try:
            async with sim:
                out.print(banner(), highlight=False)
                if beside is None:
                    await asyncio.Event().wait()
                else:
                    await beside()
        except retained_error as exc:
            return str(exc)
        return None

    try:
        problem = run_until_stopped(serve())
    except* CannotListen as group:
        in_use = f"stop what listens there or give another --endpoint ({endpoint_setting})"
        cannot_listen(first_error(group), in_use, f"check --endpoint ({endpoint_setting})")
    if problem is not None:
        err.print(problem, markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _hand_over(cfg: Any, conveyor: str | None) -> Any:
    """The hand-over of totes to the conveyor simulator at ``conveyor`` (``--conveyor``), or
    None without one; a bad endpoint ends the command with exit code 1."""
    from simulators.induction import RemoteInduction

    if conveyor is None:
        return None
    try:
        return RemoteInduction(cfg, conveyor)
    except ValueError as exc:
        err.print(f"--conveyor: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None


def _sim_setup(
    config: Path | None, time_scale: float | None, log_level: str, log_format: str
) -> tuple[Any, Any]:
    from kernel.clock import ScaledClock

    setup_logs(log_level, log_format)
    cfg = load_line(config)
    return cfg, ScaledClock(time_scale if time_scale is not None else cfg.clock.time_scale)


@sim_app.command("robots")
def sim_robots(
    config: ConfigOpt = None,
    broker: Annotated[str | None, typer.Option(help="MQTT broker (default: mqtt.url).")] = None,
    time_scale: TimeScaleOpt = None,
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
    logins: Annotated[
        Path | None,
        typer.Option(
            help="Robot logins file (YAML): each robot's own user and password on the broker, "
            "see docs/security.md. Default: every robot logs in as mqtt.username."
        ),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            help="strict: reject what real vehicles reject (first node off the vehicle's "
            "position, unknown action parameters, reused action ids, ...); lenient: the older, "
            "kinder behaviour."
        ),
    ] = "strict",
    stop_on_cancel: Annotated[
        str,
        typer.Option(
            help="next_node: drive on to the next node after cancelOrder; immediately: stop "
            "on the edge, between nodes."
        ),
    ] = "next_node",
    node_tolerance: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Metres the vehicle may stand from a node sent without allowedDeviationXY.",
        ),
    ] = DEFAULT_TOLERANCE_XY,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """The robot fleet as VDA 5050 peers on an MQTT broker."""
    from devices.vda5050.broker import BrokerSettingsError
    from simulators.robots import RobotFleetSimulator
    from simulators.robots.logins import LoginsError, load_logins
    from simulators.robots.profile import VehicleProfile
    from simulators.robots.script import FaultScriptError, load_script

    try:
        vehicles = VehicleProfile.named(
            profile, stop_on_cancel=stop_on_cancel, tolerance_xy=node_tolerance
        )
    except ValueError as exc:
        err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    check_broker(cfg, broker)
    robot_logins = None
    if logins is not None:
        try:
            robot_logins = load_logins(logins, [r.serial for r in cfg.robots.fleet])
        except LoginsError as exc:
            err.print(f"--logins: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    script = []
    if faults is not None:
        try:
            script = load_script(faults, [r.serial for r in cfg.robots.fleet])
        except FaultScriptError as exc:
            err.print(str(exc), markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    hand_over = _hand_over(cfg, conveyor)
    try:
        fleet = RobotFleetSimulator(
            cfg,
            clock,
            broker or cfg.mqtt.url,
            on_drop=hand_over.on_drop if hand_over is not None else None,
            logins=robot_logins,
            profile=vehicles,
        )
    except BrokerSettingsError as exc:
        err.print(f"--logins: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    if hand_over is None:
        run_until_stopped(fleet.run(script))
        return

    async def with_conveyor() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(hand_over.run(), name="sim.robots.handover")
            tg.create_task(fleet.run(script), name="sim.robots")

    run_until_stopped(with_conveyor())


@sim_app.command("conveyors")
def sim_conveyors(
    config: ConfigOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="Default: conveyor.opcua.endpoint.")] = None,
    time_scale: TimeScaleOpt = None,
    cert: Annotated[
        Path | None, typer.Option(help="Server certificate (security Basic256Sha256).")
    ] = None,
    key: Annotated[Path | None, typer.Option(help="Server private key.")] = None,
    trusted_clients: Annotated[
        Path | None,
        typer.Option(
            help="Folder of the client certificates admitted (security Basic256Sha256); "
            "default: conveyor.opcua.certificate of the line file only."
        ),
    ] = None,
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
    """The conveyor loop and sorter as an OPC UA server.

    Exit 69 when the endpoint's port is in use."""
    from simulators.conveyor import ConveyorSimulator
    from simulators.conveyor.retained import RetainedStateError

    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    try:
        sim = ConveyorSimulator(
            cfg,
            clock,
            endpoint,
            certificate=cert,
            private_key=key,
            state_file=state,
            trusted_clients=trusted_clients,
        )
    except (ValueError, OSError) as exc:
        err.print(
            f"{exc} (--cert, --key, --trusted-clients; see linectl opcua certs)", markup=False
        )
        raise typer.Exit(1) from None

    security = cfg.conveyor.opcua.security
    _serve(
        sim,
        lambda: f"conveyor simulator on {sim.endpoint} (security {security})",
        RetainedStateError,
        "conveyor.opcua.endpoint",
    )


@sim_app.command("asrs")
def sim_asrs(
    config: ConfigOpt = None,
    endpoint: Annotated[str | None, typer.Option(help="Default: asrs.opcua.endpoint.")] = None,
    time_scale: TimeScaleOpt = None,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Retained state file (rack contents, journal): written while running, "
            "taken over on start when present."
        ),
    ] = None,
    conveyor: Annotated[
        str | None,
        typer.Option(
            help="OPC UA endpoint of a conveyor simulator: totes the cranes set down at an "
            "aisle's P&D output go onto its belt at the aisle's pd_zone (Simulation.Induct)."
        ),
    ] = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
) -> None:
    """The AS/RS cranes as an OPC UA server.

    Exit 69 when the endpoint's port is in use."""
    from simulators.asrs import AsrsSimulator
    from simulators.asrs.retained import RetainedStateError

    cfg, clock = _sim_setup(config, time_scale, log_level, log_format)
    hand_over = _hand_over(cfg, conveyor)
    try:
        sim = AsrsSimulator(
            cfg,
            clock,
            endpoint,
            state_file=state,
            on_delivered=hand_over.on_delivered if hand_over is not None else None,
        )
    except ValueError as exc:
        err.print(str(exc), markup=False, highlight=False)
        raise typer.Exit(1) from None

    _serve(
        sim,
        lambda: f"AS/RS simulator on {sim.endpoint}",
        RetainedStateError,
        "asrs.opcua.endpoint",
        beside=hand_over.run if hand_over is not None else None,
    )


@sim_app.command("wms")
def sim_wms(
    api: ApiOpt = None,
    token: TokenOpt = None,
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
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=f"Line file: its SKUs, and its API unless --api or {API_ENV} names it "
            "(default: the reference line's SKUs).",
        ),
    ] = None,
    url: Annotated[str | None, typer.Option("--url", hidden=True)] = None,  # now --api
) -> None:
    """Send a batch of B2C/B2B orders to a running controller (a token with orders:write).

    Exit 1 when some were rejected, 2 when the controller cannot be reached."""
    import re
    from datetime import UTC, datetime

    import httpx

    from controller.app.cli.ops import USAGE, unreachable
    from simulators.wms import WmsGenerator

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,40}", prefix):
        err.print("--prefix: letters, digits, '.', '_' and '-', starting with a letter or digit")
        raise typer.Exit(2)
    if url is not None:
        err.print("--url is now --api; --url will be removed", highlight=False)
        api = url
    cfg = load_line(config)
    base = api_url(api, cfg=cfg if config is not None else None)
    gen = WmsGenerator(cfg, base, token, seed=seed, b2b_share=b2b_share, prefix=prefix)
    try:
        res = run_until_stopped(gen.send(orders, datetime.now(UTC), start=start))
    except* (httpx.InvalidURL, httpx.UnsupportedProtocol) as group:
        err.print(f"--api {base}: {first_error(group)}", markup=False, highlight=False)
        raise typer.Exit(USAGE) from None
    except* httpx.HTTPError as group:  # orders sent before are kept: sending again is safe
        err.print(unreachable(base, first_error(group)), markup=False, highlight=False)
        raise typer.Exit(USAGE) from None
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
