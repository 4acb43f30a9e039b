"""A Mosquitto of the test's own, configured as the shipped site broker: ``deploy/mosquitto/``'s
``mosquitto.conf`` and ``acl`` with only the paths and ports changed (and the TLS listener
uncommented when asked), and a password file made by ``scripts/mqtt-logins.py``."""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "mosquitto"
MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")


@dataclass(frozen=True)
class Logins:
    """What ``scripts/mqtt-logins.py`` wrote for the reference line."""

    dir: Path

    @property
    def passwd(self) -> Path:
        return self.dir / "passwd"

    @property
    def controller_password_file(self) -> Path:
        return self.dir / "controller.password"

    @property
    def robot_logins(self) -> Path:
        return self.dir / "robot-logins.yaml"

    def password(self, serial: str) -> str:
        return (self.dir / "robots" / f"{serial}.password").read_text().splitlines()[0]

    @property
    def controller_password(self) -> str:
        return self.controller_password_file.read_text().splitlines()[0]


def make_logins(directory: Path) -> Logins:
    """Run the shipped script for the reference line, as an engineer would."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "mqtt-logins.py"), "--out", str(directory)],
        check=True,
        env=env,
        capture_output=True,
    )
    return Logins(directory)


@dataclass(frozen=True)
class TlsListener:
    port: int
    ca_file: Path
    cert_file: Path
    key_file: Path


def site_conf(work: Path, port: int, passwd: Path, tls: TlsListener | None = None) -> str:
    """The shipped ``mosquitto.conf`` with this test's paths and loopback ports; every setting
    the test replaces must be in the shipped file, so that the test follows what ships."""
    replace = {
        "password_file": str(passwd),
        "acl_file": str(SHIPPED / "acl"),
        "persistence_location": f"{work / 'data'}/",
        "log_dest": f"file {work / 'mosquitto.log'}",
        "listener 1883": f"{port} 127.0.0.1",
    }
    if tls is not None:
        replace |= {
            "#listener 8883": f"{tls.port} 127.0.0.1",
            "#cafile": str(tls.ca_file),
            "#certfile": str(tls.cert_file),
            "#keyfile": str(tls.key_file),
            "#tls_version": "tlsv1.2",
            "#require_certificate": "true",
        }
    found: set[str] = set()
    out = []
    for line in (SHIPPED / "mosquitto.conf").read_text().splitlines():
        words = line.split()
        key = next((k for k in replace if words and (line.startswith(f"{k} ") or line == k)), None)
        if key is None:
            out.append(line)
            continue
        found.add(key)
        name = key.lstrip("#").split()[0]
        out.append(f"{name} {replace[key]}")
    missing = set(replace) - found
    assert not missing, f"the shipped mosquitto.conf no longer has {sorted(missing)}"
    (work / "data").mkdir(exist_ok=True)
    # started as root, Mosquitto would switch to its own user, who cannot read the test's files
    out.append(f"user {getpass.getuser()}")
    return "\n".join(out) + "\n"


class SiteBroker:
    """``async with SiteBroker(work, port, passwd) as b``: Mosquitto runs with the site config."""

    def __init__(self, work: Path, port: int, passwd: Path, tls: TlsListener | None = None) -> None:
        self.work = work
        self.port = port
        self.tls = tls
        self.conf = work / "mosquitto.conf"
        self.conf.write_text(site_conf(work, port, passwd, tls))
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> str:
        path = self.work / "mosquitto.log"
        return path.read_text() if path.exists() else ""

    async def start(self) -> None:
        assert MOSQUITTO is not None
        self.proc = await asyncio.create_subprocess_exec(
            MOSQUITTO,
            "-c",
            str(self.conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        ports = [self.port] + ([self.tls.port] if self.tls else [])
        async with asyncio.timeout(10):
            for port in ports:
                while True:
                    if self.proc.returncode is not None:
                        stderr = await self.proc.stderr.read() if self.proc.stderr else b""
                        raise RuntimeError(
                            f"mosquitto exited: {stderr.decode(errors='replace')}{self.log}"
                        )
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                    except OSError:
                        await asyncio.sleep(0.02)
                        continue
                    writer.close()
                    await writer.wait_closed()
                    break

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def __aenter__(self) -> SiteBroker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
