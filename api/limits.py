"""A request body limit enforced on the raw ASGI stream.

A declared ``Content-Length`` over the limit is refused before a byte of the body is read. A body
without one (chunked transfer) is counted as it arrives; the moment it passes the limit the
application's read fails, whatever the application would have answered is dropped, and the client
gets a 413 problem instead.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem


class BodyTooLarge(Exception):
    """The request body passed the limit while it was being read."""


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> str:
        return f"The request body is larger than the limit of {self.max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = _content_length(scope)
        if declared == -1:
            response = problem(400, "The Content-Length header is not a non-negative integer")
            await response(scope, receive, send)
            return
        if declared is not None and declared > self.max_body_bytes:
            await problem(413, self._too_large(), kind="body-too-large")(scope, receive, send)
            return

        received = 0
        tripped = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, tripped
            if tripped:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    tripped = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if tripped:
                return  # the application's answer to a cut-off body is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # Whatever the application raised while its body read was cut off (BodyTooLarge
            # itself, or an error wrapping it) is answered with the 413 below.
            if not tripped or started:
                raise
        if tripped and not started:
            await problem(413, self._too_large(), kind="body-too-large")(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length, None if absent, -1 if present but unusable."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None
