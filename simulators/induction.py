"""The physical hand-over to a conveyor simulator in another process.

``linectl sim robots --conveyor ENDPOINT`` runs the robot fleet in its own process; a tote a
robot drops at an induction node is handed to the conveyor simulator over OPC UA with the
``Simulation.Induct`` method (docs/opcua-model.md). ``linectl sim asrs --conveyor ENDPOINT``
does the same for a tote the cranes set down at an aisle's P&D output: it goes onto the belt at
the aisle's ``pd_zone``. The tote is physically there, so a hand-over that cannot reach the
conveyor is not lost: it waits, in arrival order, and is delivered once the conveyor answers
again. The robots and cranes never wait for it (:meth:`RemoteInduction.on_drop` and
:meth:`RemoteInduction.on_delivered` only queue), and an outage is logged once when it starts
and once when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from asyncua import Client, Node, ua

from devices.opcua.security import secure_client
from devices.supervisor import stop_if_cancelled
from kernel.config.model import LineConfig

log = logging.getLogger(__name__)

RETRY_WALL_SECONDS = 1.0
CALL_TIMEOUT_WALL_SECONDS = 4.0

# answers that refuse this hand-over for good (unknown zone, empty tote id): retrying is useless
_REFUSED = frozenset(
    {
        ua.StatusCodes.BadInvalidArgument,
        ua.StatusCodes.BadArgumentsMissing,
        ua.StatusCodes.BadTooManyArguments,
    }
)


class RemoteInduction:
    """Queues totes put down for the belt and delivers them with ``Induct`` calls.

    Pass :meth:`on_drop` as the fleet's ``on_drop`` (or :meth:`on_delivered` as the AS/RS
    simulator's ``on_delivered``) and run :meth:`run` in a task beside it.
    """

    def __init__(
        self, config: LineConfig, endpoint: str, retry_wall_seconds: float = RETRY_WALL_SECONDS
    ) -> None:
        if not endpoint.startswith("opc.tcp://"):
            raise ValueError(f"conveyor endpoint must start with opc.tcp://, got {endpoint!r}")
        self._config = config
        self.endpoint = endpoint
        self._retry = retry_wall_seconds
        self._zones = {i.node: i.zone for i in config.robots.inductions}
        self._pd_zones = {a.id: a.pd_zone for a in config.asrs.aisles}
        self._waiting: deque[tuple[str, str]] = deque()  # (tote id, zone id), drop order
        self._arrived = asyncio.Event()
        self.delivered = 0

    @property
    def waiting(self) -> int:
        """Totes dropped at an induction and not yet handed to the conveyor."""
        return len(self._waiting)

    async def on_drop(self, serial: str, node_id: str, load_id: str | None) -> None:
        """A robot finished a drop: a tote at an induction node is queued for the belt."""
        zone = self._zones.get(node_id)
        if not load_id or zone is None:
            return
        self._queue(load_id, zone)

    async def on_delivered(self, tote: str, aisle: str) -> None:
        """The cranes set ``tote`` down at ``aisle``'s P&D output: it is queued for the belt at
        the aisle's P&D zone."""
        zone = self._pd_zones.get(aisle)
        if not tote or zone is None:
            return
        self._queue(tote, zone)

    def _queue(self, tote: str, zone: str) -> None:
        self._waiting.append((tote, zone))
        self._arrived.set()

    async def run(self) -> None:
        """Deliver the queued hand-overs until cancelled, connecting again after an outage."""
        down_since: float | None = None
        while True:
            stop_if_cancelled()
            try:
                async with asyncio.timeout(CALL_TIMEOUT_WALL_SECONDS):
                    client, induct = await self._connect()
            except (ua.UaError, OSError, TimeoutError) as exc:
                down_since = self._down(down_since, exc)
                await asyncio.sleep(self._retry)
                continue
            try:
                if down_since is not None:
                    log.info(
                        "conveyor reachable again: handing over the waiting totes",
                        extra={
                            "endpoint": self.endpoint,
                            "waiting": len(self._waiting),
                            "down_wall_seconds": round(time.monotonic() - down_since, 1),
                        },
                    )
                    down_since = None
                await self._deliver(client, induct)
            except (ua.UaError, OSError, TimeoutError) as exc:
                down_since = self._down(down_since, exc)
            finally:
                await _disconnect(client)
            await asyncio.sleep(self._retry)

    def _down(self, down_since: float | None, exc: BaseException) -> float:
        if down_since is None:
            log.warning(
                "conveyor unreachable: totes wait where they were put down for it",
                extra={
                    "endpoint": self.endpoint,
                    "waiting": len(self._waiting),
                    "error": str(exc) or type(exc).__name__,
                },
            )
            return time.monotonic()
        return down_since

    async def _connect(self) -> tuple[Client, Node]:
        client = Client(url=self.endpoint, timeout=CALL_TIMEOUT_WALL_SECONDS)
        await secure_client(client, self._config.conveyor.opcua)
        await client.connect()
        try:
            idx = await client.get_namespace_index(self._config.conveyor.opcua.namespace)
            simulation = await client.nodes.objects.get_child([f"{idx}:Simulation"])
            induct = await simulation.get_child([f"{idx}:Induct"])
        except BaseException:
            await _disconnect(client)
            raise
        return client, induct

    async def _deliver(self, client: Client, induct: Node) -> None:
        simulation = await induct.get_parent()
        assert simulation is not None
        while True:
            while not self._waiting:
                self._arrived.clear()
                await self._arrived.wait()
            tote_id, zone_id = self._waiting[0]
            try:
                async with asyncio.timeout(CALL_TIMEOUT_WALL_SECONDS):
                    item_id = await simulation.call_method(
                        induct.nodeid,
                        ua.Variant(tote_id, ua.VariantType.String),
                        ua.Variant(zone_id, ua.VariantType.String),
                    )
            except ua.UaStatusCodeError as exc:
                if exc.code not in _REFUSED:
                    raise
                log.error(
                    "conveyor refused a tote at its induction",
                    extra={"tote_id": tote_id, "zone": zone_id, "error": str(exc)},
                )
                item_id = None
            self._waiting.popleft()
            if item_id is not None:
                self.delivered += 1
                log.debug(
                    "tote handed to the conveyor",
                    extra={"tote_id": tote_id, "zone": zone_id, "item": item_id},
                )


async def _disconnect(client: Client) -> None:
    """Close the session; a conveyor that is already gone makes this fail, which is fine."""
    try:
        async with asyncio.timeout(CALL_TIMEOUT_WALL_SECONDS):
            await client.disconnect()
    except (ua.UaError, OSError, TimeoutError):
        log.debug("conveyor session closed with an error (the conveyor is gone)")
