"""``linectl asrs estimate``: the table, the JSON and the refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app

REFERENCE = Path(__file__).parents[2] / "examples" / "reference-line.yaml"
RACK = ["--length", "28", "--height", "5", "--vx", "4", "--vy", "1"]

runner = CliRunner()


def estimate(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, ["asrs", "estimate", *args])
    return r.exit_code, r.stdout, r.stderr


def test_table() -> None:
    code, out, _ = estimate(*RACK, "--samples", "2000", "--pd", "5")
    assert code == 0, out
    assert "AS/RS A1: 40 bays x 10 levels (28.00 m x 5.00 m)" in out
    for row in ("Bozer-White", "rack grid", "Monte Carlo", "MC vs model"):
        assert row in out
    assert "18.19" in out and "31.03" in out  # the model's single and dual cycle
    assert "b = 0.714" in out


def test_json() -> None:
    code, out, _ = estimate(*RACK, "--samples", "5000", "--seed", "3", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["rack"]["bays"] == 40 and doc["rack"]["levels"] == 10
    assert doc["crane"]["pd_time_s"] == 5.0  # the default
    bw = doc["bozer_white"]
    assert bw["shape_b"] == pytest.approx(5 / 7)
    assert bw["single"]["mean_s"] == pytest.approx(7 * (1 + (5 / 7) ** 2 / 3) + 10)
    assert bw["dual"]["loads_per_hour"] == pytest.approx(2 * bw["dual"]["cycles_per_hour"])
    mc = doc["monte_carlo"]
    assert mc["samples"] == 5000 and mc["seed"] == 3
    low, high = mc["dual"]["ci95_s"]
    assert low < mc["dual"]["mean_s"] < high
    assert abs(doc["monte_carlo_vs_bozer_white"]["single"]) < 0.02
    assert abs(doc["monte_carlo_vs_bozer_white"]["dual"]) < 0.02
    assert doc["model_assumes_constant_speeds"] is False
    # seeded: the same run twice prints the same figures
    assert estimate(*RACK, "--samples", "5000", "--seed", "3", "--json")[1] == out


def test_explicit_grid_and_acceleration() -> None:
    code, out, _ = estimate(
        *RACK, "--bays", "20", "--levels", "5", "--ax", "0.5", "--ay", "0.4", "--json",
        "--samples", "500",
    )  # fmt: skip
    assert code == 0
    doc = json.loads(out)
    assert (doc["rack"]["bays"], doc["rack"]["bay_width_m"]) == (20, 1.4)
    assert doc["model_assumes_constant_speeds"] is True
    assert doc["grid"]["single"]["mean_s"] > doc["bozer_white"]["single"]["mean_s"]


def test_rack_and_crane_from_a_line_file() -> None:
    code, out, _ = estimate(
        "--config", str(REFERENCE), "--aisle", "A2", "--json", "--samples", "500"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["rack"]["aisle"] == "A2" and doc["rack"]["bays"] == 40
    assert doc["crane"] == {
        "speed_x": 4.0,
        "speed_y": 1.0,
        "accel_x": 0.0,
        "accel_y": 0.0,
        "pd_time_s": 5.0,
    }
    # a crane value given on the command line replaces the file's
    code, out, _ = estimate("--config", str(REFERENCE), "--ax", "1", "--json", "--samples", "500")
    assert code == 0 and json.loads(out)["crane"]["accel_x"] == 1.0
    assert json.loads(out)["rack"]["aisle"] == "A1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--length", "0", "--height", "5", "--vx", "4", "--vy", "1"], "length must be a positive"),
        (["--length", "28", "--height", "5", "--vx", "-4", "--vy", "1"], "--vx must be a positive"),
        (["--length", "28", "--height", "5", "--vx", "4", "--vy", "0"], "--vy must be a positive"),
        ([*RACK, "--ax", "-1"], "--ax must be zero or more"),
        ([*RACK, "--pd", "-1"], "--pd must be zero or more"),
        ([*RACK, "--bays", "0"], "at least 1"),
        (["--length", "28", "--vx", "4"], "give --height, --vy"),
        ([*RACK, "--aisle", "A1"], "--aisle needs --config"),
        (["--config", str(REFERENCE), "--aisle", "A9"], "aisle 'A9' is not in the line file"),
        (["--config", str(REFERENCE), "--length", "10"], "--length cannot be used with --config"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error(args: list[str], message: str) -> None:
    code, out, err = estimate(*args)
    assert code == 2
    assert message in " ".join(err.split())
    assert out == ""


def test_unusable_line_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "line.yaml"
    bad.write_text("asrs: [\n")
    code, _, err = estimate("--config", str(bad))
    assert code == 2 and "line.yaml" in err
    code, _, err = estimate("--config", str(tmp_path / "missing.yaml"))
    assert code == 2 and "missing.yaml" in err


def test_samples_below_two_are_refused() -> None:
    code, _, err = estimate(*RACK, "--samples", "1")
    assert code == 2 and "--samples" in err
