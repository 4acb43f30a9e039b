"""Operator-written YAML within limits: alias bombs, deep nesting, duplicate keys, huge files."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE, ConfigError, load, parse
from kernel.config import safe_yaml
from kernel.config.safe_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES, YamlRefused
from simulators.robots.script import FaultScriptError, load_script, parse_script

TEXT = REFERENCE_LINE.read_text()


def laughs(levels: int = 9, width: int = 9) -> str:
    """The classic alias bomb: each level refers to the one before ``width`` times."""
    out = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels):
        out.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(out) + "\n"


def refused(text: str) -> list[safe_yaml.YamlProblem]:
    with pytest.raises(YamlRefused) as caught:
        safe_yaml.load(text)
    return caught.value.problems


def config_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, "line.yaml", {})
    return caught.value.render().splitlines()


def test_an_alias_bomb_is_refused_without_expanding_it() -> None:
    bomb = laughs()
    assert len(bomb) < 600  # 9**9 = 387 million strings once expanded
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    [problem] = refused(bomb)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert f"more than {MAX_NODES:,} nodes once aliases are expanded" in problem.message
    assert problem.line == 7  # the alias that crosses the budget
    assert grown_kib < 200 * 1024
    [msg] = config_problems(bomb)
    assert msg.startswith("line.yaml:7: (document): more than")


def test_aliases_within_the_budget_are_expanded() -> None:
    doc = safe_yaml.load("base: &b {speed: 1.5, lhd: fork}\nmodels:\n  a: *b\n  b: {<<: *b}\n")
    assert doc.data["models"] == {"a": {"speed": 1.5, "lhd": "fork"}, "b": doc.data["base"]}
    assert doc.lines[("models", "a")] == 3
    # paths inside a block reached through an alias are located at the alias
    assert ("models", "a", "speed") not in doc.lines and doc.lines[("base", "speed")] == 1


def test_an_alias_cycle_is_refused() -> None:
    [problem] = refused("a: &x [1, *x]\n")
    assert "refers to the collection it is part of" in problem.message


def test_deep_nesting_is_refused_before_the_stack_overflows() -> None:
    [problem] = refused("[" * 50_000 + "]" * 50_000)
    assert problem.message == f"nesting deeper than {MAX_DEPTH} levels"
    safe_yaml.load("[" * MAX_DEPTH + "]" * MAX_DEPTH)  # the limit itself is fine
    deep_map = "".join(f"{'  ' * i}k{i}:\n" for i in range(MAX_DEPTH + 1)) + "  " * 65 + "x: 1\n"
    [problem] = refused(deep_map)
    assert problem.line == MAX_DEPTH + 1


def test_nesting_through_aliases_counts() -> None:
    half = MAX_DEPTH // 2 + 1
    text = "a: &a " + "[" * half + "]" * half + "\nb: " + "[" * half + "*a" + "]" * half + "\n"
    [problem] = refused(text)
    assert "through an alias" in problem.message and problem.line == 2


def test_duplicate_keys_name_both_lines() -> None:
    problems = refused("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\na: 4\n")
    assert [(p.line, p.path, p.message) for p in problems] == [
        (5, ("b",), "duplicate key 'x' (first at line 3)"),
        (6, (), "duplicate key 'a' (first at line 1)"),
    ]


def test_a_duplicate_key_in_the_line_file() -> None:
    lines = TEXT.splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("  belt_speed:"))
    bad = "".join([*lines[: at + 1], "  belt_speed: 9.0\n", *lines[at + 1 :]])
    [msg] = config_problems(bad)
    assert msg == (
        f"line.yaml:{at + 2}: conveyor: duplicate key 'belt_speed' (first at line {at + 1})"
    )


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(ConfigError) as caught:
        load(big, env={})
    assert caught.value.render() == f"{big}: (document): larger than 4 MB; refused"
    assert len(refused("x" * (MAX_BYTES + 1))) == 1


def test_environment_overrides_use_the_same_limits() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(TEXT, "line.yaml", {"LINECTL_API__PORT": laughs()})
    assert caught.value.render().startswith("LINECTL_API__PORT:7: (document): more than")


def test_cli_validate_reports_a_bomb_and_a_duplicate(tmp_path: Path) -> None:
    runner = CliRunner()
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(laughs())
    res = runner.invoke(app, ["config", "validate", str(bomb)])
    assert res.exit_code == 1 and "once aliases are expanded" in res.output
    assert "Traceback" not in res.output
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    res = runner.invoke(app, ["config", "validate", str(deep)])
    assert res.exit_code == 1 and "nesting deeper than" in res.output
    assert res.output.startswith(f"{deep}:1:")


def test_fault_scripts_use_the_same_loader(tmp_path: Path) -> None:
    with pytest.raises(FaultScriptError) as caught:
        parse_script(
            "- {at: 1, robot: R01, fault: freeze_state, for: 2, at: 3}\n", "f.yaml", ["R01"]
        )
    assert caught.value.problems == ["f.yaml:1: [0]: duplicate key 'at' (first at line 1)"]
    with pytest.raises(FaultScriptError) as caught:
        parse_script(laughs(), "f.yaml", ["R01"])
    assert caught.value.problems[0].startswith("f.yaml:7: more than")
    big = tmp_path / "faults.yaml"
    big.write_text("#\n" * (MAX_BYTES // 2 + 1))
    with pytest.raises(FaultScriptError, match="larger than 4 MB"):
        load_script(big, ["R01"])


def test_an_environment_value_that_is_not_yaml_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(TEXT, "line.yaml", {"LINECTL_API_TOKENS": "[unclosed"})
    assert caught.value.render().startswith("LINECTL_API_TOKENS:1: (document): not valid YAML")
