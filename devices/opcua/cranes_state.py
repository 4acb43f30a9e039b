"""The state the OPC UA cranes adapter keeps between and across its sessions.

:class:`CranesState` holds the configuration, the live session (the resolved cranes, or none),
each aisle's view of its crane (state, position, command, queue, fault, P&D input), the highest
journal number handled per aisle, the P&D input last reported per aisle, the outage log and the
metrics it updates. The adapter is put together from it: :mod:`devices.opcua.cranes_events`
takes the cranes' events and values and reads back their journals, and
:class:`~devices.opcua.cranes.OpcUaCranes` runs the sessions and the commands.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from asyncua import Client

from devices.opcua.backoff import Backoff
from devices.opcua.crane_model import RemoteCranes
from devices.outage import Outage
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.metrics import Metrics

log = logging.getLogger("devices.opcua.cranes")  # the cranes adapter logs under one name

EVENT_QUEUE_SIZE = 10_000
CLIENT_QUEUE_SIZE = 100_000
STATES = ("Idle", "Moving", "PickingUp", "Depositing", "Fault", "Unknown")


class _SessionLost(Exception):
    """The current session ended (transport loss, server shutdown)."""


@dataclass
class _CraneView:
    state: str = "Unknown"
    x: float | None = None
    y: float | None = None
    current_command: str = ""
    queue_length: int = 0
    fault: str = ""
    pd_input: tuple[str, ...] = ()


class CranesState:
    """What the cranes adapter keeps (see the module docstring); the base of
    :class:`~devices.opcua.cranes.OpcUaCranes`, whose constructor this is."""

    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        metrics: Metrics,
        endpoint: str | None = None,
        *,
        last_sequences: Mapping[str, int] | None = None,
        publishing_interval_ms: float = 20.0,
        request_timeout: float = 4.0,
        watchdog_seconds: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._endpoint = endpoint or config.asrs.opcua.endpoint
        self._publishing_ms = publishing_interval_ms
        self._request_timeout = request_timeout
        self._watchdog = watchdog_seconds
        self._backoff = backoff or Backoff()
        self._aisles = {a.id: a.crane.id for a in config.asrs.aisles}
        self._views = {aisle: _CraneView() for aisle in self._aisles}
        self._last: dict[str, int | None] = {aisle: None for aisle in self._aisles}
        for aisle, seq in (last_sequences or {}).items():
            if aisle in self._last:
                self._last[aisle] = seq
        self._live: RemoteCranes | None = None
        self._client: Client | None = None
        self._outage = Outage(clock, log, "AS/RS", {"endpoint": self._endpoint})
        self._announced: bool | None = None
        self._invalid_logged: set[str] = set()  # what was dropped already (warned once)
        # the last TotesAtPdInput list put on the queue per aisle (None: none yet, or unknown)
        self._pd_sent: dict[str, tuple[str, ...] | None] = {aisle: None for aisle in self._aisles}
        self._connected = metrics.asrs_opcua_connected
        self._connected.set(0)
        for aisle in self._aisles:
            self._set_state(aisle, "Unknown")

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def connected(self) -> bool:
        return self._live is not None

    def _set_state(self, aisle: str, state: str) -> None:
        gauge = self._metrics.asrs_crane_state
        for s in STATES:
            gauge.labels(aisle, s).set(1 if s == state else 0)
