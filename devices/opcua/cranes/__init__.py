"""The OPC UA AS/RS crane adapter (see :class:`~devices.opcua.cranes.adapter.OpcUaCranes`)."""
