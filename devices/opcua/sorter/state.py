"""What the OPC UA sorter adapter's parts share, between and across its sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

from asyncua import Client

from devices.base import ChuteSnapshot, ZoneSnapshot
from devices.errors import DeviceUnavailable
from devices.opcua.browse import RemoteModel
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

EVENT_QUEUE_SIZE = 10_000  # per monitored item on the server
CLIENT_QUEUE_SIZE = 100_000  # notifications buffered in the client


@dataclass(frozen=True)
class LiveSession:
    """The session in use: its client and the model resolved on it."""

    client: Client
    model: RemoteModel


@dataclass
class HandledDiverts:
    """The divert journal numbers handled: every number up to ``through``, and ``above`` it.

    Divert events need not arrive in journal order: each divert is a monitored item of its
    own, and a server sends the events of one publish item by item, so a divert numbered 289
    can arrive after 290 from another divert. A number is handled once, whatever the order.
    ``through`` is None before the first contact (the journal's position is not known yet).
    """

    through: int | None = None
    above: set[int] = field(default_factory=set)

    @property
    def highest(self) -> int | None:
        """The highest number handled."""
        return max(self.above, default=self.through)

    def seen(self, sequence: int) -> bool:
        return sequence in self.above or (self.through is not None and sequence <= self.through)

    def mark(self, sequence: int) -> None:
        if self.seen(sequence):
            return
        self.above.add(sequence)
        if self.through is not None:
            self._advance()

    def handled_through(self, sequence: int) -> None:
        """Every number up to ``sequence`` is handled (read back from the journal, or the
        journal's position at first contact)."""
        self.through = sequence if self.through is None else max(sequence, self.through)
        self.above = {s for s in self.above if s > self.through}
        self._advance()

    def restart(self, sequence: int) -> None:
        """The journal started again (the PLC lost its retained data) and is at ``sequence``."""
        self.through, self.above = sequence, set()

    def _advance(self) -> None:
        assert self.through is not None
        while self.through + 1 in self.above:
            self.through += 1
            self.above.remove(self.through)


@dataclass
class SorterState:
    """The conveyor as the adapter last saw it, and the session it sees it through.

    ``live`` is None while not connected. ``packml_state`` is the unit's PackML state name,
    ``chutes`` and ``jammed`` (zones reporting a jam; each jam counted once) what was last read
    of them. ``diverts`` are the divert journal numbers handled, so diverts are read back
    after a reconnect and never reported twice. ``zones`` holds each zone's belt and
    photo-eye as last read, for the line view only.
    """

    config: LineConfig
    clock: Clock
    metrics: Metrics
    endpoint: str
    live: LiveSession | None = None
    packml_state: str = "Unknown"
    chutes: dict[str, ChuteSnapshot] = field(init=False)
    jammed: set[str] = field(default_factory=set)
    zones: dict[str, ZoneSnapshot] = field(init=False)
    diverts: HandledDiverts = field(default_factory=HandledDiverts)
    # every command to the conveyor passes it (a controller with a standby: only under a lease)
    fence: Fence = field(default_factory=Fence.unfenced)

    def __post_init__(self) -> None:
        self.chutes = {
            c.id: ChuteSnapshot(c.id, full=False, enabled=False, count=0)
            for c in self.config.conveyor.sorter.chutes
        }
        self.zones = {z.id: ZoneSnapshot(z.id) for z in self.config.conveyor.zones}

    @property
    def conveyor_id(self) -> str:
        return self.config.conveyor.id

    @property
    def connected(self) -> bool:
        return self.live is not None

    def require_live(self) -> LiveSession:
        """The session to command the conveyor through; DeviceUnavailable while there is none
        or while the fence refuses commands (a lost lease)."""
        refusal = self.fence.refusal()
        if refusal is not None:
            raise DeviceUnavailable(f"conveyor {self.conveyor_id}: command not sent: {refusal}")
        live = self.live
        if live is None:
            raise DeviceUnavailable(f"conveyor {self.conveyor_id} is not connected")
        return live
