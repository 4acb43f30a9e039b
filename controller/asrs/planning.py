"""Planning and sending the AS/RS crane commands.

Each aisle is planned whenever its crane has room (at most ``max_in_flight`` commands written and
not finished): :func:`routing.asrs.next_command` picks the cycle (a dual command when
``asrs.dual_command`` and both kinds wait), the command is written to the store
(:func:`controller.asrs.commands.build_command` gives its deterministic id), then sent under that
id. A command refused because the crane is in fault stays written and unsent until the fault
clears, then goes with the same id; no connection holds the commands until the cranes are back
(the same id again); any other refusal fails the command with the crane's reason, and its
requests are tried again only when another attempt can help (a store to an occupied or blocked
location gets a new location, at most :data:`~controller.asrs.commands.MAX_ATTEMPTS` times). While
an operator holds the line nothing is sent; the cycles under way finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from controller.asrs.commands import (
    FAULT_STATUS,
    MAX_ATTEMPTS,
    NO_DEADLINE,
    RELOCATE_STATUSES,
    build_command,
)
from controller.asrs.requests import TransportRequests
from controller.asrs.state import AsrsState
from controller.store.asrs import AsrsCommand, CommandKind, CommandState, RequestKind, RequestState
from devices.errors import CommandRejected, DeviceUnavailable
from routing import asrs as decide
from routing.asrs import RetrieveRequest, StoreRequest

log = logging.getLogger("controller.asrs.flows")  # the AS/RS flows log under one name


class CommandPlanner:
    """Plans and sends every aisle's crane commands."""

    def __init__(self, state: AsrsState, requests: TransportRequests) -> None:
        self.state = state
        self.requests = requests

    # --- planning -----------------------------------------------------------------------------

    async def run(self) -> None:
        """Plan and send commands until cancelled; wakes on every change and every
        ``poll_seconds`` of line time (delivery windows opening, faults clearing)."""
        state = self.state
        state.require_open()
        while True:
            state.wakeup.clear()
            await self.plan_once()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(state.clock.wall_seconds(state.poll_seconds)):
                    await state.wakeup.wait()

    def wake(self) -> None:
        """Plan now (the line was resumed)."""
        self.state.wakeup.set()

    async def plan_once(self) -> int:
        """One pass over the aisles: send what is written and unsent, then plan new cycles
        while a crane has room. Returns the number of commands the cranes accepted. While the
        line is held nothing is sent; the cycles under way finish."""
        state = self.state
        state.require_open()
        accepted = 0
        if state.held:
            state.gauges()
            return accepted
        async with state.lock:
            snapshot = state.cranes.snapshot()
            for aisle in state.aisles:
                if not state.available:
                    break
                crane = snapshot.get(aisle)
                if crane is not None and crane.fault:
                    continue
                if aisle in state.fault_hold:
                    state.fault_hold.discard(aisle)
                    log.info("AS/RS commands resume after the crane fault", extra={"aisle": aisle})
                for held in [c for c in state.commands.values() if c.aisle == aisle]:
                    if held.state is CommandState.PENDING and state.available:
                        accepted += await self._send(held)
                while state.available and aisle not in state.fault_hold:
                    in_flight = sum(1 for c in state.commands.values() if c.aisle == aisle)
                    if in_flight >= state.max_in_flight:
                        break
                    cmd = await self._plan(aisle)
                    if cmd is None:
                        break
                    accepted += await self._send(cmd)
        state.gauges()
        return accepted

    async def _plan(self, aisle: str) -> AsrsCommand | None:
        state = self.state
        stores = [
            r
            for r in state.requests.values()
            if r.aisle == aisle and r.kind is RequestKind.STORE and r.state is RequestState.WAITING
        ]
        storing = {r.tote for r in state.requests.values() if r.kind is RequestKind.STORE}
        retrieves = [
            r
            for r in state.requests.values()
            if r.aisle == aisle
            and r.kind is RequestKind.RETRIEVE
            and r.state is RequestState.WAITING
            and r.tote not in storing  # back at the P&D input after a power loss: store first
        ]
        if not stores and not retrieves:
            return None
        choice = decide.next_command(
            state.aisles[aisle],
            [StoreRequest(r.tote, r.location, r.id) for r in stores],
            [
                RetrieveRequest(
                    r.tote,
                    r.location,
                    r.order_id or "",
                    r.due or NO_DEADLINE,
                    r.deliver_from,
                    r.deliver_until,
                    r.priority,
                    r.id,
                )
                for r in retrieves
            ],
            state.clock.utcnow(),
            dual_command=state.dual_command,
            infeed_full=len(stores) >= state.infeed_capacity,
        )
        if choice is None:
            return None
        s = None if choice.store is None else state.requests[choice.store.seq]
        r = None if choice.retrieve is None else state.requests[choice.retrieve.seq]
        cmd, changed = build_command(
            choice.kind.value, aisle, s, r, state.namespace, state.clock.utcnow()
        )
        await state.save(changed, [cmd])  # written before it is sent
        return cmd

    async def _send(self, cmd: AsrsCommand) -> int:
        state = self.state
        try:
            if cmd.kind is CommandKind.DUAL:
                assert cmd.store_tote and cmd.store_location
                assert cmd.retrieve_tote and cmd.retrieve_location
                await state.cranes.dual(
                    cmd.aisle,
                    cmd.command_id,
                    cmd.store_tote,
                    cmd.store_location,
                    cmd.retrieve_tote,
                    cmd.retrieve_location,
                )
            elif cmd.kind is CommandKind.STORE:
                assert cmd.store_tote and cmd.store_location
                await state.cranes.store(
                    cmd.aisle, cmd.command_id, cmd.store_tote, cmd.store_location
                )
            else:
                assert cmd.retrieve_tote and cmd.retrieve_location
                await state.cranes.retrieve(
                    cmd.aisle, cmd.command_id, cmd.retrieve_tote, cmd.retrieve_location
                )
        except DeviceUnavailable as exc:
            if state.available:
                log.warning(
                    "AS/RS commands held: cranes not reachable",
                    extra={"command": cmd.command_id, "why": str(exc)},
                )
            state.available = False
            return 0
        except CommandRejected as exc:
            await self._rejected(cmd, str(exc))
            return 0
        current = state.commands.get(cmd.command_id)
        if current is not None and current.state is CommandState.PENDING:
            await state.save(commands=[state.touch(current, state=CommandState.SENT)])
        state.metrics.asrs_commands.labels(cmd.kind.value, "sent").inc()
        log.info(
            "AS/RS command sent",
            extra={"command": cmd.command_id, "aisle": cmd.aisle, "kind": cmd.kind.value},
        )
        return 1

    async def _rejected(self, cmd: AsrsCommand, why: str) -> None:
        state = self.state
        if FAULT_STATUS in why:
            if cmd.aisle not in state.fault_hold:
                log.warning(
                    "AS/RS commands held: crane in fault",
                    extra={"aisle": cmd.aisle, "command": cmd.command_id},
                )
            state.fault_hold.add(cmd.aisle)
            return  # stays pending: the same id once the fault is cleared
        state.metrics.asrs_commands.labels(cmd.kind.value, "rejected").inc()
        log.warning(
            "AS/RS command refused",
            extra={"command": cmd.command_id, "aisle": cmd.aisle, "why": why},
        )
        dual = cmd.kind is CommandKind.DUAL
        changed = []
        for rid in (cmd.store_request, cmd.retrieve_request):
            if rid is None:
                continue
            req = state.requests[rid]
            relocate = req.kind is RequestKind.STORE and (
                dual or any(code in why for code in RELOCATE_STATUSES)
            )
            if req.attempts < MAX_ATTEMPTS and (dual or relocate):
                changed.append(await self.requests.retry(req, why, relocate=relocate))
            else:
                changed.append(state.touch(req, state=RequestState.FAILED, reason=why))
        failed = state.touch(
            cmd,
            state=CommandState.FAILED,
            reason=f"refused: {why}",
            store_result="failed" if cmd.store_request is not None else "",
            retrieve_result="failed" if cmd.retrieve_request is not None else "",
        )
        await state.save(changed, [failed])
        await self.requests.announce_failures(changed)
