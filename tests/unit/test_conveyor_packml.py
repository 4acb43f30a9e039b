"""The simulated conveyor's PackML state machine."""

from __future__ import annotations

import pytest

from simulators.conveyor.packml import (
    InvalidTransition,
    PackMLCommand,
    PackMLMachine,
    PackMLState,
)

C, S = PackMLCommand, PackMLState


def test_starts_in_execute_and_produces() -> None:
    machine = PackMLMachine()
    assert machine.state is S.EXECUTE and machine.producing


@pytest.mark.parametrize(
    ("commands", "final"),
    [
        ([C.HOLD], S.HELD),
        ([C.HOLD, C.UNHOLD], S.EXECUTE),
        ([C.STOP], S.STOPPED),
        ([C.STOP, C.RESET, C.START], S.EXECUTE),
        ([C.SUSPEND, C.UNSUSPEND], S.EXECUTE),
        ([C.ABORT, C.CLEAR, C.RESET], S.IDLE),
        ([C.HOLD, C.STOP], S.STOPPED),
    ],
)
def test_valid_sequences(commands: list[PackMLCommand], final: PackMLState) -> None:
    machine = PackMLMachine()
    for command in commands:
        machine.apply(command)
    assert machine.state is final
    assert machine.producing is (final is S.EXECUTE)


@pytest.mark.parametrize(
    ("state", "command"),
    [(S.EXECUTE, C.UNHOLD), (S.EXECUTE, C.START), (S.EXECUTE, C.RESET), (S.ABORTED, C.STOP)],
)
def test_invalid_command_leaves_the_state_alone(state: PackMLState, command: PackMLCommand) -> None:
    machine = PackMLMachine(state)
    with pytest.raises(InvalidTransition):
        machine.apply(command)
    assert machine.state is state
    assert command not in machine.allowed()
