"""Holding the line's controller lease: waiting as the standby, renewing as the active one.

:class:`LeaseKeeper` is what ``linectl run`` uses on a line with a standby (``failover`` in the
line file). :meth:`~LeaseKeeper.take` tries the lease every ``renew_seconds`` until it is free or
expired, and returns the term won. :meth:`~LeaseKeeper.keep` then renews it every
``renew_seconds``; each renewal that succeeds moves the fence's deadline (the monotonic time the
renewal was asked plus the lease's length, less a margin), so the fence closes before the lease
expires in the database even if no renewal gets through. When a renewal finds the lease taken,
or the deadline passes, the fence is revoked, nothing more is sent to a device, and
:class:`LeaseLost` ends the controller.

The keeper logs each change once: the standby waiting on an active controller (with its name and
term), the lease taken (a failover when another held it), renewals failing and working again, the
lease lost.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any, NoReturn

from controller.store.base import StoreUnavailable
from controller.store.lease import Grant, LeaseHolder, LineLease
from kernel.config.model import FailoverConfig
from kernel.fence import Fence
from kernel.metrics import Metrics

log = logging.getLogger(__name__)

# the fence closes this share of the lease before the database lets it expire
MARGIN = 0.1


class LeaseLost(Exception):
    """This controller no longer holds the line's lease: it must stop commanding the line."""


class Role(StrEnum):
    ACTIVE = "active"
    STANDBY = "standby"


def default_instance() -> str:
    """A controller's name when the line file gives none: host name and process id."""
    host = "".join(c if c.isalnum() or c in "._-" else "-" for c in socket.gethostname())
    return f"{host or 'host'}-{os.getpid()}"[:64]


class LeaseKeeper:
    """The lease of one controller of a line with a standby; see the module's docstring."""

    def __init__(
        self,
        lease: LineLease,
        fence: Fence,
        config: FailoverConfig,
        metrics: Metrics,
        *,
        instance: str,
        api_url: str,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lease = lease
        self._fence = fence
        self._config = config
        self._metrics = metrics
        self._now = now
        self.instance = instance
        self.api_url = api_url
        self.role = Role.STANDBY
        self.term = 0
        self.holder: LeaseHolder | None = None  # who holds the lease, as last read
        metrics.controller_active.set(0)

    # --- the standby -----------------------------------------------------------------------

    async def take(self) -> int:
        """Wait as the standby until the lease is won; its term."""
        waiting_on: tuple[int, str] | None = None
        failing = False
        while True:
            asked = self._now()
            try:
                grant = await self._lease.acquire()
                if grant is None:
                    self.holder = await self._lease.holder()
            except StoreUnavailable as exc:
                if not failing:
                    log.warning("the line's lease cannot be read", extra={"error": str(exc)})
                failing = True
                await asyncio.sleep(self._config.renew_seconds)
                continue
            if failing:
                log.info("the line's lease can be read again")
                failing = False
            if grant is not None:
                self._won(grant, asked)
                return grant.term
            holder = self.holder
            assert holder is not None
            self._metrics.controller_term.set(holder.term)
            if waiting_on != (holder.term, holder.instance):
                waiting_on = (holder.term, holder.instance)
                log.info(
                    "standby: another controller is active",
                    extra={
                        "active": holder.instance,
                        "term": holder.term,
                        "api_url": holder.api_url,
                        "instance": self.instance,
                    },
                )
            await asyncio.sleep(self._config.renew_seconds)

    def _won(self, grant: Grant, asked: float) -> None:
        self.term = grant.term
        self.role = Role.ACTIVE
        self._fence.grant(grant.term, self._deadline(asked, grant))
        self._metrics.controller_active.set(1)
        self._metrics.controller_term.set(grant.term)
        takeover = bool(grant.previous) and grant.previous != self.instance
        if takeover:
            self._metrics.controller_takeovers.inc()
        what = "took over the line from another controller" if takeover else "took the lease"
        log.warning(
            what,
            extra={
                "term": grant.term,
                "previous": grant.previous or None,
                "instance": self.instance,
            },
        )

    def _deadline(self, asked: float, grant: Grant) -> float:
        return asked + grant.seconds * (1 - MARGIN)

    # --- the active controller -------------------------------------------------------------

    async def keep(self) -> None:
        """Renew the lease until it is lost; then revoke the fence and raise LeaseLost."""
        failing: str | None = None
        while True:
            await asyncio.sleep(self._config.renew_seconds)
            asked = self._now()
            try:
                async with asyncio.timeout(self._config.renew_seconds):
                    grant = await self._lease.renew(self.term)
            except (StoreUnavailable, TimeoutError) as exc:
                reason = str(exc) or "no answer in time"
                if failing is None:
                    log.warning(
                        "the line's lease cannot be renewed; commands stop when it runs out",
                        extra={"term": self.term, "error": reason},
                    )
                failing = reason
                if self._fence.refusal() is not None:
                    self._lose(f"not renewed in time ({reason})")
                continue
            if grant is None:
                self._lose("another controller holds it now")
            if failing is not None:
                log.info("the line's lease is renewed again", extra={"term": self.term})
                failing = None
            self._fence.grant(self.term, self._deadline(asked, grant))

    def _lose(self, reason: str) -> NoReturn:
        self._fence.revoke(reason)
        self.role = Role.STANDBY
        self._metrics.controller_active.set(0)
        log.error(
            "lost the line's lease: this controller stops commanding the line",
            extra={"term": self.term, "reason": reason, "instance": self.instance},
        )
        raise LeaseLost(f"lease of term {self.term} lost: {reason}")

    async def release(self) -> None:
        """A clean stop of the active controller: the lease expires now, the standby takes
        over at its next try."""
        if self.role is not Role.ACTIVE:
            return
        self._fence.revoke("stopped")
        self.role = Role.STANDBY
        self._metrics.controller_active.set(0)
        try:
            async with asyncio.timeout(self._config.renew_seconds):
                await self._lease.release(self.term)
        except (StoreUnavailable, TimeoutError) as exc:
            log.warning(
                "the lease could not be released: the standby takes over when it expires",
                extra={"term": self.term, "error": str(exc) or "no answer in time"},
            )
        else:
            log.info("released the line's lease", extra={"term": self.term})

    # --- views -----------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        """This controller's role for ``/readyz`` and ``GET /v1/line``."""
        active: dict[str, Any] | None
        if self.role is Role.ACTIVE:
            active = {
                "instance": self.instance,
                "term": self.term,
                "api_url": self.api_url,
                "live": True,
            }
        else:
            active = self.holder.document() if self.holder is not None else None
        return {
            "role": self.role.value,
            "failover": True,
            "instance": self.instance,
            "term": self.term if self.role is Role.ACTIVE else (active or {}).get("term"),
            "active": active,
        }
