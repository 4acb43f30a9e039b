"""The conveyor simulator's retentive state: kept in a state file, taken over after a restart.

With a state file the unit's retentive state (:mod:`simulators.conveyor.retained`) is written
right after every change of what the loop holds or of the PackML state, and every
:data:`RETAIN_WALL_SECONDS` while items move; a write that fails is logged once and tried
again. :meth:`ConveyorRetention.restore` takes the state over after a restart, before clients
connect.
"""

from __future__ import annotations

import logging
from pathlib import Path

from simulators.conveyor.packml import PackMLState
from simulators.conveyor.publisher import ConveyorPublisher
from simulators.conveyor.retained import RetainedState
from simulators.conveyor.unit import ConveyorUnit, StopReason
from simulators.opcua_server.retained import RetainedFile

log = logging.getLogger("simulators.conveyor.bindings")  # the bindings log under one name

RETAIN_WALL_SECONDS = 0.5  # the longest the state file lags the belt while items move


class ConveyorRetention:
    """Keeps the unit's state file and restores the unit from it."""

    def __init__(
        self, unit: ConveyorUnit, publisher: ConveyorPublisher, state_file: Path | None
    ) -> None:
        self._unit = unit
        self._publisher = publisher
        self._file = RetainedFile(
            state_file, log, {"conveyor": unit.conveyor_id}, every=RETAIN_WALL_SECONDS
        )

    async def retain(self) -> None:
        """Write the retained state if it changed, or if items moved for a while (under the
        lock, so the file follows the changes in order)."""
        unit = self._unit
        key = (unit.model.revision, unit.machine.state)
        if not self._file.due(key, moving=unit.model.moving and unit.model.on_belt > 0):
            return
        snapshot = RetainedState.model_construct(
            format=1,
            conveyor=unit.conveyor_id,
            packml_state=unit.machine.state,
            loop=unit.model.retained(),
        )
        await self._file.write(key, snapshot)

    async def restore(self, state: RetainedState) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line.

        The unit comes back in its retained PackML state, except that a unit that was in
        ``Execute`` comes back ``Held`` with ``WatchdogTripped`` set: a restart never starts
        the belts by itself, and to the controller it looks like any loss of communication
        (read the state, reconcile, ``Unhold``).
        """
        unit = self._unit
        if state.conveyor != unit.conveyor_id:
            raise ValueError(
                f"the state file is of conveyor {state.conveyor!r}, not {unit.conveyor_id!r}"
            )
        async with unit.lock:
            now = unit.clock.now()
            facts = unit.model.restore(state.loop, now)
            retained = state.packml_state
            tripped = retained is PackMLState.EXECUTE
            unit.machine.state = PackMLState.HELD if tripped else retained
            facts += unit.model.set_producing(unit.machine.producing, now)
            await self._publisher.publish(facts)
            await self._publisher.write_state(StopReason.RESTARTED if tripped else None)
            unit.watchdog.tripped = tripped
            await self._publisher.write_tripped(tripped)
            await self.retain()
        log.info(
            "retained state loaded",
            extra={
                "conveyor": unit.conveyor_id,
                "state": unit.machine.state.value,
                "retained_state": retained.value,
                "items": len(state.loop.items) + len(state.loop.waiting),
                "journal_last": state.loop.journal_last,
            },
        )
