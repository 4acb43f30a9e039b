"""A TCP relay on loopback to the test PostgreSQL, for tests that take the database away from
one client: :meth:`Relay.cut` closes every relayed connection and refuses new ones (the database
gone), :meth:`Relay.blackhole` keeps the connections open and forwards nothing any more (a
network cut: the client learns nothing until its own timeouts fire), :meth:`Relay.mend` serves
again."""

from __future__ import annotations

import asyncio
import contextlib

import psycopg

from simulators.broker import free_port
from tests.store_backends import postgres_dsn


class Relay:
    def __init__(self) -> None:
        info = psycopg.conninfo.conninfo_to_dict(postgres_dsn())
        self._target = (str(info.get("host") or "127.0.0.1"), int(info.get("port") or 5432))
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    @property
    def dsn(self) -> str:
        return psycopg.conninfo.make_conninfo(postgres_dsn(), host="127.0.0.1", port=self.port)

    async def mend(self) -> None:
        self._flowing.set()
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        self._flowing.set()
        if self._server is None:
            return
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()
        self._server = None

    def blackhole(self) -> None:
        """Nothing passes in either direction from now on; connections stay open, new ones are
        accepted and hang."""
        self._flowing.clear()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            self._writers -= {writer, up_writer}
            writer.close()
            up_writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        writer.close()
