"""What the ``linectl`` commands share: the consoles, the common options, reading a line file,
running a command's coroutine so that SIGINT/SIGTERM stop it cleanly, and the exit codes they
share.

The command modules (:mod:`controller.app.cli.main`, :mod:`controller.app.cli.demo`,
:mod:`controller.app.cli.sim`, :mod:`controller.app.cli.devices`, :mod:`controller.app.cli.asrs`)
take these from here, so that none of them imports the module that puts the command line together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
