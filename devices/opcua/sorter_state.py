"""The state the OPC UA sorter adapter keeps between and across its sessions.

:class:`SorterState` holds the configuration, the live session (client and resolved model, or
none), what was last read of the conveyor (PackML state, chute levels, jammed zones), the
highest divert journal number handled, the outage log and the metrics it updates. The adapter
is put together from it: :mod:`devices.opcua.sorter_events` takes the subscription's events and
values, :mod:`devices.opcua.sorter_recovery` recovers after a reconnect or a watchdog hold, and
:class:`~devices.opcua.sorter.OpcUaSorter` runs the sessions and the commands.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from asyncua import Client, ua

from devices.base import ChuteSnapshot
from devices.errors import DeviceUnavailable
from devices.opcua.backoff import Backoff
from devices.opcua.browse import RemoteModel
from devices.opcua.packml import Level
from devices.outage import Outage
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger("devices.opcua.sorter")  # the sorter adapter logs under one name

EVENT_QUEUE_SIZE = 10_000  # per monitored item on the server
CLIENT_QUEUE_SIZE = 100_000  # notifications buffered in the client


class _SessionLost(Exception):
    """The current session ended (transport loss, server shutdown)."""


@dataclass(frozen=True)
class _Live:
    client: Client
    model: RemoteModel


class SorterState:
    """What the sorter adapter keeps (see the module docstring); the base of
    :class:`~devices.opcua.sorter.OpcUaSorter`, whose constructor this is."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        endpoint: str | None = None,
        *,
        publishing_interval_ms: float = 5.0,
        request_timeout: float = 4.0,
        watchdog_seconds: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._conveyor_id = config.conveyor.id
        self._endpoint = endpoint or config.conveyor.opcua.endpoint
        self._publishing_ms = publishing_interval_ms
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._backoff = backoff or Backoff()
        self._connected = metrics.opcua_connected.labels(conveyor=self._conveyor_id)
        self._live: _Live | None = None
        self._state = "Unknown"
        self._state_ids: dict[Level, ua.NodeId | None] = {}  # CurrentState/Id of each machine
        self._chutes = {
            c.id: ChuteSnapshot(c.id, full=False, enabled=False, count=0)
            for c in config.conveyor.sorter.chutes
        }
        self._outage = Outage(
            clock, log, "conveyor", {"conveyor": self._conveyor_id, "endpoint": self._endpoint}
        )
        self._announced: bool | None = None  # last availability put on the queue
        self._invalid_logged = False
        self._trip_seen = False  # the current watchdog hold is already counted
        self._jammed: set[str] = set()  # zones reporting a jam; each jam counted once
        self._last_sequence: int | None = None  # highest divert journal number handled
        self._up = False  # the current session came up (its loss is a comms-loss entry)
        self._no_tracking_logged = False
        self._divert_of_chute = {d.chute: d.id for d in config.conveyor.sorter.diverts}
        self._connected.set(0)

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def connected(self) -> bool:
        return self._live is not None

    def _require_live(self) -> _Live:
        live = self._live
        if live is None:
            raise DeviceUnavailable(f"conveyor {self._conveyor_id} is not connected")
        return live
