"""Log set-up: the handler writes to the stderr of the moment, so a command run with a swapped
stderr that is closed afterwards (a test runner's CLI invocation) leaves no broken handler."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from controller import logs


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
    logs.setup("info")
    logging.getLogger("linectl.test").warning("while swapped")
    during.close()  # the runner closes its buffer when the command returns

    after = io.StringIO()
    monkeypatch.setattr("sys.stderr", after)
    logging.getLogger("linectl.test").warning("afterwards", extra={"n": 1})
    assert 'msg="afterwards" n=1' in after.getvalue()
