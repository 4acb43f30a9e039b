"""A small disk of its own for a test (a tmpfs mount), to fill and free: a real full disk.

The test process must be allowed to mount (root, or CAP_SYS_ADMIN); otherwise the test is
skipped. The mount is removed when the test ends, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

CHUNK = 1 << 16


class SmallDisk:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> int:
        """Take every free byte; the bytes written."""
        written = 0
        fd = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (CHUNK, 4096, 512, 1):  # the last bytes in smaller pieces
                while True:
                    try:
                        written += os.write(fd, b"\0" * size)
                    except OSError:
                        break
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Give the space back."""
        self._filler.unlink(missing_ok=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def small_disk(path: Path, megabytes: int) -> Iterator[SmallDisk]:
    """A tmpfs of ``megabytes`` mounted at ``path``; skips the test where mounting is refused."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        pytest.skip("cannot mount a small disk for the test: no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small disk for the test: {mounted.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        # lazily: a file still open is let go when it is closed
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
