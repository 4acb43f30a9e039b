"""The device error tree. Adapters translate vendor exceptions into these, once, with ``from``."""

from __future__ import annotations

from enum import StrEnum


class DeviceError(Exception):
    """Something went wrong talking to a device."""


class DeviceUnavailable(DeviceError):
    """The device (or its broker/server) cannot be reached right now."""


class CommandRejected(DeviceError):
    """The device answered and refused the command (bad status, invalid state)."""


class InvalidMessage(DeviceError):
    """A message from a device failed validation at the boundary."""


class Refusal(StrEnum):
    """Why master control refused to send a robot a new order."""

    RATE_LIMITED = "rate_limited"  # robots.max_orders_per_minute reached
    BACKING_OFF = "backing_off"  # the robot rejected an order a moment ago
    NEEDS_OPERATOR = "needs_operator"  # off its node, or rejections or failed cancels in a row
    NOT_AT_START = "not_at_start"  # the order does not start where the robot stands


class OrderRefused(CommandRejected):
    """Master control did not send the order; ``reason`` says why, ``detail`` in words."""

    def __init__(self, serial: str, reason: Refusal, detail: str) -> None:
        super().__init__(f"robot {serial}: {reason.value}: {detail}")
        self.serial = serial
        self.reason = reason
        self.detail = detail
