"""Conveyor loop, scanner and sorter simulator speaking OPC UA (see docs/opcua-model.md)."""

from simulators.conveyor.simulator import ConveyorSimulator

__all__ = ["ConveyorSimulator"]
