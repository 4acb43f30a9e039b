"""The MQTT brokers the simulated line can start on loopback: a private Mosquitto (a child
process of its own, when the ``mosquitto`` binary is installed) or an embedded broker (amqtt, in
this process), and :func:`local_broker` to choose between them."""

from __future__ import annotations

import asyncio
import enum
import getpass
import logging
import os
import random
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from amqtt.broker import Broker
from amqtt.errors import BrokerError

from kernel.ports import CannotListen, PortInUse, listen_error, quiet_bind_failures

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


class _Broker:
    """A broker on a loopback port: ``async with`` starts it and stops it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class EmbeddedBroker(_Broker):
    """``async with EmbeddedBroker() as b: b.url`` -- an MQTT 3.1.1 broker on a loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port)
        self._broker: Broker | None = None

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


# where Debian and most distributions install the broker; a user's PATH often lacks sbin
_SBIN = ("/usr/sbin", "/usr/local/sbin")
MOSQUITTO_START = 10.0  # wall seconds for a private Mosquitto to listen
MOSQUITTO_STOP = 5.0  # wall seconds for it to end on SIGTERM before it is killed


def find_mosquitto() -> str | None:
    """The ``mosquitto`` binary on ``PATH`` (or in an sbin folder), None when not installed."""
    path = os.pathsep.join([os.environ.get("PATH", os.defpath), *_SBIN])
    return shutil.which("mosquitto", path=path)


class MosquittoError(RuntimeError):
    """A private Mosquitto could not be started."""


class PrivateMosquitto(_Broker):
    """``async with PrivateMosquitto(binary) as b: b.url`` -- a Mosquitto of its own as a child
    process: anonymous plain MQTT on a free loopback port, without persistence, configured from
    a temporary folder that is removed when it stops. It serves nobody but this process's
    clients, so simulated lines never share their robots' topics with another line."""

    def __init__(self, binary: str, host: str = "127.0.0.1", port: int | None = None) -> None:
        super().__init__(host, port)
        self.binary = binary
        self._proc: asyncio.subprocess.Process | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def _config(self, folder: Path) -> Path:
        conf = folder / "mosquitto.conf"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            # small messages go out at once: Nagle's algorithm would hold one back until the
            # last is acknowledged, and the line's round trips add up
            "set_tcp_nodelay true",
            f"log_dest file {folder / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type information",  # says when its listener is open
            # started as root, Mosquitto would switch to its own user, who cannot write here
            f"user {getpass.getuser()}",
        ]
        conf.write_text("\n".join(lines) + "\n")
        return conf

    def _log(self) -> str:
        """What the broker wrote to its log and to its standard error."""
        if self._dir is None:
            return ""
        folder = Path(self._dir.name)
        return "".join(
            path.read_text(errors="replace")
            for path in (folder / "stderr.txt", folder / "mosquitto.log")
            if path.exists()
        )

    async def start(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="linectl-mosquitto-")
        folder = Path(self._dir.name)
        conf = self._config(folder)
        try:
            with (folder / "stderr.txt").open("wb") as stderr:
                self._proc = await asyncio.create_subprocess_exec(
                    self.binary,
                    "-c",
                    str(conf),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=stderr,
                )
            await self._until_listening()
        except BaseException:
            await self.stop()
            raise
        log.info(
            "private Mosquitto listening",
            extra={"url": self.url, "pid": self._proc.pid, "binary": self.binary},
        )

    async def _until_listening(self) -> None:
        """Until the broker says it runs (its listener open) and answers on its port. A
        connection alone proves nothing: another process may hold the port."""
        assert self._proc is not None
        try:
            async with asyncio.timeout(MOSQUITTO_START):
                while " running" not in self._log():
                    if self._proc.returncode is not None:
                        raise self._start_error()
                    await asyncio.sleep(0.02)
                _, writer = await asyncio.open_connection(self.host, self.port)
                writer.close()
                await writer.wait_closed()
        except TimeoutError:
            raise MosquittoError(
                f"mosquitto did not listen on {self.host}:{self.port} within {MOSQUITTO_START:g} s"
            ) from None

    def _start_error(self) -> Exception:
        """Why the broker ended before it listened; the port is a :class:`CannotListen`."""
        text = self._log()
        if "Address already in use" in text:
            return PortInUse("a private Mosquitto", self.host, self.port)
        if "Cannot assign requested address" in text:
            reason = "cannot assign requested address"
            return CannotListen("a private Mosquitto", self.host, self.port, reason, None)
        last = text.strip().splitlines()[-1] if text.strip() else "no message"
        code = self._proc.returncode if self._proc is not None else None
        return MosquittoError(f"mosquitto exited with {code} before it listened: {last}")

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after :data:`MOSQUITTO_STOP` seconds; the folder goes."""
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                proc.terminate()
                try:
                    async with asyncio.timeout(MOSQUITTO_STOP):
                        await proc.wait()
                except TimeoutError:
                    log.warning("private Mosquitto did not stop: killed", extra={"pid": proc.pid})
                    proc.kill()
                    await proc.wait()
        finally:
            if self._dir is not None:
                folder, self._dir = self._dir, None
                folder.cleanup()


class LocalBroker(enum.StrEnum):
    """Which broker a simulated line starts for itself."""

    AUTO = "auto"  # a private Mosquitto when installed, else the embedded broker
    MOSQUITTO = "mosquitto"  # a private Mosquitto; an error when it is not installed
    EMBEDDED = "embedded"  # the embedded broker (amqtt) in this process


@dataclass(frozen=True)
class StartedBroker:
    """A broker :func:`local_broker` started: its URL and which kind it is."""

    url: str
    kind: LocalBroker  # MOSQUITTO or EMBEDDED, never AUTO


def local_broker_kind(kind: LocalBroker) -> LocalBroker:
    """The kind of broker :func:`local_broker` starts for ``kind`` on this machine."""
    if kind is LocalBroker.AUTO:
        return LocalBroker.MOSQUITTO if find_mosquitto() is not None else LocalBroker.EMBEDDED
    return kind


@asynccontextmanager
async def local_broker(kind: LocalBroker = LocalBroker.AUTO) -> AsyncIterator[StartedBroker]:
    """Start a broker on a free loopback port for as long as the context lasts: a private
    Mosquitto (a broker in its own process, which keeps up with far more messages than one
    embedded in the process that also runs the line) or the embedded broker, as ``kind`` says.
    ``AUTO`` takes Mosquitto when :func:`find_mosquitto` finds it, else the embedded broker."""
    binary = find_mosquitto() if kind is not LocalBroker.EMBEDDED else None
    if kind is LocalBroker.MOSQUITTO and binary is None:
        raise MosquittoError("mosquitto is not installed (no mosquitto binary on PATH)")
    if binary is not None:
        async with PrivateMosquitto(binary) as mosquitto:
            yield StartedBroker(mosquitto.url, LocalBroker.MOSQUITTO)
        return
    async with EmbeddedBroker() as embedded:
        yield StartedBroker(embedded.url, LocalBroker.EMBEDDED)
