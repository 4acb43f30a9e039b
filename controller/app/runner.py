"""``linectl run``: the controller service with its HTTP API, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from api import create_app
from controller.app.http import ApiServer
from controller.service.service import LineService
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig

log = logging.getLogger(__name__)


ReturnHook = Callable[[str, str], Awaitable[None]]


@contextlib.asynccontextmanager
async def _devices(
    cfg: LineConfig, clock: ScaledClock, simulate: bool, broker: str | None
) -> AsyncIterator[tuple[LineConfig, ReturnHook | None]]:
    if not simulate:
        yield cfg, None
        return
    from simulators.line import simulated_line

    async with simulated_line(cfg, clock, broker) as line:
        log.info(
            "simulators started",
            extra={"mqtt": line.mqtt_url, "opcua": line.config.conveyor.opcua.endpoint},
        )
        yield line.config, line.return_tote


async def run_service(
    cfg: LineConfig,
    *,
    simulate: bool = False,
    host: str | None = None,
    port: int | None = None,
    broker: str | None = None,
) -> None:
    """Serve ``cfg``; with ``simulate`` on simulators of its devices, their robots on
    ``broker`` (``mqtt://host:port``) or, when None, on an embedded broker."""
    clock = ScaledClock(cfg.clock.time_scale)
    async with (
        _devices(cfg, clock, simulate, broker) as (line_cfg, on_return),
        LineService(line_cfg, clock) as service,
    ):
        api = ApiServer(create_app(service), host or cfg.api.host, port or cfg.api.port)
        started = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.run(), name="controller")
            tg.create_task(api.serve(started), name="api")
            await started.wait()
            log.info("API listening", extra={"url": api.url})
            if simulate:
                _start_station_operators(tg, line_cfg, clock, api.url, on_return)


def _start_station_operators(
    tg: asyncio.TaskGroup,
    cfg: LineConfig,
    clock: ScaledClock,
    url: str,
    on_return: ReturnHook | None,
) -> None:
    """Simulated operators at the value-added stations verify B2B totes over the API."""
    from simulators.station import StationSimulator

    needed = {"line:operate"} if cfg.api.reads_open else {"line:operate", "orders:read"}
    token = next((t.token for t in cfg.api.tokens if needed <= set(t.scopes)), None)
    if token is None:
        log.warning(
            "no API token with the scopes the simulated stations need: they do not run and "
            "B2B orders wait at their station for verification",
            extra={"scopes": sorted(needed)},
        )
        return
    stations = StationSimulator(cfg, clock, url, token, on_return=on_return)
    tg.create_task(stations.run(), name="sim.stations")
