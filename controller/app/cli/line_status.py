"""``linectl line status``: the operator's picture of the line in the terminal, once or live.

Once: ``GET /v1/line`` (and ``GET /v1/line/plan`` for the chutes' capacity) drawn by
:mod:`controller.app.line_render`, or the document as JSON. Live (``--watch``): the Server-Sent
Events of ``GET /v1/line/stream``, each a whole snapshot, drawn in place (or one JSON document
per line). When the stream drops or the controller cannot be reached, the last picture stays
with a line saying so, and the stream is opened again after a doubling, jittered wait; a token
the controller refuses ends the command (exit 3), as in the other API commands. Ctrl-C ends a
watch with exit 0.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from controller.app.cli.common import TOKEN_ENV, ApiLineFileOpt, ApiOpt, TokenOpt, api_url
from controller.app.cli.ops import DENIED, USAGE, call, err, out
from controller.app.line_render import render
from controller.app.sse import Comment, SseDecoder
from kernel.backoff import Backoff

STREAM_PATH = "/v1/line/stream"
MIN_INTERVAL, MAX_INTERVAL = 0.2, 10.0  # what the stream accepts (api.line_feed)
HEARTBEAT_SECONDS = 15.0  # the stream sends a comment at least this often
SILENCE_SECONDS = 2 * HEARTBEAT_SECONDS + 5  # nothing heard for this long: the link is dead
RETRY_FIRST, RETRY_MAX = 0.5, 10.0  # wall seconds between attempts to open the stream again


class StreamRefused(Exception):
    """The controller answered the stream with an error that trying again will not mend."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamLost(Exception):
    """The stream could not be opened, or it ended or broke; it is tried again."""


def register(line_app: typer.Typer) -> None:
    """Add ``linectl line status`` to the ``line`` group."""
    line_app.command("status")(line_status)


def line_status(
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the picture up to date (Ctrl-C ends).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            min=MIN_INTERVAL,
            max=MAX_INTERVAL,
            help="With --watch: wall seconds between the controller's looks for a change.",
        ),
    ] = 1.0,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="GET /v1/line as JSON; with --watch one document per line (NDJSON)."
        ),
    ] = False,
    api: ApiOpt = None,
    token: TokenOpt = None,
    config: ApiLineFileOpt = None,
) -> None:
    """The line now: whether it runs or is held, the conveyor (jams, held and occupied zones,
    chute fill), the AS/RS cranes, the robots, the orders by status and the oldest waiting
    ones with why they wait. A token needs scope orders:read unless the controller's reads
    are open. Exit 2 when the controller cannot be reached, 3 when the token is refused."""
    url = api_url(api, config)
    if watch:
        _watch(url, token, interval, as_json)
        return
    view = call(url, token, "GET", "/v1/line")
    if as_json:
        print(json.dumps(view, indent=2))
        return
    out.print(render(view, _plan(url, token), received_at=datetime.now().astimezone()))


def _plan(url: str, token: str | None) -> dict[str, Any] | None:
    """The line's layout (the chutes' capacity), or None when the controller does not give it:
    the picture is drawn without capacities then."""
    try:
        with httpx.Client(base_url=url, timeout=10.0, headers=_auth(token)) as client:
            resp = client.get("/v1/line/plan")
    except httpx.HTTPError:
        return None
    if not resp.is_success:
        return None
    with contextlib.suppress(ValueError):
        plan = resp.json()
        return plan if isinstance(plan, dict) else None
    return None


def _auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# --- the live picture -------------------------------------------------------------------------


@dataclass
class Screen:
    """What the live display shows: the last snapshot, and why it may be stale."""

    view: dict[str, Any] | None = None
    plan: dict[str, Any] | None = None
    received_at: datetime | None = None
    lost: str | None = None  # why the stream is down
    lost_since: datetime | None = None
    retry_in: float = 0.0

    def __rich__(self) -> RenderableType:
        parts: list[RenderableType] = []
        if self.lost is not None and self.lost_since is not None:
            parts.append(
                Text(
                    f"{self.lost} (since {self.lost_since:%H:%M:%S}); trying again in "
                    f"{self.retry_in:.0f} s; the picture below is from before",
                    style="bold red",
                )
            )
        if self.view is not None:
            parts.append(render(self.view, self.plan, received_at=self.received_at))
        elif self.lost is None:
            parts.append(Text("waiting for the line's first snapshot...", style="dim"))
        return Group(*parts)


