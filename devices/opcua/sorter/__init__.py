"""The OPC UA conveyor and sorter adapter: :class:`~devices.opcua.sorter.adapter.OpcUaSorter`."""
