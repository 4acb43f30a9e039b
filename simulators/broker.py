"""An embedded MQTT broker (amqtt) for the one-process demo and for tests without Mosquitto."""

from __future__ import annotations

import logging
import random
import socket
from pathlib import Path
from types import TracebackType

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from kernel.ports import listen_error, quiet_bind_failures

log = logging.getLogger(__name__)


# ports handed out by free_port in this process, never handed out twice
_HANDED_OUT: set[int] = set()
_FALLBACK_RANGE = (32768, 60999)


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections (Linux; a common default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return _FALLBACK_RANGE


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now and stays free while another process starts.

    The port is taken below the kernel's ephemeral range, so that no outgoing connection of any
    process is given it before its listener binds, and never twice from one process.
    """
    low, _ = _ephemeral_range()
    if low > 10_000:
        rng = random.Random()
        for _ in range(200):
            port = rng.randrange(10_000, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port = int(s.getsockname()[1])
    _HANDED_OUT.add(port)
    return port


class EmbeddedBroker:
    """``async with EmbeddedBroker() as b: b.url`` -- an MQTT 3.1.1 broker on a loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        quiet_bind_failures("amqtt.broker")  # a port in use is raised as PortInUse instead
        broker = Broker(config)
        try:
            await broker.start()
        except BrokerError as exc:  # PortInUse when another process listens there
            error = listen_error(exc, "the embedded MQTT broker", self.host, self.port)
            if error is None:
                raise
            raise error from None
        self._broker = broker
        log.info("embedded MQTT broker listening", extra={"url": self.url})

    async def stop(self) -> None:
        if self._broker is not None:
            broker, self._broker = self._broker, None
            await broker.shutdown()

    async def __aenter__(self) -> EmbeddedBroker:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
