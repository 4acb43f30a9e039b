"""What the OPC UA cranes adapter's parts share, between and across its sessions."""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.opcua.cranes.model import RemoteCranes
from kernel.clock import Clock
from kernel.config.model import LineConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

EVENT_QUEUE_SIZE = 10_000
CLIENT_QUEUE_SIZE = 100_000
STATES = ("Idle", "Moving", "PickingUp", "Depositing", "Fault", "Unknown")


@dataclass
class CraneView:
    """One crane as last read."""

    state: str = "Unknown"
    x: float | None = None
    y: float | None = None
    current_command: str = ""
    queue_length: int = 0
    fault: str = ""
    pd_input: tuple[str, ...] = ()


@dataclass
class CranesState:
    """The cranes as the adapter last saw them, and the session it sees them through.

    ``live`` (the cranes resolved on the server) is None while not connected. ``aisles`` maps
    each aisle to its crane's id, ``views`` each aisle to its crane as last read, ``last`` each
    aisle to the highest journal number handled (None: none yet), so completions are read back
    after a reconnect and never reported twice.
    """

    config: LineConfig
    clock: Clock
    metrics: Metrics
    endpoint: str
    live: RemoteCranes | None = None
    aisles: dict[str, str] = field(init=False)
    views: dict[str, CraneView] = field(init=False)
    last: dict[str, int | None] = field(init=False)
    # every command to a crane passes it (a controller with a standby: only under a lease)
    fence: Fence = field(default_factory=Fence.unfenced)

    def __post_init__(self) -> None:
        self.aisles = {a.id: a.crane.id for a in self.config.asrs.aisles}
        self.views = {aisle: CraneView() for aisle in self.aisles}
        self.last = {aisle: None for aisle in self.aisles}
        for aisle in self.aisles:
            self.set_state(aisle, "Unknown")

    @property
    def connected(self) -> bool:
        return self.live is not None

    def set_state(self, aisle: str, state: str) -> None:
        """Show the aisle's crane state in ``linectl_asrs_crane_state`` (one label set to 1)."""
        gauge = self.metrics.asrs_crane_state
        for s in STATES:
            gauge.labels(aisle, s).set(1 if s == state else 0)
