"""B2B verification at a value-added station: does what was counted match what was picked?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Expected:
    line_id: str
    sku: str
    quantity: int  # units that should be in the tote


@dataclass(frozen=True)
class Counted:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class Mismatch:
    line_id: str
    expected_sku: str | None
    counted_sku: str | None
    expected: int
    counted: int

    def describe(self) -> str:
        if self.expected_sku is None:
            return f"line {self.line_id}: not in the order, counted {self.counted}"
        if self.counted_sku is None:
            return (
                f"line {self.line_id} ({self.expected_sku}): expected {self.expected}, not counted"
            )
        if self.counted_sku != self.expected_sku:
            return (
                f"line {self.line_id}: expected SKU {self.expected_sku}, "
                f"counted SKU {self.counted_sku}"
            )
        return (
            f"line {self.line_id} ({self.expected_sku}): expected {self.expected}, "
            f"counted {self.counted}"
        )


def verify(expected: Sequence[Expected], counted: Sequence[Counted]) -> list[Mismatch]:
    """Every expected line counted with its SKU and exact quantity, and nothing else."""
    by_line: Mapping[str, Counted] = {c.line_id: c for c in counted}
    out: list[Mismatch] = []
    for e in expected:
        c = by_line.get(e.line_id)
        if c is None:
            out.append(Mismatch(e.line_id, e.sku, None, e.quantity, 0))
        elif c.sku != e.sku or c.quantity != e.quantity:
            out.append(Mismatch(e.line_id, e.sku, c.sku, e.quantity, c.quantity))
    known = {e.line_id for e in expected}
    out += [
        Mismatch(c.line_id, None, c.sku, 0, c.quantity) for c in counted if c.line_id not in known
    ]
    return out
