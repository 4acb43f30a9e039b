"""Failover chaos: the active controller of a line with a standby killed (SIGKILL) at random
moments, three times, while orders flow (see :mod:`tests.failover_run`).

Before the first order, the standby's API is checked: it answers an operator command with where
the active controller is, shows no device of its own, and is not ready in the active role. Orders
go in through both APIs. Every order reaches a terminal state and completes, none is lost or
served twice, no crane command or divert is executed twice, the ledger adds up, and each time the
standby takes over within the lease's length and a killed controller comes back as the standby.
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
from tests.standby_pair import StandbyPair

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)  # about 50 s; settling waits at most 300 s
async def test_every_order_completes_once_through_three_failovers(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> None:
    seed = int(os.environ.get("LINECTL_FAILOVER_SEED", random.randrange(2**31)))

    async def standby_answers(pair: StandbyPair) -> None:
        a, b = pair["a"], pair["b"]
        async with b.http() as http:
            r = await http.post("/v1/line/hold")
            assert r.status_code == 503, r.text
            assert r.json()["type"] == "urn:linectl:problem:not-active"
            assert r.json()["active"]["api_url"] == a.url
            view = (await http.get("/v1/line")).json()
            assert view["controller"]["role"] == "standby" and view["robots"] == []
            assert view["controller"]["active"]["instance"] == "controller-a"
            assert (await http.get("/readyz")).status_code == 200  # it takes orders
            assert (await http.get("/readyz", params={"role": "active"})).status_code == 503
        async with a.http() as http:
            ready = await http.get("/readyz", params={"role": "active"})
            assert ready.status_code == 200 and ready.json()["controller"]["term"] == 1

    result = await failover_run(
        reference_line,
        mqtt_url,
        interface_name,
        tmp_path,
        orders=16,
        kills=3,
        seed=seed,
        gap=(2.0, 5.0),
        standby_checks=standby_answers,
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
