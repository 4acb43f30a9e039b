"""The robot logins file of ``linectl sim robots --logins``: every robot logs in as itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from simulators.robots.logins import LoginsError, load_logins

FLEET = ["R01", "R02"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "logins.yaml"
    path.write_text(text)
    return path


def test_user_names_default_to_the_serial_number(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "robots:\n  R01: {password: pw-R01-x}\n  R02: {username: robot-2, password_file: r2.pw}\n",
    )
    logins = load_logins(path, FLEET)
    assert (logins["R01"].username, logins["R01"].password) == ("R01", "pw-R01-x")
    assert (logins["R02"].username, logins["R02"].password_file) == ("robot-2", "r2.pw")
    assert "pw-R01-x" not in repr(logins["R01"])


def test_every_robot_needs_a_login_and_every_login_a_robot(tmp_path: Path) -> None:
    with pytest.raises(LoginsError, match="missing: R02"):
        load_logins(write(tmp_path, "robots:\n  R01: {password: one}\n"), FLEET)
    text = "robots:\n  R01: {password: a}\n  R02: {password: b}\n  R09: {password: c}\n"
    with pytest.raises(LoginsError, match="not in the line's fleet: R09"):
        load_logins(write(tmp_path, text), FLEET)


def test_a_bad_entry_is_named_without_repeating_its_password(tmp_path: Path) -> None:
    text = "robots:\n  R01: {password: hunter22, password_file: x}\n  R02: {passwrd: hunter33}\n"
    with pytest.raises(LoginsError) as info:
        load_logins(write(tmp_path, text), FLEET)
    message = str(info.value)
    assert "robots.R01" in message and "alternatives" in message
    assert "robots.R02.passwrd" in message
    assert "hunter22" not in message and "hunter33" not in message


def test_unreadable_and_malformed_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(LoginsError, match="cannot read"):
        load_logins(tmp_path / "none.yaml", FLEET)
    with pytest.raises(LoginsError, match="not valid YAML"):
        load_logins(write(tmp_path, "robots: [unclosed\n"), FLEET)
    with pytest.raises(LoginsError, match=r"\(document\)|robots"):
        load_logins(write(tmp_path, "- just a list\n"), FLEET)


def test_sim_robots_refuses_a_logins_file_that_misses_a_robot(tmp_path: Path) -> None:
    path = write(tmp_path, "robots:\n  R01: {password: one}\n")
    result = CliRunner().invoke(app, ["sim", "robots", "--logins", str(path)])
    assert result.exit_code == 1
    assert "--logins" in result.output and "missing: R02" in result.output
