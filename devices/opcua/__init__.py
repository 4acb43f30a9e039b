"""OPC UA adapters: the conveyor loop with scanner and sorter (see docs/opcua-model.md)."""

from devices.opcua.sorter.adapter import OpcUaSorter

__all__ = ["OpcUaSorter"]
