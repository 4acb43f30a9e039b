"""Webhook delivery from the durable outbox: signed, retried with backoff, at-least-once.

:class:`WebhookDispatcher` runs two loops in its own task group:

* **fan-out** reads history events after its durable cursor and lets the store insert one outbox
  row per receiver (each configured target that wants the event type, plus the order's
  ``callback_url``) and advance the cursor in the same transaction. It waits on the store's
  in-process event signal, never polls.
* **delivery** picks due rows, at most ``webhooks.concurrency`` in flight per receiver URL, and
  sends each in its own named task: a POST of the event document (the same JSON as
  ``GET /v1/events``), signed per Standard Webhooks (:mod:`controller.webhooks.signing`) with the
  stable id ``evt_<seq>``. A 2xx marks the row delivered; anything else schedules the next attempt
  with exponential backoff and jitter, and after ``max_attempts`` the row is dead. A receiver
  the policy refuses (:mod:`controller.webhooks.policy`: its scheme, host or the addresses its
  name resolves to, checked before each attempt and again on connecting) is dead at once, with
  the reason recorded.

A receiver that is down costs only its own lane (a timeout per attempt) and never delays another
receiver or the controller. Backoff runs on the line clock; HTTP timeouts are wall seconds.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import httpx

from controller.store.base import OrderStore, StoreError
from controller.store.outbox import (
    Delivery,
    DeliveryState,
    FanOutTarget,
    OutboxStore,
    ReceiverKind,
)
from controller.webhooks.policy import ReceiverPolicy
from controller.webhooks.signing import signed_headers
from controller.webhooks.transport import GuardedTransport, ReceiverRefused
from kernel.clock import Clock
from kernel.config.model import LineConfig, WebhooksConfig
from kernel.metrics import Metrics, WebhookOutcome

log = logging.getLogger(__name__)

FAN_OUT_PAGE = 500  # events per fan-out transaction
MAX_IN_FLIGHT = 256  # attempts in flight over all receivers
IDLE_WAIT = 15.0  # longest wait between looks at the store when nothing signals
STORE_RETRY = 1.0  # line seconds between tries while the store fails


def event_id(seq: int) -> str:
    """The stable ``webhook-id`` of the event with this ``seq`` (the same on every retry)."""
    return f"evt_{seq}"


def display_url(url: str) -> str:
    """``url`` without query or credentials, for logs (callback URLs may carry tokens)."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))


