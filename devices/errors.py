"""The device error tree. Adapters translate vendor exceptions into these, once, with ``from``."""

from __future__ import annotations


class DeviceError(Exception):
    """Something went wrong talking to a device."""


class DeviceUnavailable(DeviceError):
    """The device (or its broker/server) cannot be reached right now."""


class CommandRejected(DeviceError):
    """The device answered and refused the command (bad status, invalid state)."""


class InvalidMessage(DeviceError):
    """A message from a device failed validation at the boundary."""
