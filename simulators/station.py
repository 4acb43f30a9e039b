"""Operators at the value-added stations, as an HTTP client of the linectl API.

Each station polls its open tasks, spends ``handling_seconds`` of line time per task (labels,
packaging, the scan check), and reports the counts. ``mismatch_rate`` makes an operator count
one unit short on some totes, to exercise the exception path. AS/RS totes the station is done
with (its returns, and those of the reject chute) are sent back: reported over the API, then
handed to ``on_return(tote, aisle)``, the return conveyor.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from kernel.clock import Clock
from kernel.config.model import ChuteKind, LineConfig

log = logging.getLogger(__name__)

ReturnHook = Callable[[str, str], Awaitable[None] | None]


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
        on_return: ReturnHook | None = None,
    ) -> None:
        sorter = config.conveyor.sorter
        self.stations = sorted(
            {c.id for c in sorter.chutes if c.kind is ChuteKind.B2B}
            | ({sorter.b2b_chute} if sorter.b2b_chute else set())
        )
        self.reject_chute = sorter.reject_chute
        self.replenishment_chutes = sorted(
            c.id for c in sorter.chutes if c.kind is ChuteKind.REPLENISHMENT
        )
        self.put: list[tuple[str, int]] = []  # (replenishment id, units) confirmed
        self.on_return = on_return
        self.returned: list[tuple[str, str]] = []  # (tote, aisle) sent back
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
            if self.reject_chute not in self.stations:
                tg.create_task(self._returns_only(http), name="sim.station[reject]")
            for chute in self.replenishment_chutes:
                tg.create_task(self._replenish(http, chute), name=f"sim.station[{chute}]")

    async def _operate(self, http: httpx.AsyncClient, station: str) -> None:
        poll = max(2.0, 0.2 * self.clock.time_scale)  # line seconds, at least 0.2 s of wall
        while True:
            tasks = await self._get(http, f"/v1/stations/{station}/tasks")
            for task in tasks or []:
                await self.clock.sleep(self.handling_seconds)
                await self._verify(http, station, task)
            sent = await self._send_back(http, station)
            if not tasks and not sent:
                await self.clock.sleep(poll)

    async def _replenish(self, http: httpx.AsyncClient, chute: str) -> None:
        """The replenishment operator: moves each tote's units to its pick location,
        confirms the put, and sends the tote back."""
        poll = max(2.0, 0.2 * self.clock.time_scale)
        while True:
            tasks = await self._get(http, f"/v1/replenishments?station={chute}") or []
            tasks = [t for t in tasks if t["state"] == "at_station"]
            for task in tasks:
                await self.clock.sleep(self.handling_seconds)
                body = {"put": task["units"], "operator": f"{chute}-operator"}
                try:
                    resp = await http.post(
                        f"/v1/replenishments/{task['id']}/confirmation", json=body
                    )
                except httpx.HTTPError as exc:
                    log.warning("put not reported", extra={"task": task["id"], "error": str(exc)})
                    continue
                if resp.status_code == 200:
                    self.put.append((task["id"], task["units"]))
                else:
                    log.warning(
                        "put refused", extra={"task": task["id"], "status": resp.status_code}
                    )
            sent = await self._send_back(http, chute)
            if not tasks and not sent:
                await self.clock.sleep(poll)

    async def _returns_only(self, http: httpx.AsyncClient) -> None:
        poll = max(10.0, self.clock.time_scale)  # the reject chute is emptied now and then
        while True:
            await self._send_back(http, self.reject_chute)
            await self.clock.sleep(poll)

    async def _send_back(self, http: httpx.AsyncClient, station: str) -> int:
        """Put the station's AS/RS totes on the return conveyor; returns how many."""
        if self.on_return is None:
            return 0
        sent = 0
        for r in await self._get(http, f"/v1/stations/{station}/returns") or []:
            if r["sent"] or not r["aisle"]:
                continue
            try:
                resp = await http.post(f"/v1/stations/{station}/returns/{r['tote']}")
            except httpx.HTTPError as exc:
                log.warning("return not reported", extra={"tote": r["tote"], "error": str(exc)})
                continue
            if resp.status_code != 200:
                log.warning("return refused", extra={"tote": r["tote"], "status": resp.status_code})
                continue
            aisle = resp.json()["aisle"]
            self.returned.append((r["tote"], aisle))
            result = self.on_return(r["tote"], aisle)
            if inspect.isawaitable(result):
                await result
            sent += 1
        return sent

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
