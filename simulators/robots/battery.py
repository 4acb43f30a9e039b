"""The battery of a simulated robot: drain while driving and standing, charge on a charger.

Pure bookkeeping in line seconds; the robot decides when it drives, stands or charges. The
charge is reported as ``batteryState.batteryCharge`` (percent) and ``charging`` as
``batteryState.charging`` (spec 6.10.6).
"""

from __future__ import annotations

from dataclasses import dataclass

DRIVE_DRAIN = 0.005  # percent per line second while driving (about 5.5 h of driving)
STANDBY_DRAIN = 0.001  # percent per line second while standing
CHARGE_RATE = 0.5  # percent per line second on a charger (empty to full in about 3.5 min)
LOW_CHARGE = 10.0  # percent; below this the robot reports a batteryLow warning


@dataclass
class BatteryRates:
    """How fast the battery drains and charges, in percent per line second."""

    drive: float = DRIVE_DRAIN
    standby: float = STANDBY_DRAIN
    charge: float = CHARGE_RATE
    low: float = LOW_CHARGE


class Battery:
    """Charge in percent (0..100) and whether it is charging."""

    def __init__(self, charge: float = 100.0, rates: BatteryRates | None = None) -> None:
        self.rates = rates or BatteryRates()
        self.charge = _clamp(charge)
        self.charging = False

    @property
    def empty(self) -> bool:
        return self.charge <= 0.0

    @property
    def low(self) -> bool:
        return self.charge < self.rates.low

    @property
    def full(self) -> bool:
        return self.charge >= 100.0

    def set(self, percent: float) -> None:
        """Set the charge (a fault or a test scripting a battery level)."""
        self.charge = _clamp(percent)

    def drive(self, seconds: float) -> None:
        """``seconds`` of driving: it drains whether or not a charger is attached."""
        self.charge = _clamp(self.charge - self.rates.drive * seconds)

    def stand(self, seconds: float) -> bool:
        """``seconds`` of standing still: charges if charging, else drains a little.

        Returns True when charging stopped because the battery is full (the vehicle protects
        itself against overcharging, spec 6.8, ``startCharging``).
        """
        if not self.charging:
            self.charge = _clamp(self.charge - self.rates.standby * seconds)
            return False
        self.charge = _clamp(self.charge + self.rates.charge * seconds)
        if self.full:
            self.charging = False
            return True
        return False


def _clamp(percent: float) -> float:
    return min(100.0, max(0.0, float(percent)))
