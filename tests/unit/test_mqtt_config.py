"""The robot broker settings of a line file: what validation refuses (and that it never repeats a
password), the files checked at load, and the settings every MQTT client is made from."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE, ConfigError, parse
from devices.vda5050.broker import BrokerSettingsError, Login, broker_settings, redact
from devices.vda5050.link import broker_address
from devices.vda5050.master.control import VdaMasterControl
from kernel.clock import ManualClock
from kernel.config.model import LineConfig
from kernel.logs import JsonFormatter
from kernel.metrics import Metrics
from tests.tls_certs import Pki

TEXT = REFERENCE_LINE.read_text()
DEFAULT_MQTT = "mqtt:\n  url: mqtt://127.0.0.1:1883\n"
SECRET = "S3cr3t-Pa55"


def with_mqtt(body: str) -> str:
    """The reference line with ``body`` (YAML lines under ``mqtt:``) as its mqtt section."""
    assert DEFAULT_MQTT in TEXT
    indented = "".join(f"  {line}\n" for line in body.strip("\n").splitlines())
    return TEXT.replace(DEFAULT_MQTT, "mqtt:\n" + indented)


def load_text(text: str, env: dict[str, str] | None = None) -> LineConfig:
    return parse(text, "line.yaml", env or {})


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_text(text, env)
    return info.value.render().splitlines()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path / "pki")


# --- validation --------------------------------------------------------------------------------


def test_credentials_in_the_url_are_refused_with_where_they_go() -> None:
    [msg] = problems(with_mqtt(f"url: mqtt://linectl:{SECRET}@broker.local:1883"))
    assert msg.startswith("line.yaml:") and "mqtt.url:" in msg
    assert "mqtt.username" in msg and "LINECTL_MQTT__PASSWORD" in msg and "password_file" in msg
    assert SECRET not in msg and "linectl:" not in msg


def test_a_url_with_only_a_user_name_is_refused_too() -> None:
    [msg] = problems(with_mqtt("url: mqtts://robot@broker.local"))
    assert "do not go in the URL" in msg


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("tcp://broker:1883", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "names no host"),
        ("mqtt://broker:1883/line", "without a path"),
        ("mqtt://broker:99999", "not a URL"),
    ],
)
def test_malformed_urls_are_refused(url: str, reason: str) -> None:
    [msg] = problems(with_mqtt(f"url: {url}"))
    assert "mqtt.url" in msg and reason in msg


def test_a_client_certificate_needs_its_key_and_the_key_its_certificate() -> None:
    [msg] = problems(with_mqtt("url: mqtts://b:8883\ntls: {cert_file: c.pem}"))
    assert "mqtt.tls" in msg and "key_file is missing" in msg
    [msg] = problems(with_mqtt("url: mqtts://b:8883\ntls: {key_file: k.pem}"))
    assert "cert_file is missing" in msg


def test_tls_settings_need_an_mqtts_url() -> None:
    [msg] = problems(with_mqtt("url: mqtt://b:1883\ntls: {ca_file: ca.pem}"))
    assert "tls needs an mqtts:// url" in msg


def test_a_password_needs_a_user_and_only_one_source(tmp_path: Path) -> None:
    [msg] = problems(with_mqtt(f"password: {SECRET}"))
    assert "needs a username" in msg and SECRET not in msg
    pw = tmp_path / "pw"
    pw.write_text(SECRET)
    [msg] = problems(with_mqtt(f"username: linectl\npassword: {SECRET}\npassword_file: {pw}"))
    assert "alternatives" in msg and SECRET not in msg


def test_an_invalid_password_value_is_not_repeated() -> None:
    [msg] = problems(with_mqtt("username: linectl\npassword: [12345678]"))
    assert "mqtt.password" in msg and "12345678" not in msg


def test_the_password_comes_from_the_environment_as_written() -> None:
    cfg = load_text(with_mqtt("username: linectl"), {"LINECTL_MQTT__PASSWORD": "0123"})
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "0123"
    assert "0123" not in repr(cfg.mqtt) and "0123" not in str(cfg.model_dump())


def test_a_user_name_with_mqtt_wildcards_is_refused() -> None:
    [msg] = problems(with_mqtt("username: 'robot/#'"))
    assert "mqtt.username" in msg and "'+', '#'" in msg


# --- files checked at load (config validate and run alike) -------------------------------------


def test_a_missing_password_file_is_reported_with_its_place(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    [msg] = problems(with_mqtt(f"username: linectl\npassword_file: {missing}"))
    assert "mqtt.password_file" in msg and str(missing) in msg and "cannot read" in msg


def test_an_empty_password_file_is_reported(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    [msg] = problems(with_mqtt(f"username: linectl\npassword_file: {empty}"))
    assert "is empty" in msg


def test_the_password_is_the_first_line_of_its_file(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text(f"{SECRET}\r\nsecond line\n")
    cfg = load_text(with_mqtt(f"username: linectl\npassword_file: {pw}"))
    assert broker_settings(cfg.mqtt).password == SECRET


def test_tls_files_must_exist_and_be_pem(tmp_path: Path, pki: Pki) -> None:
    [msg] = problems(with_mqtt(f"url: mqtts://b:8883\ntls: {{ca_file: {tmp_path / 'no.pem'}}}"))
    assert "mqtt.tls.ca_file" in msg and "cannot read" in msg
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    [msg] = problems(with_mqtt(f"url: mqtts://b:8883\ntls: {{ca_file: {junk}}}"))
    assert "mqtt.tls.ca_file" in msg and "no PEM certificate" in msg
    client = pki.issue("linectl")
    [msg] = problems(
        with_mqtt(
            f"url: mqtts://b:8883\ntls: {{ca_file: {pki.ca}, cert_file: {client.cert}, "
            f"key_file: {tmp_path / 'no.key'}}}"
        )
    )
    assert "mqtt.tls.key_file" in msg and "cannot read" in msg


def test_a_key_that_does_not_fit_the_certificate_is_reported(pki: Pki) -> None:
    one, other = pki.issue("one"), pki.issue("other")
    [msg] = problems(
        with_mqtt(
            f"url: mqtts://b:8883\ntls: {{ca_file: {pki.ca}, cert_file: {one.cert}, "
            f"key_file: {other.key}}}"
        )
    )
    assert "mqtt.tls.cert_file" in msg and "not a PEM certificate and its key" in msg


def test_an_encrypted_key_is_reported_not_prompted_for(pki: Pki) -> None:
    locked = pki.issue("locked", passphrase=b"passphrase")
    [msg] = problems(
        with_mqtt(
            f"url: mqtts://b:8883\ntls: {{ca_file: {pki.ca}, cert_file: {locked.cert}, "
            f"key_file: {locked.key}}}"
        )
    )
    assert "mqtt.tls.key_file" in msg and "encrypted" in msg


def test_config_validate_prints_the_problem_without_the_password(tmp_path: Path) -> None:
    line = tmp_path / "line.yaml"
    line.write_text(with_mqtt(f"url: mqtt://linectl:{SECRET}@10.0.0.5:1883"))
    result = CliRunner().invoke(app, ["config", "validate", str(line)])
    assert result.exit_code == 1
    assert "mqtt.url" in result.output and SECRET not in result.output


# --- the settings every client connects with ----------------------------------------------------


def test_settings_carry_the_login_and_a_verifying_tls_context(tmp_path: Path, pki: Pki) -> None:
    client = pki.issue("linectl")
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    cfg = load_text(
        with_mqtt(
            f"url: mqtts://127.0.0.1\nusername: linectl\npassword_file: {pw}\n"
            f"tls: {{ca_file: {pki.ca}, cert_file: {client.cert}, key_file: {client.key}}}"
        )
    )
    settings = broker_settings(cfg.mqtt)
    assert (settings.host, settings.port, settings.username) == ("127.0.0.1", 8883, "linectl")
    assert settings.password == SECRET
    assert settings.tls_context is not None and settings.tls_context.check_hostname
    assert settings.url == "mqtts://127.0.0.1:8883"
    assert SECRET not in repr(settings) and SECRET not in settings.url
    assert not settings.password_in_clear


def test_a_password_over_plain_mqtt_to_another_host_is_flagged() -> None:
    cfg = load_text(
        with_mqtt("url: mqtt://10.0.0.5\nusername: linectl"), {"LINECTL_MQTT__PASSWORD": SECRET}
    )
    assert broker_settings(cfg.mqtt).password_in_clear
    assert not broker_settings(cfg.mqtt, "mqtt://127.0.0.1:1884").password_in_clear


def test_another_broker_url_is_checked_against_the_tls_settings(pki: Pki) -> None:
    cfg = load_text(with_mqtt(f"url: mqtts://b:8883\ntls: {{ca_file: {pki.ca}}}"))
    with pytest.raises(BrokerSettingsError, match="plain mqtt://"):
        broker_settings(cfg.mqtt, "mqtt://127.0.0.1:1883")
    with pytest.raises(BrokerSettingsError, match="do not go in the URL") as info:
        broker_settings(cfg.mqtt, f"mqtts://u:{SECRET}@b:8883")
    assert SECRET not in str(info.value)
    with pytest.raises(ValueError, match="do not go in the URL") as address:
        broker_address(f"mqtt://u:{SECRET}@b")
    assert SECRET not in str(address.value)


def test_a_robot_login_replaces_user_password_and_client_certificate(
    tmp_path: Path, pki: Pki
) -> None:
    robot = pki.issue("R01")
    pw = tmp_path / "R01.pw"
    pw.write_text("robot-secret\n")
    cfg = load_text(with_mqtt(f"url: mqtts://127.0.0.1\ntls: {{ca_file: {pki.ca}}}"))
    line = broker_settings(cfg.mqtt)
    own = line.with_login(
        Login("R01", password_file=str(pw), cert_file=str(robot.cert), key_file=str(robot.key)),
        cfg.mqtt,
    )
    assert (own.username, own.password) == ("R01", "robot-secret")
    assert own.tls_context is not None and own.tls_context is not line.tls_context
    plain = broker_settings(load_text(TEXT).mqtt)
    with pytest.raises(BrokerSettingsError, match="needs an mqtts:// broker"):
        plain.with_login(Login("R01", cert_file=str(robot.cert), key_file=str(robot.key)), cfg.mqtt)
    with pytest.raises(BrokerSettingsError, match=r"login R01: password_file: cannot read"):
        line.with_login(Login("R01", password_file=str(tmp_path / "none")), cfg.mqtt)


def test_redact_drops_user_and_password() -> None:
    assert redact(f"mqtt://u:{SECRET}@host:1883") == "mqtt://***@host:1883"
    assert redact("mqtts://host:8883") == "mqtts://host:8883"


def test_credentials_in_the_url_from_the_environment_are_refused_too() -> None:
    [msg] = problems(TEXT, {"LINECTL_MQTT__URL": f"mqtt://linectl:{SECRET}@10.0.0.5"})
    assert "mqtt.url" in msg and "do not go in the URL" in msg and SECRET not in msg


def test_master_control_warns_once_when_the_password_would_cross_the_network_readable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = load_text(
        with_mqtt("url: mqtt://10.0.0.5\nusername: linectl"), {"LINECTL_MQTT__PASSWORD": SECRET}
    )
    caplog.set_level(logging.WARNING, logger="devices.vda5050.master")
    VdaMasterControl(cfg, ManualClock(), Metrics(), cfg.mqtt.url)
    [record] = caplog.records
    assert "unencrypted" in record.getMessage()
    assert getattr(record, "url", None) == "mqtt://10.0.0.5:1883"
    assert SECRET not in JsonFormatter().format(record)
