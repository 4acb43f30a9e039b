"""The sorter benchmark's printed figures for one measured window: scan-to-divert latency,
throughput against capacity and missed diverts, and the recirculation and reject shares.
"""

from __future__ import annotations

from collections import Counter

from sorter_live import Run

from routing.sortation import Outcome


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def report_latency(run: Run) -> None:
    ms = sorted(lat * 1000 for r in run.records for t, lat in r.latency if run.within(t))
    slack = sorted(s for r in run.records for t, s in r.slack if run.within(t))
    if not ms:
        print("  scan -> Divert returned: not measured: no divert in the measured window")
        return
    print(
        f"  scan -> Divert returned  p50 {percentile(ms, 0.5):6.2f} ms   "
        f"p99 {percentile(ms, 0.99):6.2f} ms   max {ms[-1]:6.2f} ms   "
        f"({len(ms)} diverts; target p99 <= 20 ms)"
    )
    if slack:
        print(
            f"  time to spare at the divert point: min {slack[0] * 1000:7.1f} ms   "
            f"p50 {percentile(slack, 0.5) * 1000:7.1f} ms   (divert() returned -> item at divert)"
        )


def report_throughput(run: Run, capacity: float) -> None:
    n = len(run.records)
    ok = sum(1 for r in run.records for t, good, _ in r.diverted if good and run.within(t))
    failed = sum(1 for r in run.records for t, good, _ in r.diverted if not good and run.within(t))
    missed = sum(1 for r in run.records for t in r.missed if run.within(t))
    refused = sum(1 for r in run.records for t in r.refused_calls if run.within(t))
    per_sorter = ok / run.wall / n
    print(
        f"  diverted {per_sorter:6.3f} items/s per sorter = {per_sorter * 3600:7.0f} items/h, "
        f"{per_sorter / capacity:6.1%} of capacity {capacity:.3f} items/s (target >= 97 %)"
    )
    print(
        f"  missed diverts (Divert too late, item rode past): {missed}   (target 0)   "
        f"divert failed at the chute: {failed}   Divert refused: {refused}"
    )


def report_shares(run: Run) -> None:
    outcomes = Counter(o for r in run.records for t, o in r.decisions if run.within(t))
    decisions = sum(outcomes.values())
    recirculated = sum(
        outcomes[o] for o in (Outcome.NO_READ, Outcome.MULTI_READ, Outcome.CHUTE_UNAVAILABLE)
    )
    sent = outcomes[Outcome.DIVERTED] + outcomes[Outcome.REJECTED]
    print(
        f"  recirculation share {recirculated / max(decisions, 1):7.2%} of scans "
        f"({recirculated} of {decisions}; "
        + ", ".join(f"{o.value} {n}" for o, n in sorted(outcomes.items()))
        + ")"
    )
    print(
        f"  reject share        {outcomes[Outcome.REJECTED] / max(sent, 1):7.3%} of items sent "
        f"to a chute ({outcomes[Outcome.REJECTED]} of {sent})"
    )