class Display:
    """Where the snapshots go: redrawn in place on a terminal, one after the other when the
    output is a pipe or a file, or one JSON document per line."""

    def __init__(self, url: str, token: str | None, as_json: bool) -> None:
        self._url, self._token, self._as_json = url, token, as_json
        self.screen = Screen()
        self._live = (
            Live(self.screen, console=out, auto_refresh=False)
            if not as_json and out.is_terminal
            else None
        )

    def __enter__(self) -> Display:
        if self._live is not None:
            self._live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live is not None:
            self._live.stop()

    def snapshot(self, view: dict[str, Any]) -> None:
        s = self.screen
        if s.lost is not None:
            err.print(f"controller at {self._url} reachable again", highlight=False)
        s.lost = s.lost_since = None
        if self._as_json:
            print(json.dumps(view), flush=True)
            return
        if s.plan is None:
            s.plan = _plan(self._url, self._token)
        s.view, s.received_at = view, datetime.now().astimezone()
        self._show()

    def lost(self, reason: str, retry_in: float) -> None:
        s = self.screen
        if s.lost is None:
            s.lost_since = datetime.now().astimezone()
            # once per outage on stderr where nothing is redrawn
            if self._live is None:
                err.print(f"{reason}; trying again", markup=False, highlight=False)
            s.plan = None  # the controller may come back with another line file
        s.lost, s.retry_in = reason, retry_in
        if self._live is not None:
            self._live.update(s, refresh=True)

    def _show(self) -> None:
        if self._live is not None:
            self._live.update(self.screen, refresh=True)
        else:
            out.print(self.screen)
            out.rule(style="dim")


def _watch(url: str, token: str | None, interval: float, as_json: bool) -> None:
    try:
        with Display(url, token, as_json) as display:
            _follow(url, token, interval, display)
    except KeyboardInterrupt:
        pass  # Ctrl-C: the operator is done watching
    except BrokenPipeError:  # the reader of the output went away (| head)
        with contextlib.suppress(OSError):
            sys.stdout.close()
    except StreamRefused as exc:
        _fail(exc.code, str(exc))


def _follow(url: str, token: str | None, interval: float, display: Display) -> NoReturn:
    """Show every snapshot of the stream; open it again whenever it is lost."""
    backoff = Backoff(RETRY_FIRST, RETRY_MAX)
    timeout = httpx.Timeout(10.0, read=SILENCE_SECONDS)
    with httpx.Client(base_url=url, timeout=timeout, headers=_auth(token)) as client:
        while True:
            try:
                for view in snapshots(client, interval):
                    backoff.reset()
                    display.snapshot(view)
                raise StreamLost(f"the controller at {url} ended the stream")
            except StreamLost as exc:
                delay = backoff.next_delay()
                display.lost(str(exc), delay)
                time.sleep(delay)


def snapshots(client: httpx.Client, interval: float) -> Iterator[dict[str, Any]]:
    """The line views of one opening of the stream, as they come. Raises
    :class:`StreamRefused` for an answer that trying again will not mend, and
    :class:`StreamLost` when the stream cannot be opened or breaks."""
    base = str(client.base_url).rstrip("/")
    try:
        with client.stream("GET", STREAM_PATH, params={"interval": interval}) as resp:
            if not resp.is_success:
                resp.read()
                _refused(resp, base)
            kind = resp.headers.get("content-type", "")
            if not kind.startswith("text/event-stream"):
                raise StreamRefused(USAGE, f"{base}{STREAM_PATH}: not an event stream ({kind})")
            decoder = SseDecoder()
            for piece in resp.iter_text():
                for item in decoder.feed(piece):
                    if isinstance(item, Comment) or item.event != "line":
                        continue
                    try:
                        view = json.loads(item.data)
                    except ValueError as exc:
                        raise StreamLost(f"a snapshot that is not JSON: {exc}") from None
                    yield view
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # no use trying again
        raise StreamRefused(USAGE, f"--api {base}: {exc}") from None
    except httpx.HTTPError as exc:
        raise StreamLost(f"controller at {base} unreachable: {exc or type(exc).__name__}") from None


def _refused(resp: httpx.Response, base: str) -> NoReturn:
    """An error answer to the stream: the token refused and a bad request end the watch, a
    controller in trouble (5xx) is tried again."""
    try:
        answer = resp.json()
        detail = str(answer.get("detail", "")) if isinstance(answer, dict) else str(answer)
    except ValueError:
        detail = "not a linectl answer"
    status = resp.status_code
    if status in (401, 403):
        given = "Authorization" in resp.request.headers
        hint = "" if given else f" (give --token or set {TOKEN_ENV})"
        raise StreamRefused(DENIED, f"refused (HTTP {status}): {detail}{hint}")
    if status >= 500:
        raise StreamLost(f"controller at {base} answered HTTP {status}: {detail}")
    raise StreamRefused(USAGE, f"refused (HTTP {status}): {detail}")


def _fail(code: int, message: str) -> NoReturn:
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)
