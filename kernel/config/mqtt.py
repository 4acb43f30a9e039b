"""The robot broker link of the line's configuration: where the MQTT broker is, how the
controller logs in (user name and password) and how the connection is secured (TLS with a CA,
optionally a client certificate for mutual TLS).

The same settings serve the controller, ``linectl devices check`` and the robot simulator
(which may give each simulated robot its own login, see docs/security.md). Files named here are
read when the line is loaded and again at start (see :mod:`kernel.config.mqtt_files`).

Part of the line's model; everything is importable from :mod:`kernel.config.model`.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from kernel.config.base import Id, Strict

# where a password goes instead of the URL (the message of a refused URL names them all)
PASSWORD_PLACES = "mqtt.password (or LINECTL_MQTT__PASSWORD) or mqtt.password_file"
FilePath = Annotated[str, Field(min_length=1)]


class MqttTls(Strict):
    """TLS for an ``mqtts://`` broker. Without ``ca_file`` the system's CA store verifies the
    broker; the broker's certificate must name the host of ``mqtt.url`` (DNS name or IP
    address). ``cert_file`` and ``key_file`` (PEM, the key unencrypted) are the client's own
    certificate for a broker that requires one. There is deliberately no switch to skip the
    verification: give the broker's own certificate (or its CA) as ``ca_file`` instead."""

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: FilePath | None = None

    @model_validator(mode="after")
    def _pair(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            missing = "key_file" if self.key_file is None else "cert_file"
            raise ValueError(
                f"cert_file and key_file go together (the client certificate and its key): "
                f"{missing} is missing"
            )
        return self


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a usable broker URL (``mqtt://host[:port]`` or ``mqtts://...``), or
    None. The message never repeats a password found in the URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "not a URL of the form mqtt://host:port or mqtts://host:port"
    if parts.scheme not in ("mqtt", "mqtts"):
        return "must start with mqtt:// or mqtts://"
    if parts.username is not None or parts.password is not None:
        return (
            "user name and password do not go in the URL (they would be ignored and logged): "
            f"use mqtt.username and {PASSWORD_PLACES}"
        )
    if not parts.hostname:
        return "names no host"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be mqtt://host:port or mqtts://host:port, without a path or query"
    if port == 0:
        return "port 0 is not a broker port"
    return None


class MqttConfig(Strict):
    """The robot broker. ``password`` and ``password_file`` are alternatives; the file's first
    line is the password. A password never appears in a log line or an error message."""

    url: str = "mqtt://127.0.0.1:1883"
    interface_name: Id = "uagv"
    client_id: str = "linectl-master"
    username: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    password: SecretStr | None = None  # or LINECTL_MQTT__PASSWORD
    password_file: FilePath | None = None
    tls: MqttTls | None = None  # only with an mqtts:// url

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        problem = url_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v

    @field_validator("username")
    @classmethod
    def _username(cls, v: str | None) -> str | None:
        if v is not None and any(c in v for c in "+#\x00"):
            # Mosquitto's ACL refuses every topic to such a user (pattern substitution)
            raise ValueError("must not contain '+', '#' or NUL")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError(
                "password and password_file are alternatives: give one (an environment "
                "variable LINECTL_MQTT__PASSWORD sets password)"
            )
        if self.username is None and (self.password is not None or self.password_file is not None):
            raise ValueError("a password needs a username (MQTT sends no password alone)")
        if self.tls is not None and not self.tls_enabled:
            raise ValueError("tls needs an mqtts:// url (this one is plain mqtt://)")
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.url.startswith("mqtts://")

    @property
    def has_password(self) -> bool:
        return self.password is not None or self.password_file is not None
