"""Store calls made for an HTTP request are tried once.

The controller tries a store call again while the store cannot write (a full disk recovers on
its own); a request must not hang on that. :class:`FailFastMiddleware` marks everything done for
a request with :data:`controller.store.base.FAIL_FAST`, so the first
:class:`~controller.store.base.StoreUnavailable` becomes a 503 problem at once and the client
tries again later.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from controller.store.base import FAIL_FAST


class FailFastMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = FAIL_FAST.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            FAIL_FAST.reset(token)
