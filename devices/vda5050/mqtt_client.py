"""An aiomqtt client that leaves no socket behind, whichever way a connection ends.

aiomqtt (through 2.5.1) cleans up nothing when ``async with client`` does not get past
``__aenter__``: paho opens the TCP socket in an executor thread and aiomqtt registers it with the
event loop, and neither closes it when the attempt is cancelled (while paho connects, or while
CONNACK is awaited) or when CONNACK does not come within the timeout. Such a socket stays open
and read by the loop until the loop closes, then the garbage collector finds it
(``ResourceWarning: unclosed <socket.socket ...>``). A reconnect loop that is stopped, or times
out, mid-connect leaks one socket per attempt.

:class:`BrokerClient` closes the socket of an attempt that failed or was cancelled. A connect
still running in its thread when the attempt is given up closes what it opened as soon as it
returns (and one not started yet does not start). Leaving the ``async with`` also closes a
socket that aiomqtt's own teardown left open (a connection that broke with an exception from
paho's read, or a disconnect that was cancelled). A cancellation that Python 3.11's
``asyncio.wait_for`` swallows while CONNACK is awaited is raised again, also when the CONNACK
refuses the connection (see
:func:`devices.vda5050.link.keep_cancellation` for the same fault around other broker calls).

Over TLS, paho wraps its socket and runs the handshake itself; when the handshake fails (a
broker certificate that does not verify, a refused client certificate) it raises without
closing the TLS socket, which is then no one's. The client's TLS context makes sockets that
close themselves when their handshake fails.

Reading is made cheaper for a client that takes in many small messages (master control: every
robot's state several times a second). paho reads a packet with several socket calls (its type,
each byte of its length, its body) and aiomqtt reads one packet each time the socket is
readable, then wakes the reader of ``client.messages`` through a task of its own per message.
Here the socket is read in large chunks that paho's reads are served from, and every complete
packet in them is handled when the socket is readable. While :meth:`BrokerClient.batches` is
read, the complete QoS 0 PUBLISH packets in a chunk (MQTT 3.1.1: fixed header, topic, payload;
nothing to acknowledge) are taken as paho would hand them over, without its per-packet work
(its packet state, a message object, its log call, the match against per-topic callbacks);
every other packet, and one paho has begun, is read by paho. :meth:`BrokerClient.batches` hands
over what arrived as lists of (topic, payload), one wake-up of the reader per list, without
aiomqtt's message objects; ``client.messages`` stays as it is for the clients that use it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

import aiomqtt
import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

READ_AHEAD = 65536  # bytes asked of the socket at once; paho's reads are served from them
PACKETS_PER_WAKEUP = 1000  # packets handled before the event loop runs others again

Received = tuple[str, bytes]  # topic, payload


class _HandshakeClosingSocket(ssl.SSLSocket):
    """A TLS socket that closes itself when its handshake fails."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


