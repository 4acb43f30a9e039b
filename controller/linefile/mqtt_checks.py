"""Checks of the robot broker settings that need the files they name: the password file is
readable and holds a password, the TLS files are readable PEM and the key fits the certificate.
A line file that passes them connects with the same files at start (or fails on the broker)."""

from __future__ import annotations

from controller.linefile.checks import Issue
from kernel.config.mqtt import MqttConfig
from kernel.config.mqtt_files import MqttFileError, read_password_file, tls_context


def mqtt_files(mqtt: MqttConfig) -> list[Issue]:
    """Every file of ``mqtt`` that ``linectl run`` could not use."""
    issues: list[Issue] = []
    if mqtt.password_file is not None:
        try:
            read_password_file(mqtt.password_file)
        except MqttFileError as exc:
            issues.append(_issue(exc))
    if mqtt.tls_enabled:
        try:
            tls_context(mqtt)
        except MqttFileError as exc:
            issues.append(_issue(exc))
    return issues


def _issue(exc: MqttFileError) -> Issue:
    return Issue(("mqtt", *exc.setting.split(".")), exc.reason)
