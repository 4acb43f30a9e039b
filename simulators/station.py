"""Operators at the value-added stations, as an HTTP client of the linectl API.

Each station polls its open tasks, spends ``handling_seconds`` of line time per tote (labels,
packaging, the scan check), and reports the counts. ``mismatch_rate`` makes an operator count
one unit short on some totes, to exercise the exception path.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from controller.clock import Clock
from controller.config.model import ChuteKind, LineConfig

log = logging.getLogger(__name__)


class StationSimulator:
    def __init__(
        self,
        config: LineConfig,
        clock: Clock,
        api_url: str,
        token: str,
        *,
        handling_seconds: float = 30.0,
        mismatch_rate: float = 0.0,
        seed: int = 11,
    ) -> None:
        sorter = config.conveyor.sorter
        self.stations = sorted(
            {c.id for c in sorter.chutes if c.kind is ChuteKind.B2B}
            | ({sorter.b2b_chute} if sorter.b2b_chute else set())
        )
        self.clock = clock
        self.api_url = api_url.rstrip("/")
        self.token = token
        self.handling_seconds = handling_seconds
        self.mismatch_rate = mismatch_rate
        self.rng = random.Random(seed)
        self.verified: list[tuple[str, str]] = []  # (order id, status) as answered

    async def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            httpx.AsyncClient(base_url=self.api_url, headers=headers, timeout=10) as http,
            asyncio.TaskGroup() as tg,
        ):
            for station in self.stations:
                tg.create_task(self._operate(http, station), name=f"sim.station[{station}]")

    async def _operate(self, http: httpx.AsyncClient, station: str) -> None:
        poll = max(2.0, 0.2 * self.clock.time_scale)  # line seconds, at least 0.2 s of wall
        while True:
            tasks = await self._get(http, f"/v1/stations/{station}/tasks")
            for task in tasks or []:
                await self.clock.sleep(self.handling_seconds)
                await self._verify(http, station, task)
            if not tasks:
                await self.clock.sleep(poll)

    async def _get(self, http: httpx.AsyncClient, path: str) -> list[dict[str, Any]] | None:
        try:
            resp = await http.get(path)
        except httpx.HTTPError as exc:
            log.warning("station cannot reach the controller", extra={"error": str(exc)})
            return None
        if resp.status_code != 200:
            log.warning("station tasks refused", extra={"status": resp.status_code})
            return None
        tasks: list[dict[str, Any]] = resp.json()
        return tasks

    async def _verify(self, http: httpx.AsyncClient, station: str, task: dict[str, Any]) -> None:
        lines = [
            {"line_id": ln["line_id"], "sku": ln["sku"], "quantity": ln["quantity"]}
            for ln in task["lines"]
        ]
        if lines and self.rng.random() < self.mismatch_rate:
            lines[0]["quantity"] = max(0, lines[0]["quantity"] - 1)
        order_id = task["order_id"]
        try:
            resp = await http.post(
                f"/v1/stations/{station}/tasks/{order_id}/verification",
                json={"operator": f"{station}-operator", "lines": lines},
            )
        except httpx.HTTPError as exc:
            log.warning("verification not delivered", extra={"order": order_id, "error": str(exc)})
            return
        if resp.status_code == 200:
            self.verified.append((order_id, resp.json()["status"]))
        else:
            log.warning(
                "verification refused", extra={"order": order_id, "status": resp.status_code}
            )
