"""Log set-up: the handler writes to the stderr of the moment, so a command run with a swapped
stderr that is closed afterwards (a test runner's CLI invocation) leaves no broken handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from asyncua import ua

from controller.app.cli.common import setup_logs


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_records_go_to_the_current_stderr_even_after_the_old_one_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    during = io.StringIO()
    monkeypatch.setattr("sys.stderr", during)
    setup_logs("info")
    logging.getLogger("linectl.test").warning("while swapped")
    during.close()  # the runner closes its buffer when the command returns

    after = io.StringIO()
    monkeypatch.setattr("sys.stderr", after)
    logging.getLogger("linectl.test").warning("afterwards", extra={"n": 1})
    assert 'msg="afterwards" n=1' in after.getvalue()


def _library_record(exc: BaseException, name: str = "asyncua.client.ua_session.UaSession") -> None:
    """Log ``exc`` at ERROR with its traceback, as asyncua's background loops do."""
    try:
        raise exc
    except BaseException:
        logging.getLogger(name).exception("Publish iteration crashed; retrying in 1s")


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize(
    "exc",
    [
        ConnectionError("Connection is closed"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        OSError(111, "Connect call failed"),
    ],
    ids=["closed", "reset", "timeout", "refused"],
)
def test_asyncua_link_loss_tracebacks_are_not_written_at_info(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    setup_logs("info")
    _library_record(exc)
    assert out.getvalue() == ""


@pytest.mark.usefixtures("restore_root_logger")
def test_asyncua_link_loss_is_one_debug_line_at_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    setup_logs("debug")
    _library_record(ConnectionError("Connection is closed"))
    (line,) = out.getvalue().splitlines()
    assert "level=debug" in line and 'error="ConnectionError: Connection is closed"' in line


@pytest.mark.usefixtures("restore_root_logger")
@pytest.mark.parametrize(
    ("exc", "name"),
    [
        (ValueError("cannot parse the notification"), "asyncua.client.ua_session.UaSession"),
        (ua.UaStatusCodeError(ua.StatusCodes.BadNodeIdUnknown), "asyncua.client.client"),
        (OSError(13, "Permission denied"), "asyncua.client.client"),
        (ConnectionError("not from asyncua"), "controller.service.orchestrator"),
    ],
    ids=["parse-error", "bad-node", "permission", "other-logger"],
)
def test_other_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, name: str
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    setup_logs("info")
    _library_record(exc, name)
    assert "level=error" in out.getvalue() and "Traceback" in out.getvalue()
