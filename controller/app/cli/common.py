"""What the ``linectl`` commands share: the consoles, the common options, reading a line file,
where the controller's API is, running a command's coroutine so that SIGINT/SIGTERM stop it
cleanly, and the exit codes they share.

The command modules (:mod:`controller.app.cli.main`, :mod:`controller.app.cli.demo`,
:mod:`controller.app.cli.sim`, :mod:`controller.app.cli.devices`, :mod:`controller.app.cli.asrs`)
take these from here, so that none of them imports the module that puts the command line together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from rich.console import Console

from controller.linefile.loader import ConfigError, load, load_reference
from devices.opcua.library_logs import LinkLossFilter
from kernel import logs
from kernel.ports import CannotListen, PortInUse

# a port the command must listen on is in use (EX_UNAVAILABLE): another process listens there
PORT_IN_USE = 69

log = logging.getLogger("controller.app.cli")  # the command line logs under one name


def setup_logs(level: str, fmt: str = "text") -> None:
    """The service's logs (:func:`kernel.logs.setup`), with asyncua's tracebacks of a lost link
    turned into the adapters' one outage line."""
    logs.setup(level, fmt, [LinkLossFilter(logging.getLevelName(level.upper()))])


err = Console(stderr=True, soft_wrap=True)  # one line per message, also when piped
out = Console()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Line file (YAML).")]
# an unknown value is a usage error (exit 2) that lists the allowed ones
LogLevel = Annotated[
    Literal["debug", "info", "warning", "error"],
    typer.Option("--log-level", case_sensitive=False, help="Least severe level logged."),
]
LogFormat = Annotated[
    Literal["text", "json"],
    typer.Option("--log-format", case_sensitive=False, help="text (key=value) or json."),
]


def _positive(value: float | None) -> float | None:
    if value is not None and not (value > 0 and math.isfinite(value)):  # NaN fails too
        raise typer.BadParameter(f"{value:g} is not a time scale: give a number above 0")
    return value


TIME_SCALE_HELP = "Line seconds per wall second, above 0"
# the simulators and ``linectl run``: the line file's clock.time_scale unless given
TimeScaleOpt = Annotated[
    float | None,
    typer.Option(
        "--time-scale",
        callback=_positive,
        help=f"{TIME_SCALE_HELP} (default: clock.time_scale of the line file).",
    ),
]
# ``linectl demo``: its own default, which depends on its broker; the same check
DemoTimeScaleOpt = Annotated[
    float | None,
    typer.Option(
        "--time-scale",
        callback=_positive,
        help=f"{TIME_SCALE_HELP} (default: 80 on Mosquitto or a given broker, 30 on the "
        "embedded broker).",
    ),
]


# --- where the controller's API is ----------------------------------------------------------

DEFAULT_API = "http://127.0.0.1:8080"
API_ENV = "LINECTL_API_URL"
TOKEN_ENV = "LINECTL_API_TOKEN"

# Every command that calls a running controller's API takes --api, --token and a line file, and
# finds the API by the first of: --api, LINECTL_API_URL, the line file's api.host and api.port,
# DEFAULT_API (see api_url).
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar=API_ENV,
        help=f"The controller's API base URL. Default: {API_ENV}, else api.host and api.port of "
        f"the line file (--config), else {DEFAULT_API}.",
        show_default=False,
    ),
]
TokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        help="Bearer token for the API: scope line:operate for operator commands, orders:read "
        "for reads (unless the controller's reads are open), orders:write to send orders.",
    ),
]
ApiLineFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"Line file: the API at its api.host and api.port, unless --api or {API_ENV} "
        "names it.",
    ),
]


def api_of_line(cfg: Any) -> str:
    """The base URL of the API that ``linectl run`` serves for the line file ``cfg``: its
    ``api.host`` and ``api.port``, a wildcard host (all interfaces) reached on loopback. Exit 2
    for port 0 (a free port picked at start, unknown beforehand)."""
    host, port = str(cfg.api.host), int(cfg.api.port)
    if port == 0:
        err.print(
            "the line file's api.port is 0 (a free port picked at start): give --api URL or "
            f"set {API_ENV}",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):  # an IPv6 address
        host = f"[{host}]"
    return f"http://{host}:{port}"


def api_url(api: str | None, line_file: Path | None = None, cfg: Any = None) -> str:
    """The API base URL a command calls: ``api`` (the --api option, which typer fills from
    LINECTL_API_URL when it is not given), else the API of the line file (``cfg`` when the
    command has read it, else read from ``line_file``), else :data:`DEFAULT_API`. Exit 1 on a
    bad line file, as every command that reads one."""
    if api:
        return api.rstrip("/")
    if cfg is None and line_file is not None:
        cfg = load_line(line_file)
    return api_of_line(cfg) if cfg is not None else DEFAULT_API


def load_line(path: Path | None) -> Any:
    """The line file at ``path`` (the reference line without one); exit 1 on a bad file."""
    try:
        return load(path) if path is not None else load_reference()
    except ConfigError as exc:
        err.print(exc.render(), markup=False, highlight=False)
        raise typer.Exit(1) from None


def check_broker(cfg: Any, url: str | None = None, option: str = "--broker") -> None:
    """The line's broker settings (at ``url`` when given) can be used: the URL, the password
    file and the TLS files; exit 2 with the reason otherwise (never showing a password)."""
    from devices.vda5050.broker import BrokerSettingsError, broker_settings

    try:
        broker_settings(cfg.mqtt, url)
    except BrokerSettingsError as exc:
        where = f"{option}: " if url is not None else ""
        err.print(f"{where}{exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def first_error(exc: BaseException) -> Any:
    """``exc``, or the first error of an exception group (of groups)."""
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def cannot_listen(exc: CannotListen, in_use: str, otherwise: str) -> NoReturn:
    """End the command for a port it cannot listen on: one line with what to do, exit
    :data:`PORT_IN_USE` when another process listens there (``in_use``), 1 for another reason
    (``otherwise``)."""
    hint = in_use if isinstance(exc, PortInUse) else otherwise
    err.print(f"{exc}; {hint}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(PORT_IN_USE if isinstance(exc, PortInUse) else 1)


SLOW_STOP_SECONDS = 10.0


def _report_slow_stop(main: asyncio.Task[Any]) -> None:
    """The stop takes long: say once which tasks are still running, and where."""
    if main.done():
        return
    pending = [t for t in asyncio.all_tasks() if not t.done() and t is not main]
    log.warning(
        "stop is taking long; tasks still running",
        extra={
            "seconds": SLOW_STOP_SECONDS,
            "tasks": [
                f"{t.get_name()} at "
                + "; ".join(f"{f.f_code.co_filename}:{f.f_lineno}" for f in t.get_stack(limit=3))
                for t in pending
            ],
        },
    )


def run_until_stopped(main: Coroutine[Any, Any, Any]) -> Any:
    """Run ``main``; SIGINT/SIGTERM cancel it so every task stops cleanly."""

    async def runner() -> Any:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        assert task is not None

        def stop() -> None:
            task.cancel()
            loop.call_later(SLOW_STOP_SECONDS, _report_slow_stop, task)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        try:
            return await main
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        return asyncio.run(runner())
    return None
