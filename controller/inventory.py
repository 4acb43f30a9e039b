"""Stock the dispatcher may still allocate, per SKU and location (in memory)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.config.model import LineConfig
from routing.dispatch import Pick


class Inventory:
    def __init__(self, config: LineConfig) -> None:
        self.available: dict[str, dict[str, int]] = {}
        for entry in config.stock:
            per_loc = self.available.setdefault(entry.sku, {})
            per_loc[entry.location] = per_loc.get(entry.location, 0) + entry.quantity

    def view(self) -> Mapping[str, Mapping[str, int]]:
        return self.available

    def reserve(self, picks: Iterable[Pick]) -> None:
        for pk in picks:
            self.available[pk.sku][pk.location] -= pk.quantity

    def release(self, picks: Iterable[Pick]) -> None:
        for pk in picks:
            self.available[pk.sku][pk.location] += pk.quantity
