"""``linectl run``: the controller service with its HTTP API, until SIGTERM/SIGINT.

A line with a standby (``failover`` in the line file) runs :func:`run_with_standby`: the API
serves from the start, as the standby's until this controller wins the line's lease, then the
line service starts and commands the line until the lease is lost (:class:`LeaseLost`: the
process ends, to be started again by its supervisor as a standby) or the process is stopped
(the lease is released, and the standby takes over at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from api import ApiBackend, create_app
from controller.app.http import ApiListener, ApiServer
from controller.service.lease_keeper import LeaseKeeper, default_instance
from controller.service.service import LineService
from controller.service.standby import RoleSwitch, StandbyBackend
from controller.store import LineStore, open_lease, open_store
from kernel import heap
from kernel.clock import ScaledClock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

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
    if cfg.failover.enabled:
        await run_with_standby(cfg, host=host, port=port)
        return
    clock = ScaledClock(cfg.clock.time_scale)
    async with (
        # first: a port in use (another controller of the line?) stops it before it starts
        ApiListener(host or cfg.api.host, port or cfg.api.port) as listener,
        _devices(cfg, clock, simulate, broker) as (line_cfg, on_return),
        LineService(line_cfg, clock) as service,
    ):
        api = ApiServer(create_app(service), listener.host, listener.port, listener=listener)
        started = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(service.run(), name="controller")
            tg.create_task(api.serve(started), name="api")
            await started.wait()
            log.info("API listening", extra={"url": api.url})
            heap.tune_for_service()
            if simulate:
                _start_station_operators(tg, line_cfg, clock, api.url, on_return)


async def run_with_standby(cfg: LineConfig, *, host: str | None, port: int | None) -> None:
    """One of a line's two controllers: standby until it wins the lease, then active."""
    clock = ScaledClock(cfg.clock.time_scale)
    metrics = Metrics(line=cfg)  # the standby's /metrics too has the line's series
    api_host, api_port = host or cfg.api.host, port or cfg.api.port
    instance = cfg.failover.instance or default_instance()
    api_url = str(cfg.failover.api_url or f"http://{api_host}:{api_port}").rstrip("/")
    fence = Fence.leased()
    store = open_store(cfg.store, cfg.line.id)
    await store.open()
    lease = open_lease(cfg.store, cfg.line.id, cfg.failover, instance=instance, api_url=api_url)
    keeper = LeaseKeeper(lease, fence, cfg.failover, metrics, instance=instance, api_url=api_url)
    try:
        switch = RoleSwitch(StandbyBackend(cfg, clock, store, metrics, keeper))
        api = ApiServer(create_app(cast(ApiBackend, switch)), api_host, api_port)
        started = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(api.serve(started), name="api")
            await started.wait()
            log.info(
                "API listening; waiting for the line's lease",
                extra={"url": api.url, "instance": instance, "line": cfg.line.id},
            )
            term = await keeper.take()
            await store.fence_writes(term)
            service = LineService(
                cfg,
                clock,
                store=store,
                metrics=metrics,
                keeper=keeper,
                fence=fence,
                owns_store=False,
            )
            async with service:
                switch.promote(service)
                async with asyncio.TaskGroup() as active:
                    active.create_task(service.run(), name="controller")
                    active.create_task(keeper.keep(), name="lease")
    finally:
        try:
            await keeper.release()
        finally:
            await lease.close()
            await _close_within(store, cfg.failover.lease_seconds)


async def _close_within(store: LineStore, seconds: float) -> None:
    """Close the store, but do not wait longer than ``seconds`` for a call that hangs on a
    database that stopped answering: a controller that lost the line must stop now."""
    try:
        async with asyncio.timeout(seconds):
            await store.close()
    except TimeoutError:
        log.warning(
            "the order store did not close in time; stopping without it",
            extra={"seconds": seconds},
        )


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
