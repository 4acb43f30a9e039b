"""The simulated conveyor's PackML state machine."""

from __future__ import annotations

import pytest
from asyncua import ua

from devices.opcua.nodesets import PACKML_NODESET
from devices.opcua.packml import STATE_NUMBERS, Level, RemotePackML
from simulators.conveyor.packml import (
    InvalidTransition,
    PackMLCommand,
    PackMLMachine,
    PackMLState,
    active_states,
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


@pytest.mark.parametrize(
    ("state", "level", "valid"),
    [
        (S.STOPPED, Level.MACHINE, True),
        (S.STOPPED, Level.EXECUTE, False),
        (S.COMPLETE, Level.EXECUTE, True),
        (S.COMPLETE, Level.MACHINE, False),
    ],
)
def test_reset_is_valid_only_on_the_machine_whose_state_it_leaves(
    state: PackMLState, level: Level, valid: bool
) -> None:
    machine = PackMLMachine(state)
    if valid:
        assert machine.apply(C.RESET, level) is S.IDLE
    else:
        with pytest.raises(InvalidTransition):
            machine.apply(C.RESET, level)
        assert machine.state is state


def test_active_states_nest_as_opc_30050_does() -> None:
    assert active_states(S.ABORTED) == {
        Level.BASE: "Aborted",
        Level.MACHINE: None,
        Level.EXECUTE: None,
    }
    assert active_states(S.STOPPED)[Level.MACHINE] == "Stopped"
    assert active_states(S.STOPPED)[Level.EXECUTE] is None
    held = active_states(S.HELD)
    assert (held[Level.BASE], held[Level.MACHINE], held[Level.EXECUTE]) == (
        "Cleared",
        "Running",
        "Held",
    )


def test_the_adapter_names_the_innermost_active_state() -> None:
    ids = {name: ua.NodeId(number, 3) for name, number in STATE_NUMBERS.items()}
    packml = RemotePackML(
        machines={}, state_ids={}, methods={}, states={v: k for k, v in ids.items()}
    )
    for state in PackMLState:
        active = active_states(state)
        values = {level: ids[name] if name else None for level, name in active.items()}
        assert packml.state_name(values) == state.value
    assert packml.state_name({Level.BASE: ua.NodeId(999, 3)}) == "Unknown"


def test_the_vendored_nodeset_ships_with_the_package() -> None:
    assert PACKML_NODESET.is_file()
    text = PACKML_NODESET.read_text(encoding="utf-8")
    assert "http://opcfoundation.org/UA/PackML/" in text and "OPC Foundation MIT License" in text
