"""Failover chaos: the active controller of a line with a standby killed (SIGKILL) at random
moments, three times, while orders flow (see :mod:`tests.failover_run`).

Every order reaches a terminal state and completes, none is lost or served twice, no crane
command or divert is executed twice, the ledger adds up, and each time the standby takes over
within the lease's length and a killed controller comes back as the standby.
``bench/failover.py`` runs the long version (ten kills or more) and prints the takeover times.
The seed of the kill moments is random and printed; ``LINECTL_FAILOVER_SEED`` repeats a run.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from kernel.config.model import LineConfig
from tests.failover_run import LEASE, failover_run

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)  # about 50 s; settling waits at most 300 s
async def test_every_order_completes_once_through_three_failovers(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LINECTL_FAILOVER_SEED", random.randrange(2**31)))
    result = await failover_run(
        reference_line,
        mqtt_url,
        interface_name,
        tmp_path,
        orders=16,
        kills=3,
        seed=seed,
        gap=(2.0, 5.0),
    )
    report = "\n".join(result.lines())
    print(report)
    f = result.figures
    assert f.clean(), report
    assert f.completed == f.orders, report
    assert len(result.takeovers) == 3, report
    # the standby takes over once the lease has run out: within its length and the time to
    # start commanding (a generous bound; bench/failover.py measures it)
    assert all(t.to_active < LEASE.lease_seconds + 10.0 for t in result.takeovers), report