class WebhookDispatcher:
    """Fans events out to the outbox and delivers due rows (one instance per store)."""

    def __init__(
        self,
        config: WebhooksConfig,
        store: OutboxStore,
        clock: Clock,
        metrics: Metrics,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        observer: Callable[[Delivery, DeliveryState], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self._transport = transport
        self._rng = rng or random.Random()
        self._observer = observer  # told the outcome of every attempt (state after it)
        self._targets = [
            FanOutTarget(str(t.url), frozenset(t.event_types) if t.event_types else None)
            for t in config.targets
        ]
        self._secrets = {str(t.url): t.secret.get_secret_value() for t in config.targets}
        self._callback_secret = (
            config.callback_secret.get_secret_value() if config.callback_secret else None
        )
        self._policy = ReceiverPolicy.of(config)
        self._wake = asyncio.Event()
        self._in_flight: set[int] = set()
        self._busy: Counter[str] = Counter()
        self._failing: set[str] = set()  # receivers whose last attempt failed
        self._store_down = False

    # --- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        """Fan out and deliver until cancelled. Rows in flight when cancelled stay pending."""
        if self._callback_secret is None:
            log.info("deliveries to callback_url are not signed: webhooks.callback_secret unset")
        timeout = httpx.Timeout(self.config.timeout)
        limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=32)
        async with (
            httpx.AsyncClient(
                timeout=timeout,
                transport=self._transport or GuardedTransport(self._policy, limits),
                follow_redirects=False,
            ) as client,
            asyncio.TaskGroup() as tg,
        ):
            tg.create_task(self._fan_out_loop(), name="webhooks.fan-out")
            tg.create_task(self._deliver_loop(client, tg), name="webhooks.deliver")

    # --- fan-out --------------------------------------------------------------------------

    async def _fan_out_loop(self) -> None:
        position = 0  # events up to here are fanned out (the store keeps the durable cursor)
        while True:
            try:
                result = await self.store.fan_out(
                    self._targets,
                    callbacks=True,
                    at=self.clock.utcnow(),
                    limit=FAN_OUT_PAGE,
                    after=position,
                )
            except StoreError as exc:
                await self._store_failed(exc)
                continue
            self._store_recovered()
            if result.deliveries:
                self._wake.set()
            position = result.cursor
            if result.events < FAN_OUT_PAGE:
                await self.store.wait_for_event(position, IDLE_WAIT)

    # --- delivery -------------------------------------------------------------------------

    async def _deliver_loop(self, client: httpx.AsyncClient, tg: asyncio.TaskGroup) -> None:
        per_receiver = self.config.concurrency
        while True:
            self._wake.clear()
            now = self.clock.utcnow()
            try:
                due = await self.store.due_deliveries(
                    now, per_receiver=per_receiver, limit=MAX_IN_FLIGHT
                )
                for d in due:
                    if d.id in self._in_flight or self._busy[d.url] >= per_receiver:
                        continue
                    if len(self._in_flight) >= MAX_IN_FLIGHT:
                        break
                    self._in_flight.add(d.id)
                    self._busy[d.url] += 1
                    tg.create_task(self._attempt(client, d), name=f"webhooks.attempt[{d.id}]")
                self.metrics.webhook_outbox_pending.set(await self.store.pending_deliveries())
                next_due = await self.store.next_delivery_due(now)
            except StoreError as exc:
                await self._store_failed(exc)
                continue
            self._store_recovered()
            delay = IDLE_WAIT
            if next_due is not None:
                delay = min(delay, max(0.0, (next_due - now).total_seconds()))
            await self._sleep_or_wake(delay)

    async def _sleep_or_wake(self, seconds: float) -> None:
        """Wait ``seconds`` of line time, or less if new work is signalled."""
        if self._wake.is_set():
            return
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)

    async def _attempt(self, client: httpx.AsyncClient, d: Delivery) -> None:
        try:
            await self._send(client, d)
        finally:
            self._in_flight.discard(d.id)
            self._busy[d.url] -= 1
            if self._busy[d.url] <= 0:
                del self._busy[d.url]
            self._wake.set()

    def _secret(self, d: Delivery) -> tuple[bool, str | None]:
        """Whether ``d``'s receiver is known, and the secret to sign with."""
        if d.kind is ReceiverKind.CALLBACK:
            return True, self._callback_secret
        secret = self._secrets.get(d.url)
        return secret is not None, secret

    async def _send(self, client: httpx.AsyncClient, d: Delivery) -> None:
        known, secret = self._secret(d)
        if not known:
            await self._finish(d, ok=False, error="the receiver is no longer configured", last=True)
            return
        refused = await self._policy.refuse_delivery(d.url)
        if refused is not None:  # a policy tightened since, or a name that now points inside
            await self._finish(d, ok=False, error=f"refused: {refused}", last=True)
            return
        body = json.dumps(d.event.document(), separators=(",", ":")).encode()
        # The receiver checks the timestamp against its own clock: this is wall time on purpose.
        headers = signed_headers(secret, event_id(d.event.seq), int(time.time()), body)
        headers["content-type"] = "application/json"
        error: str | None = None
        try:
            async with client.stream("POST", d.url, content=body, headers=headers) as response:
                if not 200 <= response.status_code < 300:
                    error = f"HTTP {response.status_code}"
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            if isinstance(exc.__cause__, ReceiverRefused):  # its name moved to a refused address
                await self._finish(d, ok=False, error=str(exc.__cause__), last=True)
                return
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await self._finish(d, ok=error is None, error=error)

    async def _finish(
        self, d: Delivery, *, ok: bool, error: str | None, last: bool = False
    ) -> None:
        state = await self._record(d, ok=ok, error=error, last=last)
        if state is not None and self._observer is not None:
            self._observer(d, state)

    async def _record(
        self, d: Delivery, *, ok: bool, error: str | None, last: bool
    ) -> DeliveryState | None:
        """Record the attempt's outcome; the row's new state (None if the store failed)."""
        attempts = d.attempts + 1
        now = self.clock.utcnow()
        where = display_url(d.url)
        try:
            if ok:
                await self.store.finish_attempt(
                    d.id, DeliveryState.DELIVERED, attempts=attempts, at=now
                )
                self.metrics.webhook_deliveries.labels(WebhookOutcome.DELIVERED).inc()
                if d.url in self._failing:
                    self._failing.discard(d.url)
                    log.info("webhook receiver recovered", extra={"receiver": where})
                return DeliveryState.DELIVERED
            if d.url not in self._failing:
                self._failing.add(d.url)
                log.warning(
                    "webhook receiver failing; retrying with backoff",
                    extra={"receiver": where, "error": error},
                )
            if last or attempts >= self.config.max_attempts:
                await self.store.finish_attempt(
                    d.id, DeliveryState.DEAD, attempts=attempts, at=now, error=error
                )
                self.metrics.webhook_deliveries.labels(WebhookOutcome.DEAD).inc()
                log.warning(
                    "webhook delivery dead",
                    extra={
                        "receiver": where,
                        "event_id": event_id(d.event.seq),
                        "attempts": attempts,
                        "error": error,
                    },
                )
                return DeliveryState.DEAD
            retry_at = now + timedelta(seconds=self.backoff(attempts))
            await self.store.finish_attempt(
                d.id,
                DeliveryState.PENDING,
                attempts=attempts,
                at=now,
                next_attempt_at=retry_at,
                error=error,
            )
            self.metrics.webhook_deliveries.labels(WebhookOutcome.RETRY).inc()
            return DeliveryState.PENDING
        except StoreError as exc:
            # the row stays pending and is sent again; the loops report the store outage
            log.debug("could not record a webhook attempt", extra={"error": str(exc)})
            return None

    def backoff(self, attempts: int) -> float:
        """Line seconds before the next attempt after ``attempts`` failed ones (with jitter)."""
        ceiling = min(
            self.config.max_backoff, self.config.initial_backoff * 2.0 ** min(attempts - 1, 30)
        )
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    # --- store outages --------------------------------------------------------------------

    async def _store_failed(self, exc: StoreError) -> None:
        if not self._store_down:
            self._store_down = True
            log.error("webhook outbox unavailable", extra={"error": str(exc)})
        await self.clock.sleep(STORE_RETRY)

    def _store_recovered(self) -> None:
        if self._store_down:
            self._store_down = False
            log.info("webhook outbox available again")


def webhook_dispatcher(
    config: LineConfig, store: OrderStore, clock: Clock, metrics: Metrics
) -> WebhookDispatcher:
    """The dispatcher for ``config.webhooks`` on ``store`` (which must keep an outbox)."""
    if not isinstance(store, OutboxStore):
        raise TypeError(f"the order store {type(store).__name__} keeps no webhook outbox")
    return WebhookDispatcher(config.webhooks, store, clock, metrics)
