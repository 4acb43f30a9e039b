"""The AS/RS simulator: stacker cranes with their racks and P&D points over OPC UA."""

from simulators.asrs.simulator import AsrsSimulator

__all__ = ["AsrsSimulator"]
