"""The simulated battery: drain, charge, full, empty."""

from __future__ import annotations

import pytest

from simulators.robots.battery import Battery, BatteryRates


def test_drain_while_driving_and_standing() -> None:
    b = Battery(50, BatteryRates(drive=1.0, standby=0.1, charge=5.0))
    b.drive(10)
    assert b.charge == pytest.approx(40)
    assert b.stand(10) is False
    assert b.charge == pytest.approx(39)
    b.drive(100)
    assert b.charge == 0 and b.empty and b.low


def test_charging_raises_the_charge_and_stops_when_full() -> None:
    b = Battery(90, BatteryRates(charge=5.0))
    b.charging = True
    assert b.stand(1) is False
    assert b.charge == pytest.approx(95) and b.charging
    assert b.stand(2) is True
    assert b.charge == 100 and not b.charging


def test_set_clamps_to_percent() -> None:
    b = Battery()
    b.set(150)
    assert b.charge == 100 and not b.low
    b.set(-3)
    assert b.empty
    b.set(9.5)
    assert b.low and not b.empty
