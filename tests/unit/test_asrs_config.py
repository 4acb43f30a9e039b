"""AS/RS rack geometry and the line file's AS/RS section."""

from __future__ import annotations

import pytest

from controller.linefile.loader import REFERENCE_LINE, ConfigError, load, parse
from routing.rack import BadLocation, Location, Rack, parse_location

TEXT = REFERENCE_LINE.read_text()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text, "line.yaml", {})
    return info.value.render().splitlines()


def test_location_ids_round_trip_and_name_their_place() -> None:
    loc = parse_location("A1-L-07-03")
    assert loc == Location("A1", "L", 7, 3) and loc.id == "A1-L-07-03"
    rack = Rack("A1", bays=40, levels=10, bay_width=0.7, level_height=0.5)
    assert rack.position(loc) == pytest.approx((6.5 * 0.7, 2.5 * 0.5))
    assert (rack.length, rack.height) == pytest.approx((28.0, 5.0))
    assert len(list(rack.locations())) == 2 * 40 * 10
    assert len({loc.id for loc in rack.locations()}) == 800


@pytest.mark.parametrize(
    ("location_id", "why"),
    [
        ("A1-07-03", "is not an AS/RS location id"),
        ("A1-X-07-03", "is not an AS/RS location id"),
        ("A2-L-07-03", "is not in aisle A1"),
        ("A1-L-41-03", "bay must be 1..40"),
        ("A1-R-07-00", "level must be 1..10"),
    ],
)
def test_a_location_outside_the_rack_is_named(location_id: str, why: str) -> None:
    with pytest.raises(BadLocation, match=why):
        Rack("A1", bays=40, levels=10).check(location_id)
    with pytest.raises(BadLocation, match="has no side R"):
        Rack("A1", bays=40, levels=10, sides=1).check("A1-R-01-01")


def test_the_reference_line_stores_two_totes_per_sku() -> None:
    cfg = load(REFERENCE_LINE, env={})
    assert [a.sides for a in cfg.asrs.aisles] == [2, 2]
    per_sku: dict[str, int] = {}
    for tote in cfg.asrs.totes:
        per_sku[tote.sku] = per_sku.get(tote.sku, 0) + 1
    assert set(per_sku.values()) == {2} and len(per_sku) == len(cfg.skus)


def test_totes_in_unknown_or_shared_locations_are_reported() -> None:
    first = load(REFERENCE_LINE, env={}).asrs.totes[0]
    second = load(REFERENCE_LINE, env={}).asrs.totes[1]
    bad = TEXT.replace(f"location: {second.location}", f"location: {first.location}").replace(
        "tote: AS-0003, location: ", "tote: AS-0003, location: A9-"
    )
    out = problems(bad)
    assert any("asrs.totes.1.location" in m and "holds another tote" in m for m in out)
    assert any("asrs.totes.2.location" in m for m in out)


def test_class_shares_must_add_up() -> None:
    bad = TEXT.replace(
        "class_location_shares: [0.2, 0.3, 0.5]", "class_location_shares: [0.2, 0.3]"
    )
    out = problems(bad)
    assert any("asrs.class_location_shares" in m and "add up to 1" in m for m in out)
    assert any("asrs.class_turnover_shares" in m and "3 classes" in m for m in out)


def test_replenishment_band_must_be_a_band() -> None:
    bad = TEXT.replace(
        "- {location: L01A, sku: SKU-0001, quantity: 2000}",
        "- {location: L01A, sku: SKU-0001, quantity: 2000, replenish_below: 50, replenish_to: 40}",
    )
    [msg] = problems(bad)
    assert "stock.0.replenish_to" in msg and "above replenish_below (50)" in msg


def test_replenishment_needs_a_replenishment_chute() -> None:
    bad = TEXT.replace("      - {id: D10, zone: Z17, chute: REPL}\n", "").replace(
        "      - {id: REPL, kind: replenishment, capacity: 20, drain_seconds: 15}\n", ""
    )
    out = problems(bad)
    assert len(out) == 2  # L32A and L32B
    assert all("replenish_below" in m and "kind replenishment" in m for m in out)


def test_a_replenishment_chute_is_not_a_sort_destination() -> None:
    bad = TEXT.replace("      DHL: CH-DHL\n", "      DHL: REPL\n")
    [msg] = problems(bad)
    assert "sort_plan.DHL" in msg and "replenishment chute" in msg
