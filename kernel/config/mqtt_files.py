"""The files the robot broker link reads: the password file and the TLS files (CA, client
certificate and key), turned into a password and an :class:`ssl.SSLContext`.

The line loader calls these to check a line file (so ``linectl config validate`` reports what
``linectl run`` would fail on), and every broker client calls them at start. Every problem is a
:class:`MqttFileError` naming the setting and the file, never the password.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from kernel.config.mqtt import MqttConfig

MAX_PASSWORD_BYTES = 65535  # the MQTT limit of a password field


@dataclass(frozen=True)
class MqttFileError(ValueError):
    """A file of the broker settings that cannot be used: which setting, and why."""

    setting: str  # for example "password_file" or "tls.cert_file"
    reason: str

    def __str__(self) -> str:
        return f"mqtt.{self.setting}: {self.reason}"


class _EncryptedKey(Exception):
    """The key file asks for a passphrase; raised instead of prompting on the terminal."""


def read_password_file(path: str, setting: str = "password_file") -> str:
    """The password in ``path``: its first line, without the line break. Surrounding spaces
    are kept (they may be part of the password)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MqttFileError(setting, f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_PASSWORD_BYTES + 2:
        raise MqttFileError(setting, f"{path} is not a password file (over 64 KiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MqttFileError(setting, f"{path} is not UTF-8 text") from None
    password = text.splitlines()[0] if text else ""
    if not password:
        raise MqttFileError(setting, f"{path} is empty (the password is its first line)")
    return password


def password(mqtt: MqttConfig) -> str | None:
    """The password of ``mqtt``: the value itself, from the password file, or None."""
    if mqtt.password is not None:
        return mqtt.password.get_secret_value()
    if mqtt.password_file is not None:
        return read_password_file(mqtt.password_file)
    return None


def _refuse_passphrase() -> str:
    raise _EncryptedKey


def tls_context(
    mqtt: MqttConfig, cert_file: str | None = None, key_file: str | None = None
) -> ssl.SSLContext:
    """The TLS context for ``mqtt`` (an ``mqtts://`` broker): the broker verified against
    ``tls.ca_file`` or the system's CA store, host name checked, TLS 1.2 at least, and the
    client certificate of ``tls`` (or ``cert_file``/``key_file``, one robot's own) presented."""
    tls = mqtt.tls
    ca_file = tls.ca_file if tls is not None else None
    if cert_file is None and key_file is None and tls is not None:
        cert_file, key_file = tls.cert_file, tls.key_file
        cert_setting, key_setting = "tls.cert_file", "tls.key_file"
    else:
        cert_setting, key_setting = "cert_file", "key_file"
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    except ssl.SSLError:  # before OSError, of which it is one
        raise MqttFileError(
            "tls.ca_file", f"{ca_file} holds no PEM certificate (a CA or the broker's own)"
        ) from None
    except OSError as exc:
        raise MqttFileError("tls.ca_file", f"cannot read {ca_file}: {exc.strerror}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is None or key_file is None:
        return context
    for setting, path in ((cert_setting, cert_file), (key_setting, key_file)):
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise MqttFileError(setting, f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        context.load_cert_chain(cert_file, key_file, password=_refuse_passphrase)
    except _EncryptedKey:
        raise MqttFileError(
            key_setting,
            f"{key_file} is encrypted; give the key unencrypted (readable only "
            "by the service's user)",
        ) from None
    except ssl.SSLError as exc:
        raise MqttFileError(
            cert_setting,
            f"{cert_file} and {key_file} are not a PEM certificate and its key "
            f"({exc.reason or exc})",
        ) from None
    return context
