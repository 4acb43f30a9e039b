"""Each simulated robot's own login on the broker: the robot logins file of
``linectl sim robots --logins FILE``.

On a locked-down broker every robot logs in as itself (by convention its user name is its serial
number, which the shipped Mosquitto ACL relies on, see docs/security.md), so that it may publish
only its own topics. A real vehicle holds its login in its own configuration; the simulator
holds the fleet's in this file, apart from the line file (which holds only the controller's)::

    robots:
      R01: {password_file: secrets/R01.password}    # user name R01
      R02: {username: R02, password: "..."}
      R03: {cert_file: pki/R03.crt, key_file: pki/R03.key, password_file: secrets/R03.password}

Every robot of the fleet needs an entry, and every entry a robot of the fleet: a robot without
one would log in as the controller. The broker address and TLS (``mqtt.url``, ``mqtt.tls``)
stay the line file's; ``cert_file``/``key_file`` replace its client certificate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator

from devices.vda5050.broker import Login
from kernel.config.base import Id, Strict

MAX_FILE_BYTES = 1 << 20
FilePath = Annotated[str, Field(min_length=1)]


class LoginsError(Exception):
    """A robot logins file that cannot be used; the message says where and why."""


class RobotLogin(Strict):
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None  # the serial
    password: SecretStr | None = None
    password_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RobotLogin:
        if self.password is not None and self.password_file is not None:
            raise ValueError("password and password_file are alternatives: give one")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.username is not None and any(c in self.username for c in "+#\x00"):
            raise ValueError("username must not contain '+', '#' or NUL")
        return self


class RobotLogins(Strict):
    robots: dict[Id, RobotLogin]


def load_logins(path: Path, serials: Iterable[str]) -> dict[str, Login]:
    """The login of every robot in ``serials`` from the file at ``path``."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LoginsError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise LoginsError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise LoginsError(
            f"{path}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    try:
        parsed = RobotLogins.model_validate(data)
    except ValidationError as exc:
        # the messages name the place only: the input may hold a password
        problems = [
            f"{path}: {'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}"
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise LoginsError("\n".join(problems)) from None
    fleet = list(serials)
    unknown = sorted(set(parsed.robots) - set(fleet))
    missing = [s for s in fleet if s not in parsed.robots]
    if unknown:
        raise LoginsError(f"{path}: robots not in the line's fleet: {', '.join(unknown)}")
    if missing:
        raise LoginsError(f"{path}: every robot needs its own login; missing: {', '.join(missing)}")
    return {
        serial: Login(
            username=entry.username or serial,
            password=entry.password.get_secret_value() if entry.password is not None else None,
            password_file=entry.password_file,
            cert_file=entry.cert_file,
            key_file=entry.key_file,
        )
        for serial, entry in parsed.robots.items()
    }
