"""A device's retentive state: what its PLC keeps across a power cycle, as a JSON file.

Each simulator says what it retains (a pydantic model of :class:`Record` values); this module
reads and writes the file. The file is replaced atomically (a temporary file, then
``os.replace``), so a crash leaves the previous or the new state, never a torn one.
:class:`RetainedFile` writes the state after the changes that matter to it, and logs a write
that fails once, trying again at the next change.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

State = TypeVar("State", bound=BaseModel)


class Record(BaseModel):
    """A value of a state file: immutable, and no field the format does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetainedStateError(Exception):
    """The state file cannot be read or does not fit the line."""


def write_state(path: Path, state: BaseModel) -> None:
    """Replace ``path`` with ``state`` atomically (blocking: run it off the event loop)."""
    tmp = path.with_name(f".{path.name}.tmp")
    data = state.model_dump_json().encode()
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_state(path: Path, model: type[State], kind: str) -> State | None:
    """The state in ``path``, None when there is no file; :class:`RetainedStateError` when it
    is unreadable or not a ``kind`` state file."""
    if not path.parent.is_dir():
        raise RetainedStateError(f"{path}: directory {path.parent} does not exist")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RetainedStateError(f"{path}: cannot read the state file: {exc}") from None
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        first = str(exc).splitlines()
        why = "; ".join(first[:3]) if first else type(exc).__name__
        raise RetainedStateError(f"{path}: not a valid {kind} state file: {why}") from None


class RetainedFile:
    """Keeps a device's state file up to date.

    The caller names what it retains with a ``key`` (revision counters, a state): the file is
    written when the key changes, and, with ``every`` wall seconds given, again after that long
    while the device moves. Without a ``path`` nothing is written. ``owner`` goes into the log
    entries of a write that failed, and of the first that worked again.
    """

    def __init__(
        self,
        path: Path | None,
        log: logging.Logger,
        owner: Mapping[str, Any],
        every: float | None = None,
    ) -> None:
        self.path = path
        self._log = log
        self._owner = dict(owner)
        self._every = every
        self._saved: Hashable | None = None
        self._saved_at = 0.0  # wall clock (time.monotonic) of the last write tried
        self._failing = False

    def due(self, key: Hashable, moving: bool = False) -> bool:
        """Whether the state must be written now."""
        if self.path is None:
            return False
        if key != self._saved:
            return True
        return (
            moving and self._every is not None and time.monotonic() - self._saved_at >= self._every
        )

    async def write(self, key: Hashable, state: BaseModel) -> None:
        """Write ``state`` (under ``key``); a failure is logged, not raised."""
        if self.path is None:
            return
        wall = time.monotonic()
        try:
            await asyncio.to_thread(write_state, self.path, state)
        except OSError as exc:
            if not self._failing:
                self._log.error(
                    "retained state not written",
                    extra={**self._owner, "file": str(self.path), "error": str(exc)},
                )
            self._failing = True
            self._saved_at = wall  # try again at the next change or in a while
            return
        if self._failing:
            self._log.info(
                "retained state written again", extra={**self._owner, "file": str(self.path)}
            )
        self._failing = False
        self._saved, self._saved_at = key, wall
