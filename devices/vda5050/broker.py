"""How every linectl MQTT client reaches the robot broker: the one place that turns the line's
``mqtt`` settings into a connected client (address, login, TLS).

Master control, ``linectl devices check`` and the simulated robots all connect through
:func:`broker_settings` and :meth:`BrokerSettings.client`. The password file and the TLS files
are read when the settings are made (at start); a problem there is a :class:`BrokerSettingsError`
naming the setting and the file. Only :attr:`BrokerSettings.url` (never carrying a password) is
meant for logs and messages.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import aiomqtt

from devices.vda5050.mqtt_client import BrokerClient
from kernel.config.mqtt import MqttConfig, url_problem
from kernel.config.mqtt_files import MqttFileError, password, read_password_file, tls_context


class BrokerSettingsError(ValueError):
    """Broker settings that cannot be used; the message says which and why (no password)."""


@dataclass(frozen=True)
class Login:
    """One client's own login, replacing the line's (a simulated robot's, for example).
    ``password_file`` is read like ``mqtt.password_file``; ``cert_file``/``key_file`` replace
    the client certificate of ``mqtt.tls``."""

    username: str
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class BrokerSettings:
    """Everything a client needs to connect, resolved and checked."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)
    tls_context: ssl.SSLContext | None = field(repr=False)

    @property
    def tls(self) -> bool:
        return self.tls_context is not None

    @property
    def url(self) -> str:
        """The broker as an URL for logs: scheme, host and port only."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"

    @property
    def password_in_clear(self) -> bool:
        """A password would cross the network unencrypted (plain mqtt:// to another host)."""
        if self.password is None or self.tls:
            return False
        if self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name
            return True

    @property
    def who(self) -> str:
        """The login for logs: the user name, or anonymous."""
        return self.username if self.username is not None else "(anonymous)"

    def client(
        self,
        identifier: str,
        *,
        keepalive: int = 60,
        will: aiomqtt.Will | None = None,
        timeout: float | None = None,
    ) -> BrokerClient:
        """A client for one connection (``async with`` connects it); ``timeout`` in seconds
        for the broker's answers (aiomqtt's default when None)."""
        return BrokerClient(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=identifier,
            keepalive=keepalive,
            will=will,
            tls_context=self.tls_context,
            timeout=timeout,
        )

    def with_login(self, login: Login, mqtt: MqttConfig) -> BrokerSettings:
        """The same broker with ``login``'s user, password and client certificate."""
        try:
            secret = login.password
            if secret is None and login.password_file is not None:
                secret = read_password_file(login.password_file)
            context = self.tls_context
            if self.tls and login.cert_file is not None:
                context = tls_context(mqtt, login.cert_file, login.key_file)
        except MqttFileError as exc:
            raise BrokerSettingsError(
                f"login {login.username}: {exc.setting}: {exc.reason}"
            ) from None
        if login.cert_file is not None and not self.tls:
            raise BrokerSettingsError(
                f"login {login.username}: a client certificate needs an mqtts:// broker "
                f"({self.url})"
            )
        return replace(self, username=login.username, password=secret, tls_context=context)


def broker_settings(mqtt: MqttConfig, url: str | None = None) -> BrokerSettings:
    """The settings of ``mqtt``, at ``url`` instead of ``mqtt.url`` when given (an embedded or
    a command-line broker). Reads the password file and the TLS files."""
    target = mqtt.url if url is None else url
    problem = url_problem(target)
    if problem is not None:
        raise BrokerSettingsError(f"broker URL {redact(target)}: {problem}")
    parts = urlsplit(target)
    tls = parts.scheme == "mqtts"
    if mqtt.tls is not None and not tls:
        raise BrokerSettingsError(
            f"mqtt.tls is set but the broker URL {redact(target)} is plain mqtt://; "
            "use mqtts:// (or remove mqtt.tls)"
        )
    try:
        secret = password(mqtt)
        context = tls_context(mqtt) if tls else None
    except MqttFileError as exc:
        raise BrokerSettingsError(str(exc)) from None
    return BrokerSettings(
        host=parts.hostname or "",
        port=parts.port or (8883 if tls else 1883),
        username=mqtt.username,
        password=secret,
        tls_context=context,
    )


def redact(url: str) -> str:
    """``url`` without a user name or password, for logs and messages."""
    try:
        parts = urlsplit(url)
        if parts.username is None and parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[-1]
        return parts._replace(netloc=f"***@{netloc}").geturl()
    except ValueError:
        return "(an unreadable URL)"
