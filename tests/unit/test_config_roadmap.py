"""``config validate`` refuses the maps ``run`` could not use: places robots cannot reach or
leave, and maps too large for the controller's route tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.app.cli.main import app
from controller.linefile.loader import REFERENCE_LINE, ConfigError, parse
from routing.roadmap import MAX_NODES, MapTooLarge, Node, Roadmap

TEXT = REFERENCE_LINE.read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "line.yaml", {})
    return info.value.render().splitlines()


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def with_nodes(text: str, nodes: Sequence[str], edges: Sequence[str] = ()) -> str:
    """``text`` with extra map nodes (and edges) appended to robots.nodes (and robots.edges)."""
    text = text.replace("  edges:\n", "".join(f"    - {n}\n" for n in nodes) + "  edges:\n", 1)
    return text.replace(
        "  storage_locations:\n",
        "".join(f"    - {e}\n" for e in edges) + "  storage_locations:\n",
        1,
    )


def test_a_storage_location_on_an_island() -> None:
    bad = with_nodes(TEXT, ["{id: ISLAND, x: 50, y: 50}"]).replace(
        "- {id: L01B, node: G01}", "- {id: L01B, node: ISLAND}"
    )
    [msg] = problems(bad)
    assert msg == (
        f"line.yaml:{line_of(bad, 'node: ISLAND}')}: robots.storage_locations.1.node: "
        "storage location 'L01B' is on node 'ISLAND', which no route leads to from home node "
        "'P1' of robot 'R01'"
    )


def test_a_one_way_dead_end() -> None:
    """Robots can drive to the node but never leave it: a trip there would strand the robot."""
    bad = with_nodes(
        TEXT, ["{id: TRAP, x: 0, y: 15}"], ["{start: G04, end: TRAP, bidirectional: false}"]
    ).replace("- {id: CHARGER1, node: CHG1}", "- {id: CHARGER1, node: TRAP}")
    [msg] = problems(bad)
    assert (
        "robots.chargers.0.node: charger 'CHARGER1' is on node 'TRAP', from which no route " in msg
    )
    assert msg.endswith("leads back to home node 'P1' of robot 'R01'")


def test_one_way_edges_that_form_a_loop_are_fine() -> None:
    good = with_nodes(
        TEXT,
        ["{id: LOOP, x: 0, y: 15}"],
        [
            "{start: G04, end: LOOP, bidirectional: false}",
            "{start: LOOP, end: G14, bidirectional: false}",
        ],
    ).replace("- {id: L01B, node: G01}", "- {id: L01B, node: LOOP}")
    cfg = parse(good, "line.yaml", {})
    assert any(loc.node == "LOOP" for loc in cfg.robots.storage_locations)


def test_inductions_and_home_nodes_are_checked() -> None:
    bad = with_nodes(TEXT, ["{id: FAR, x: 90, y: 90}"])
    for old, new, path in (
        ("{id: INDUCT1, node: IND1,", "{id: INDUCT1, node: FAR,", "robots.inductions.0.node"),
        ("home: P2}", "home: FAR}", "robots.fleet.1.home"),
    ):
        [msg] = problems(bad.replace(old, new, 1))
        assert msg.split(": ", 2)[1] == path and "node 'FAR', which no route leads to" in msg


def test_a_map_over_the_node_limit_is_refused_with_the_limit(tmp_path: Path) -> None:
    n = MAX_NODES + 1
    nodes = [f"{{id: N{i}, x: {i}, y: 100}}" for i in range(n)]
    big = with_nodes(TEXT, nodes)
    [msg] = problems(big)
    total = n + len(parse(TEXT, "line.yaml", {}).robots.nodes)
    assert msg.startswith(f"line.yaml:{line_of(big, '  nodes:')}: robots.nodes: {total} nodes")
    assert f"more than the {MAX_NODES} a map may have" in msg and "GiB" in msg
    path = tmp_path / "big.yaml"
    path.write_text(big)
    res = CliRunner().invoke(app, ["config", "validate", str(path)])
    assert res.exit_code == 1 and "a map may have" in res.output


def test_the_route_tables_refuse_what_validation_refuses() -> None:
    nodes = tuple(Node(f"N{i}", float(i), 0.0, "m") for i in range(MAX_NODES + 1))
    with pytest.raises(MapTooLarge, match=f"at most {MAX_NODES}"):
        Roadmap(nodes=nodes, edges=())
