"""Outages of a device link, logged once when they start and once when they end.

Every adapter (OPC UA conveyor and cranes, the MQTT broker link, each robot's VDA 5050
connection) and the robot simulator's own broker link report through :class:`Outage`, so an
outage is always two log lines with the same shape, never one line per retry:

- ``"<device> outage started"`` (warning), with ``outage="started"`` and ``reason``;
- ``"<device> outage ended"`` (warning), with ``outage="ended"``, ``outage_seconds`` (line
  seconds it lasted) and ``failed_attempts`` (reconnects that failed meanwhile).

The first time a link comes up ``"<device> connected"`` is logged at info. The device's own
fields (``conveyor``, ``endpoint``, ``serial``, ...) go on every line.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from kernel.clock import Clock


class Outage:
    """One device link's outages."""

    def __init__(
        self, clock: Clock, log: logging.Logger, device: str, extra: Mapping[str, object]
    ) -> None:
        self._clock = clock
        self._log = log
        self._device = device
        self._extra = dict(extra)
        self._since: float | None = None
        self._seen_up = False
        self.failures = 0  # failed attempts in the current outage

    @property
    def down_since(self) -> float | None:
        """Line time the current outage started; None while the link is up."""
        return self._since

    def up(self) -> None:
        """The link is up (again)."""
        if self._since is not None:
            self._log.warning(
                f"{self._device} outage ended",
                extra={
                    **self._extra,
                    "outage": "ended",
                    "outage_seconds": round(self._clock.now() - self._since, 3),
                    "failed_attempts": self.failures,
                },
            )
        elif not self._seen_up:
            self._log.info(f"{self._device} connected", extra=self._extra)
        self._seen_up = True
        self._since = None
        self.failures = 0

    def down(self, reason: str) -> None:
        """An attempt failed or the link dropped: the first call starts the outage."""
        self.failures += 1
        if self._since is None:
            self._since = self._clock.now()
            self._log.warning(
                f"{self._device} outage started",
                extra={**self._extra, "outage": "started", "reason": reason},
            )
