"""An asyncua client's life around one session: connected without leaking a socket, watched for
a lost connection, and torn down whichever way the session ended."""

from __future__ import annotations

import asyncio
import logging

from asyncua import Client

from devices.opcua.translate import TRANSPORT_ERRORS
from devices.supervisor import SessionLost


async def connect_client(client: Client) -> None:
    """``client.connect()``, leaving no socket open however the attempt ends: asyncua closes
    it when the attempt fails, not when it is cancelled (a shutdown, or a timeout around it)."""
    try:
        await client.connect()
    except BaseException:
        client.disconnect_socket()
        raise


async def watch_connection(lost: asyncio.Event) -> None:
    """A session task that ends the session (:class:`SessionLost`) once ``lost`` is set (the
    client's ``connection_lost_callback`` sets it)."""
    await lost.wait()
    raise SessionLost("connection lost")


async def close_client(client: Client, lost: bool, within: float, log: logging.Logger) -> None:
    """Tear the client down; after a loss only the local side is left to close."""
    try:
        async with asyncio.timeout(within):
            if lost:
                await client.close_session()
            else:
                await client.disconnect()
    except TRANSPORT_ERRORS as exc:
        log.debug("OPC UA client teardown incomplete", extra={"why": repr(exc)})
    finally:
        client.disconnect_socket()
