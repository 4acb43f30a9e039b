from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE, ConfigError, load, parse

TEXT = REFERENCE_LINE.read_text()


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "line.yaml", env or {})
    return info.value.render().splitlines()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_reference_line_is_valid() -> None:
    cfg = load(REFERENCE_LINE, env={})
    assert len(cfg.robots.fleet) >= 4
    assert len(cfg.robots.inductions) == 2
    assert len(cfg.conveyor.sorter.chutes) >= 8
    assert {r.version for r in cfg.robots.fleet} == {"2.0.0", "2.1.0"}


def test_dangling_node_reference_names_the_line() -> None:
    bad = TEXT.replace("- {start: CHG1, end: G00}", "- {start: CHG1, end: G99}")
    msg, cut_off = problems(bad)
    assert msg.startswith(f"line.yaml:{line_of(bad, 'end: G99')}: robots.edges.")
    assert "'G99' is not a node" in msg
    # that edge was the charger's only link to the rest of the map
    assert "robots.chargers.0.node: charger 'CHARGER1' is on node 'CHG1', which no" in cut_off


def test_divert_to_missing_chute_and_duplicate_ids_all_reported() -> None:
    bad = TEXT.replace("chute: CH-UPS}", "chute: CH-NOPE}").replace(
        "- {id: L01B, node: G01}", "- {id: L01A, node: G01}"
    )
    out = problems(bad)
    assert any("conveyor.sorter.diverts.1.chute" in m and "CH-NOPE" in m for m in out)
    assert any("duplicate storage location id 'L01A'" in m for m in out)
    assert all(m.startswith("line.yaml:") and m.split(":")[1].isdigit() for m in out)


def test_rack_with_zero_levels() -> None:
    bad = TEXT.replace("levels: 10", "levels: 0", 1)
    [msg] = problems(bad)
    assert msg.startswith(f"line.yaml:{line_of(bad, 'levels: 0')}: asrs.aisles.0.levels:")
    assert "greater than or equal to 1 (got 0)" in msg


def test_robot_with_unknown_home_is_explained() -> None:
    bad = TEXT.replace("home: P1}", "home: NOWHERE}")
    [msg] = problems(bad)
    assert "robots.fleet.0.home" in msg and "'NOWHERE'" in msg
    assert msg.startswith(f"line.yaml:{line_of(bad, 'NOWHERE')}:")


def test_unknown_field_and_bad_yaml() -> None:
    [msg] = problems(TEXT.replace("  belt_speed: 2.0", "  belt_sped: 2.0"))
    assert "conveyor.belt_sped: unknown field" in msg
    [msg] = problems("robots: [unclosed\n")
    assert "not valid YAML" in msg and msg.startswith("line.yaml:")


def test_environment_overrides() -> None:
    env = {
        "LINECTL_STORE__PATH": "/tmp/x.db",
        "LINECTL_API__PORT": "9123",
        "LINECTL_API_TOKEN": "a-token-of-sufficient-length",
    }
    cfg = parse(TEXT, "line.yaml", env)
    assert cfg.store.path == "/tmp/x.db"
    assert cfg.api.port == 9123
    assert cfg.api.tokens[0].token == "a-token-of-sufficient-length"
    assert set(cfg.api.tokens[0].scopes) == {"orders:write", "orders:read", "line:operate"}
    out = problems(TEXT, {"LINECTL_API__PORT": "not-a-port"})
    assert any("api.port" in m for m in out)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "validate", str(REFERENCE_LINE)])
    assert ok.exit_code == 0, ok.output
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEXT.replace("reject_chute: REJECT", "reject_chute: NOPE"))
    res = runner.invoke(app, ["config", "validate", str(broken)])
    assert res.exit_code == 1
    assert f"{broken}:" in res.output and "reject chute 'NOPE'" in res.output
    missing = runner.invoke(app, ["config", "validate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1 and "cannot read file" in missing.output


def test_api_tokens_override_replaces_the_list() -> None:
    env = {"LINECTL_API_TOKENS": '[{token: "reader-token-000000001", scopes: [orders:read]}]'}
    cfg = parse(TEXT, "line.yaml", env)
    assert [(t.token, t.scopes) for t in cfg.api.tokens] == [
        ("reader-token-000000001", ["orders:read"])
    ]
    out = problems(TEXT, {"LINECTL_API_TOKENS": '[{token: "short"}]'})
    assert any("api.tokens.0.token" in m for m in out)


# --- sort plan: one or more chutes per destination, B2B allocation ------------------------------

PLAN_DHL = "      DHL: CH-DHL\n"


def test_sort_plan_takes_a_chute_or_a_list_of_chutes() -> None:
    cfg = parse(TEXT.replace(PLAN_DHL, "      DHL: [CH-DHL, CH-POST]\n"), "line.yaml", {})
    plan = cfg.conveyor.sorter.sort_plan
    assert plan["DHL"] == ("CH-DHL", "CH-POST")
    assert plan["UPS"] == ("CH-UPS",)


def test_reference_line_allocates_b2b_chutes_dynamically() -> None:
    alloc = load(REFERENCE_LINE, env={}).conveyor.sorter.b2b_allocation
    assert (alloc.mode, alloc.chutes, alloc.overflow) == ("dynamic", ("VAS-1", "VAS-2"), "static")


def test_sort_plan_entry_errors_are_each_explained() -> None:
    bad = TEXT.replace(PLAN_DHL, "      DHL: [CH-DHL, CH-DHL, CH-NOPE, REJECT]\n      EMPTY: []\n")
    out = problems(bad)
    assert any("sort_plan.DHL.1" in m and "'CH-DHL' is listed twice" in m for m in out)
    assert any("sort_plan.DHL.2" in m and "'CH-NOPE', which is not in" in m for m in out)
    assert any("sort_plan.DHL.3" in m and "which is the reject chute" in m for m in out)
    assert any("sort_plan.EMPTY" in m and "names no chute" in m for m in out)
    assert len(out) == 4, out


def test_sort_plan_chute_without_divert() -> None:
    bad = TEXT.replace("      - {id: D6, zone: Z13, chute: CH-POST}\n", "")
    out = problems(bad)
    assert any("sort_plan.POST" in m and "which no divert leads to" in m for m in out)


def test_b2b_allocation_pool_errors() -> None:
    pool = "      chutes: [VAS-1, VAS-2]\n"
    out = problems(TEXT.replace(pool, "      chutes: [VAS-1, CH-DHL, VAS-1, GHOST]\n"))
    assert any("b2b_allocation.chutes.1" in m and "must be of kind b2b" in m for m in out)
    assert any("b2b_allocation.chutes.2" in m and "listed twice" in m for m in out)
    assert any("b2b_allocation.chutes.3" in m and "'GHOST', which is not in" in m for m in out)
    [msg] = problems(TEXT.replace(pool, "      chutes: []\n"))
    assert "b2b_allocation.chutes" in msg and "at least one chute" in msg
    [msg] = problems(TEXT.replace("      mode: dynamic\n", "      mode: static\n"))
    assert "a chute pool needs mode dynamic" in msg
    [msg] = problems(TEXT.replace("      mode: dynamic\n", "      mode: sometimes\n"))
    assert "b2b_allocation.mode" in msg


def test_plan_entry_mixing_pool_and_other_chutes_is_refused() -> None:
    bad = TEXT.replace("      CUST-ACME: VAS-1\n", "      CUST-ACME: [VAS-1, CH-POST]\n")
    [msg] = problems(bad)
    assert "sort_plan.CUST-ACME" in msg and "mixes B2B pool chutes with others" in msg
