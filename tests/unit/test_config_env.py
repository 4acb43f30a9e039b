"""Environment overrides (``LINECTL_*``): a problem names the variable, never a line of the file
it did not come from; a secret's value is never repeated; a variable that sets nothing is
warned about, in one line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from controller.linefile.loader import REFERENCE_LINE, SECRET_KEYS, ConfigError, parse
from kernel.config.model import LineConfig

TEXT = REFERENCE_LINE.read_text()
ROOT = Path(__file__).resolve().parents[2]
SECRET = "sh0rt-s3cret"  # too short for a token


def problems(env: dict[str, str], text: str = TEXT) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "line.yaml", env)
    return info.value.render().splitlines()


def test_a_bad_value_names_the_variable_not_a_line_of_the_file() -> None:
    [msg] = problems({"LINECTL_API__PORT": "abc"})
    assert msg.startswith("LINECTL_API__PORT: api.port: Input should be a valid integer"), msg
    assert "line.yaml" not in msg
    [msg] = problems({"LINECTL_API__PROT": "9000"})
    assert msg == "LINECTL_API__PROT: api.prot: unknown field (check the spelling)"
    # a problem of the file itself still names its line
    [msg] = problems({"LINECTL_API__PORT": "9000"}, TEXT.replace("belt_speed: 2.0", "belt_sped: 2"))
    assert msg.startswith("line.yaml:") and "conveyor.belt_sped: unknown field" in msg


def test_a_secret_from_the_environment_is_never_repeated() -> None:
    [msg] = problems({"LINECTL_API_TOKEN": SECRET})
    assert msg == "LINECTL_API_TOKEN: api.tokens.0.token: String should have at least 16 characters"
    env = {"LINECTL_STORE__BACKEND": "postgresql", "LINECTL_STORE__DSN": "[12345, 67890]"}
    [msg] = problems(env)
    assert msg.startswith("LINECTL_STORE__DSN: store.dsn: Input should be a valid string"), msg
    assert "12345" not in msg
    # the same token in the file is not repeated either
    [msg] = problems({}, TEXT.replace("tokens: []", f"tokens: [{{token: {SECRET}}}]"))
    assert msg.startswith("line.yaml:") and "api.tokens.0.token" in msg and SECRET not in msg


def test_every_secret_setting_is_kept_out_of_messages() -> None:
    """Every SecretStr of the model is a key whose value a problem never repeats."""
    found: set[str] = set()

    def walk(model: type[BaseModel]) -> None:
        for name, field in model.model_fields.items():
            kinds = [field.annotation, *typing.get_args(field.annotation)]
            for kind in [k for t in kinds for k in (t, *typing.get_args(t))]:
                if kind is SecretStr:
                    found.add(name)
                elif isinstance(kind, type) and issubclass(kind, BaseModel):
                    walk(kind)

    walk(LineConfig)
    assert found and found <= SECRET_KEYS, found - SECRET_KEYS


def test_the_token_variable_adds_to_the_token_list_variable_in_any_order() -> None:
    env = {
        "LINECTL_API_TOKEN": "a-token-of-sufficient-length",
        "LINECTL_API_TOKENS": '[{token: "reader-token-000000001", scopes: [orders:read]}]',
    }
    cfg = parse(TEXT, "line.yaml", env)
    assert [(t.token, t.name) for t in cfg.api.tokens] == [
        ("reader-token-000000001", None),
        ("a-token-of-sufficient-length", "env"),
    ]


def test_a_variable_that_sets_nothing_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = {
        "LINECTL_CLOCK_TIME_SCALE": "5",  # one underscore where two belong
        # read elsewhere: the command line's controller URL and the test suite's switches
        "LINECTL_API_URL": "http://127.0.0.1:8080",
        "LINECTL_REQUIRE_POSTGRES": "1",
        "LINECTL_TEST_POSTGRES_DSN": "host=127.0.0.1",
        "LINECTL_FAILOVER_SEED": "7",
    }
    with caplog.at_level(logging.WARNING, logger="controller.linefile.loader"):
        parse(TEXT, "line.yaml", env)
    [record] = caplog.records
    assert record.variable == "LINECTL_CLOCK_TIME_SCALE"  # type: ignore[attr-defined]
    assert "LINECTL_CLOCK_TIME_SCALE matches no setting" in record.getMessage()


def test_config_validate_names_the_variable_and_hides_the_secret() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINECTL_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "LINECTL_API_TOKEN": SECRET,
        "LINECTL_API__PORT": "abc",
        "LINECTL_STOER__PATH": "/data/line.db",
        "LINECTL_NO_SUCH_SETTING": "1",
    }
    r = subprocess.run(
        [sys.executable, "-m", "controller.app.cli", "config", "validate", str(REFERENCE_LINE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    lines = r.stderr.splitlines()
    assert sorted(lines) == sorted(
        [
            "environment variable LINECTL_NO_SUCH_SETTING matches no setting and is ignored "
            "(overrides are LINECTL_<SECTION>__<KEY>, for example LINECTL_API__PORT)",
            "LINECTL_API__PORT: api.port: Input should be a valid integer, unable to parse "
            "string as an integer (got 'abc')",
            "LINECTL_API_TOKEN: api.tokens.0.token: String should have at least 16 characters",
            "LINECTL_STOER__PATH: stoer: unknown field (check the spelling)",
        ]
    ), r.stderr
    assert SECRET not in r.stdout + r.stderr
    assert "Traceback" not in r.stderr
