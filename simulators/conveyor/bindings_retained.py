"""The conveyor simulator's retentive state: kept in a state file, taken over after a restart.

With a state file the bindings write the unit's retentive state there
(:mod:`simulators.conveyor.retained`) right after every change of what the loop holds or of the
PackML state, and every :data:`RETAIN_WALL_SECONDS` while items move; a write that fails is
logged once and tried again. :meth:`BindingsRetained.restore` takes the state over after a
restart, before clients connect.
"""

from __future__ import annotations

import asyncio
import logging
import time

from simulators.conveyor.bindings_state import _BOOLEAN, BindingsState, StopReason
from simulators.conveyor.packml import PackMLState
from simulators.conveyor.retained import RetainedState, write_state

log = logging.getLogger("simulators.conveyor.bindings")  # the bindings log under one name

RETAIN_WALL_SECONDS = 0.5  # the longest the state file lags the belt while items move


class BindingsRetained(BindingsState):
    """Keeps and restores the retentive state (mixed into
    :class:`~simulators.conveyor.bindings.ConveyorBindings`)."""

    async def restore(self, state: RetainedState) -> None:
        """Take over retained state after a restart (before clients connect); raises
        ``ValueError`` when it does not fit the line.

        The unit comes back in its retained PackML state, except that a unit that was in
        ``Execute`` comes back ``Held`` with ``WatchdogTripped`` set: a restart never starts
        the belts by itself, and to the controller it looks like any loss of communication
        (read the state, reconcile, ``Unhold``).
        """
        if state.conveyor != self._conveyor_id:
            raise ValueError(
                f"the state file is of conveyor {state.conveyor!r}, not {self._conveyor_id!r}"
            )
        async with self._lock:
            now = self._clock.now()
            facts = self.model.restore(state.loop, now)
            retained = state.packml_state
            tripped = retained is PackMLState.EXECUTE
            self.machine.state = PackMLState.HELD if tripped else retained
            facts += self.model.set_producing(self.machine.producing, now)
            await self._publish(facts)
            await self._write_state(StopReason.RESTARTED if tripped else None)
            self.watchdog_tripped = tripped
            await self._write(self._node().watchdog_tripped, tripped, _BOOLEAN)
            await self._retain()
        log.info(
            "retained state loaded",
            extra={
                "conveyor": self._conveyor_id,
                "state": self.machine.state.value,
                "retained_state": retained.value,
                "items": len(state.loop.items) + len(state.loop.waiting),
                "journal_last": state.loop.journal_last,
            },
        )

    async def _retain(self) -> None:
        """Write the retained state if it changed, or if items moved for a while (under the
        lock, so the file follows the changes in order)."""
        if self._state_file is None:
            return
        key = (self.model.revision, self.machine.state)
        wall = time.monotonic()
        moved = self.model.moving and self.model.on_belt > 0
        if key == self._saved and not (moved and wall - self._saved_at >= RETAIN_WALL_SECONDS):
            return
        snapshot = RetainedState.model_construct(
            format=1,
            conveyor=self._conveyor_id,
            packml_state=self.machine.state,
            loop=self.model.retained(),
        )
        try:
            await asyncio.to_thread(write_state, self._state_file, snapshot)
        except OSError as exc:
            if not self._save_failing:
                log.error(
                    "retained state not written",
                    extra={
                        "conveyor": self._conveyor_id,
                        "file": str(self._state_file),
                        "error": str(exc),
                    },
                )
            self._save_failing = True
            self._saved_at = wall  # try again at the next change or in a while
            return
        if self._save_failing:
            log.info("retained state written again", extra={"conveyor": self._conveyor_id})
        self._save_failing = False
        self._saved, self._saved_at = key, wall
