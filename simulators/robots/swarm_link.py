"""The MQTT side of a :class:`simulators.robots.swarm.Swarm`: one connection for all its
vehicles, subscribed to their ``order`` and ``instantActions`` topics, publishing what the
swarm says as soon as it says it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import orjson

from devices.vda5050.broker import BrokerSettings
from devices.vda5050.link import keep_cancellation
from devices.vda5050.topics import fleet_filter
from simulators.robots.swarm import JsonDict, Swarm

log = logging.getLogger(__name__)

KEEPALIVE = 15  # seconds
OFFLINE_TIMEOUT = 5.0  # wall seconds to say OFFLINE for every vehicle on a clean stop


class SwarmLink:
    """Carries a swarm's messages; :meth:`run` until cancelled."""

    def __init__(self, swarm: Swarm, broker: BrokerSettings) -> None:
        self.swarm = swarm
        self.broker = broker
        self._outbox: list[tuple[str, bytes, int, bool]] = []
        self._wake = asyncio.Event()
        self.online = asyncio.Event()  # every vehicle has said ONLINE
        swarm.send = self._send

    def _send(self, full_topic: str, message: JsonDict, qos: int, retain: bool) -> None:
        self._outbox.append((full_topic, orjson.dumps(message), qos, retain))

    async def _flush(self, client: Any) -> None:
        out, self._outbox = self._outbox, []
        for full_topic, payload, qos, retain in out:
            await keep_cancellation(client.publish(full_topic, payload, qos=qos, retain=retain))

    async def run(self) -> None:
        swarm = self.swarm
        async with self.broker.client(
            f"linectl-swarm-{uuid.uuid4().hex[:8]}", keepalive=KEEPALIVE
        ) as client:
            for subtopic in ("order", "instantActions"):
                await client.subscribe(fleet_filter(swarm.interface_name, subtopic), qos=1)
            swarm.hello()
            await self._flush(client)
            self.online.set()
            log.info(
                "swarm online",
                extra={"vehicles": len(swarm.vehicles), "interface_name": swarm.interface_name},
            )
            try:
                async with asyncio.TaskGroup() as tg:
                    tg.create_task(self._receive(client), name="swarm.receive")
                    await self._drive(client)
            except asyncio.CancelledError:
                swarm.goodbye()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(OFFLINE_TIMEOUT):
                        await self._flush(client)
                raise

    async def _receive(self, client: Any) -> None:
        async for message in client.messages:
            if isinstance(message.payload, bytes | bytearray):
                self.swarm.receive(message.topic.value, bytes(message.payload))
                self._wake.set()

    async def _drive(self, client: Any) -> None:
        clock = self.swarm.clock
        while True:
            self._wake.clear()
            due = self.swarm.step()
            await self._flush(client)
            wait = clock.wall_seconds(max(0.0, due - clock.now()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