class BrokerClient(aiomqtt.Client):
    """``aiomqtt.Client`` whose connect attempts and teardown always close paho's socket."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        context = kwargs.get("tls_context")
        if isinstance(context, ssl.SSLContext):
            context.sslsocket_class = _HandshakeClosingSocket
        super().__init__(*args, **kwargs)
        self._inbox = bytearray()  # read from the socket, not yet taken by paho
        self._socket_recv = self._client._sock_recv
        self._client._sock_recv = self._buffered_recv  # type: ignore[method-assign]
        self._received: list[Received] | None = None  # batches() is reading
        # QoS 0 publishes are taken from the read-ahead buffer directly while batches() reads;
        # off for good if this paho-mqtt lacks the internals it relies on (checked with 2.1-2.2)
        self._direct = True
        self._waiter: asyncio.Future[None] | None = None
        self._attempt_guard = threading.Lock()
        self._connecting = False  # paho's connect runs in the executor thread
        self._abandoned = False  # the attempt was given up: what it opens is closed

    async def __aenter__(self) -> Self:
        with self._attempt_guard:
            self._abandoned = False
        task = asyncio.current_task()
        before = task.cancelling() if task is not None else 0
        try:
            await super().__aenter__()
        except BaseException as exc:
            await self._abandon()
            if (
                not isinstance(exc, asyncio.CancelledError)
                and task is not None
                and task.cancelling() > before
            ):
                # the broker's refusal (a wrong password, say) came with a cancellation that
                # ``wait_for`` swallowed: the caller would retry forever instead of stopping
                raise asyncio.CancelledError from exc
            raise
        if task is not None and task.cancelling() > before:
            # aiomqtt awaits CONNACK with ``asyncio.wait_for``, which on Python 3.11 can swallow
            # a cancellation arriving with the CONNACK: the caller would go on as if connected
            # and never stop. The connection is given up and the cancellation raised again.
            await self._abandon()
            raise asyncio.CancelledError
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        lost = self._disconnected
        if lost.done() and not lost.cancelled():
            # the connection was lost and what ended the session has already said so: mark the
            # loss as seen, or asyncio logs "Future exception was never retrieved" for it
            lost.exception()
        try:
            await super().__aexit__(exc_type, exc, tb)
        finally:
            self._close_socket()

    # --- reading -----------------------------------------------------------------------------

    def _buffered_recv(self, bufsize: int) -> bytes:
        """paho's socket read, served from chunks of :data:`READ_AHEAD` bytes."""
        inbox = self._inbox
        if not inbox:
            data: bytes = self._socket_recv(READ_AHEAD)  # BlockingIOError when none
            if len(data) <= bufsize:
                return data  # all of it (b"": the broker closed the connection)
            inbox += data
        chunk = bytes(inbox[:bufsize])
        del inbox[:bufsize]
        return chunk

    def _on_socket_open(self, client: mqtt.Client, userdata: Any, sock: Any) -> None:
        """aiomqtt's, but each time the socket is readable every complete packet read is
        handled (up to :data:`PACKETS_PER_WAKEUP`, then again after the others' turn)."""
        self._inbox.clear()

        def read() -> None:
            try:
                for _ in range(PACKETS_PER_WAKEUP):
                    client.loop_read()
                    if self._received is not None:
                        self._take_publishes(self._received)
                    tls = client._sock
                    if not self._inbox and not (
                        isinstance(tls, ssl.SSLSocket) and tls.pending() > 0
                    ):
                        return
                # more packets are buffered than one turn takes: the rest in the next one
                self._loop.call_soon(read)
            except Exception as exc:
                # the connection broke (paho's read raised): the session ends with it
                if not self._disconnected.done():
                    self._disconnected.set_exception(exc)

        def create_misc_task() -> None:
            self._misc_task = self._loop.create_task(self._misc_loop())

        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), read)
        self._loop.call_soon_threadsafe(create_misc_task)

    def _take_publishes(self, received: list[Received]) -> None:
        """Hand each complete QoS 0 PUBLISH at the head of what was read over to ``received``
        as paho would (topic, payload), without paho's per-packet work; stops at any other
        packet, an incomplete one or one paho is to judge (malformed, MQTT 5 properties), which
        paho then reads. Only between two of paho's packets, and only while no per-topic
        message callback is registered with paho (they would be passed by)."""
        client = self._client
        inbox = self._inbox
        if not inbox or not self._direct:
            return
        try:
            paho_busy = (
                client._in_packet["command"] != 0
                or client._protocol == mqtt.MQTTv5
                or bool(client._on_message_filtered._root._children)
                or not hasattr(client, "_msgtime_mutex")
            )
        except (AttributeError, KeyError, TypeError):
            self._direct = False  # another paho-mqtt: every packet goes through paho
            log.info("paho-mqtt reads every packet itself (its internals differ)")
            return
        if paho_busy:
            return
        end = len(inbox)
        pos = 0
        taken = False
        while pos < end:
            if inbox[pos] & 0xF6 != 0x30:  # PUBLISH with QoS 0 (DUP and RETAIN as paho: ignored)
                break
            # the remaining length: at most 4 bytes of 7 bits, least significant first
            length = 0
            i = pos + 1
            for shift in (0, 7, 14, 21):
                if i >= end:
                    break
                byte = inbox[i]
                i += 1
                length |= (byte & 0x7F) << shift
                if not byte & 0x80:
                    break
            else:
                break  # over 4 bytes: malformed, paho says so
            if i >= end or inbox[i - 1] & 0x80 or i + length > end or length < 2:
                break  # incomplete, or too short for the topic's length: paho reads it
            topic_end = i + 2 + (inbox[i] << 8 | inbox[i + 1])
            if topic_end > i + length:
                break
            pos = i + length
            try:
                topic = inbox[i + 2 : topic_end].decode("utf-8")
            except UnicodeDecodeError:
                continue  # a topic that is not UTF-8: no broker delivers one to a subscription
            received.append((topic, bytes(inbox[topic_end:pos])))
            taken = True
        if pos:
            del inbox[:pos]
            with client._msgtime_mutex:
                client._last_bytes_received = mqtt.time_func()
        if taken:
            self._wake()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        received = self._received
        if received is None:
            super()._on_message(client, userdata, message)
            return
        try:
            received.append((message.topic, bytes(message.payload)))
        except UnicodeDecodeError:
            return  # a topic that is not UTF-8: no broker delivers one to a subscription
        self._wake()

    async def batches(self) -> AsyncIterator[list[Received]]:
        """Every message received from now on (and those aiomqtt queued before), as lists of
        (topic, payload) in the order they arrived, one list per wake-up; MqttError when the
        connection is lost. Messages no longer go to ``client.messages``."""
        queued = self._queue
        received: list[Received] = []
        while not queued.empty():
            message = queued.get_nowait()
            payload = message.payload
            raw = payload if isinstance(payload, bytes) else bytes(str(payload or ""), "utf-8")
            received.append((message.topic.value, raw))
        self._received = received
        lost = self._disconnected
        lost.add_done_callback(self._wake)
        try:
            while True:
                if not self._received:
                    if lost.done():
                        raise aiomqtt.MqttError(
                            "Disconnected during message iteration"
                        ) from lost.exception()
                    self._waiter = self._loop.create_future()
                    await self._waiter
                    continue
                batch, self._received = self._received, []
                yield batch
        finally:
            lost.remove_done_callback(self._wake)
            self._waiter = None
            self._received = None  # nobody reads batches now: messages go to aiomqtt's queue

    def _wake(self, _: object = None) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _client_connect(self) -> None:
        """paho's blocking connect; runs in an executor thread (aiomqtt's ``__aenter__``)."""
        with self._attempt_guard:
            if self._abandoned:
                raise OSError("connect attempt given up before it started")
            self._connecting = True
        try:
            super()._client_connect()
        finally:
            with self._attempt_guard:
                self._connecting = False
                late = self._abandoned
            if late:
                self._close_from_thread()

    async def _abandon(self) -> None:
        """Give up a connect attempt that did not succeed: close its socket, now or, when
        paho is still connecting in its thread, as soon as that returns."""
        with self._attempt_guard:
            self._abandoned = True
            in_thread = self._connecting
        if self._lock.locked():
            self._lock.release()  # aiomqtt keeps it after a cancelled attempt
        if in_thread:
            return
        # the thread may have just queued registering the socket with the loop (a reader,
        # paho's housekeeping task): let that run first, so that closing undoes it
        try:
            await asyncio.sleep(0)
        finally:
            self._close_socket()

    def _close_from_thread(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._close_socket)
        except RuntimeError:  # the loop is closed: nothing is registered with it any more
            sock = self._client.socket()
            if isinstance(sock, socket.socket):
                sock.close()

    def _close_socket(self) -> None:
        """Close paho's socket if it is open. paho's own close runs its socket callbacks, so
        aiomqtt stops reading the socket and cancels its housekeeping task."""
        if self._client.socket() is not None:
            self._client._sock_close()
