"""A real Prometheus scrapes a line that has run orders, loads the shipped alert rules and
answers every dashboard query; and scrapes both controllers of a line with a standby.

Prometheus comes with Debian's ``prometheus`` package (as promtool does). Without it this test
skips, unless LINECTL_REQUIRE_PROMTOOL=1 (CI), where a missing binary fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml
from pydantic import SecretStr

from kernel.config.model import FailoverConfig, LineConfig, StoreConfig
from simulators.broker import free_port
from tests.deploy.promql_check import substitute
from tests.deploy.test_dashboards import LINE_QUERY, UIDS, expressions, load
from tests.deploy.test_promtool import complete_orders
from tests.e2e.test_lifecycle import running_line
from tests.line_processes import line_processes
from tests.standby_pair import StandbyPair
from tests.store_backends import drop_schema, new_schema_name, postgres_dsn

pytestmark = pytest.mark.e2e

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules"


@pytest.fixture
def prometheus_bin() -> Iterator[str]:
    path = shutil.which("prometheus")
    if path is None:
        if os.environ.get("LINECTL_REQUIRE_PROMTOOL") == "1":
            pytest.fail("prometheus not found and LINECTL_REQUIRE_PROMTOOL=1")
        pytest.skip("prometheus not installed (Debian package prometheus)")
    yield path


LINE = "live-line"  # the line label of the targets, as deploy/prometheus/prometheus.yml sets it


@contextlib.asynccontextmanager
async def prometheus(
    binary: str, targets: list[str], workdir: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """Prometheus on a loopback port scraping ``targets`` (host:port) every second, with the
    shipped rules evaluated every second."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in sorted(RULES.glob("*.yml"))],
        "scrape_configs": [
            {
                "job_name": "linectl",
                "static_configs": [{"targets": targets, "labels": {"line": LINE}}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            await until(http, "Prometheus ready", lambda: http.get("/-/ready"), ok)
            yield http
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(10):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()


def ok(resp: httpx.Response) -> bool:
    return resp.status_code == 200


async def until(http: httpx.AsyncClient, what: str, ask: Any, done: Any, within: float = 30) -> Any:
    """Ask until ``done(answer)``; an error connecting counts as not yet."""
    try:
        async with asyncio.timeout(within):
            while True:
                with contextlib.suppress(httpx.TransportError):
                    answer = await ask()
                    if done(answer):
                        return answer
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def query(http: httpx.AsyncClient, expr: str) -> list[dict[str, Any]]:
    resp = await http.get("/api/v1/query", params={"query": expr})
    body = resp.json()
    assert resp.status_code == 200 and body["status"] == "success", (expr, body)
    result = body["data"]["result"]
    return result if isinstance(result, list) else [result]


async def test_prometheus_scrapes_the_line_runs_the_rules_and_answers_every_dashboard(
    prometheus_bin: str,
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
) -> None:
    async with running_line(reference_line, mqtt_url, interface_name, tmp_path) as line:
        target = urlparse(str(line.http.base_url)).netloc
        async with prometheus(prometheus_bin, [target], tmp_path) as prom:
            await complete_orders(line)

            async def finished() -> list[dict[str, Any]]:
                return await query(prom, 'sum(linectl_orders_finished_total{job="linectl"})')

            def two(result: list[dict[str, Any]]) -> bool:
                return bool(result) and float(result[0]["value"][1]) == 2

            await until(prom, "the two completed orders scraped", finished, two)
            # a rate over the dashboards' window needs two samples after the orders
            await until(
                prom,
                "three scrapes",
                lambda: query(prom, 'count_over_time(up{job="linectl"}[1m])'),
                lambda r: bool(r) and float(r[0]["value"][1]) >= 3,
            )
            empty: dict[str, list[str]] = {}
            answered: dict[str, int] = {}
            for name in sorted(UIDS):
                for where, expr in expressions(load(name)):
                    if await query(prom, runnable(expr)):
                        answered[name] = answered.get(name, 0) + 1
                    else:
                        empty.setdefault(name, []).append(where)
            stats = {
                f"{name}: {p['title']}": (
                    await query(prom, runnable(p["targets"][0]["expr"])),
                    p["targets"][0]["expr"].endswith(" or vector(0)"),
                )
                for name in sorted(UIDS)
                for p in load(name)["panels"]
                if p["type"] == "stat"
            }
            # another line's series are in no panel: the line variable filters them out
            other_line = {
                f"{name}: {where}"
                for name in sorted(UIDS)
                for where, expr in expressions(load(name))
                if expr != LINE_QUERY and await query(prom, runnable(expr, "another-line"))
            }
            lines = await query(prom, 'group by (line) (up{job="linectl"})')
            rules = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
            scraped = await query(prom, 'up{job="linectl"}')

    assert [float(s["value"][1]) for s in scraped] == [1.0]
    # the line variable's values: the targets' line label
    assert [s["metric"]["line"] for s in lines] == [LINE]
    # for a line that is not there, only the counts of events answer (0, ``or vector(0)``)
    counts = {
        f"{name}: panel {p['title']!r} target A"
        for name in sorted(UIDS)
        for p in load(name)["panels"]
        if p["type"] == "stat" and p["targets"][0]["expr"].endswith(" or vector(0)")
    }
    assert other_line == counts
    # every stat shows a number (never NaN) or nothing (its noValue); counts show 0 at least
    for where, (result, zero) in stats.items():
        values = [s["value"][1] for s in result]
        assert "NaN" not in values, where
        if zero:
            assert len(values) == 1, where
    # every dashboard shows the line that ran: some of its panels have data
    assert set(answered) == set(UIDS), {"no data at all": sorted(set(UIDS) - set(answered))}
    # the shipped rules load and evaluate without error on real data
    evaluated = [r for g in rules for r in g["rules"]]
    assert len(evaluated) >= 19
    broken = {r["name"]: r.get("lastError") for r in evaluated if r.get("health") != "ok"}
    assert not broken, broken
    # most queries have data; those without are about what two B2C orders do not touch
    # (B2B, AS/RS cycles, faults, jams, webhooks)
    assert sum(answered.values()) > 2 * sum(len(v) for v in empty.values()), empty


LEASE = FailoverConfig(enabled=True, lease_seconds=3.0, renew_seconds=0.5)


def on_this_line(expr: str) -> str:
    """A dashboard query with the line variable set to the line the targets carry."""
    return expr.replace("$line", LINE)


def runnable(expr: str, line: str = LINE) -> str:
    """A dashboard query as Prometheus takes it: the line variable set to ``line``, Grafana's
    other variables replaced; a variable's label_values() query by its selector."""
    text = substitute(expr.replace("$line", line))
    if text.startswith("label_values("):
        text = text.removeprefix("label_values(").rsplit(",", 1)[0]
    return text


def panel_expr(dashboard: str, title: str) -> str:
    (panel,) = [p for p in load(dashboard)["panels"] if p["title"] == title]
    return substitute(on_this_line(panel["targets"][0]["expr"]))


def by_instance(result: list[dict[str, Any]]) -> dict[str, float]:
    return {s["metric"]["instance"]: float(s["value"][1]) for s in result}


@pytest.mark.timeout(300)
async def test_prometheus_tells_the_active_controller_from_its_standby(
    prometheus_bin: str,
    reference_line: LineConfig,
    mqtt_url: str,
    interface_name: str,
    tmp_path: Path,
) -> None:
    """Both controllers of a line with a standby scraped: the standby's device gauges are 0 and
    no alert is even pending for it; once the active one is killed, the dashboard's controller
    panels show the standby active at the next term and the former one down."""
    schema = new_schema_name()
    dsn = SecretStr(postgres_dsn())
    store = StoreConfig(backend="postgresql", dsn=dsn, db_schema=schema)
    workdir = tmp_path / "prometheus"
    workdir.mkdir()
    roles = panel_expr("devices.json", "Controller roles")
    active = panel_expr("devices.json", "Active controller")
    try:
        async with line_processes(
            reference_line, mqtt_url, interface_name, tmp_path, store=store, failover=LEASE
        ) as (line, _):
            pair = StandbyPair(line.line_file, line.log_dir)
            try:
                await pair.start("a")
                await pair.wait_active("a")
                await pair.start("b")
                await pair.standby_of("b", "controller-a")
                a, b = (f"127.0.0.1:{pair[name].port}" for name in "ab")
                async with prometheus(prometheus_bin, [a, b], workdir) as prom:
                    await until(
                        prom,
                        "a active and b the standby",
                        lambda: query(prom, roles),
                        lambda r: by_instance(r) == {a: 1.0, b: 0.0},
                    )
                    # the standby's link gauges are 0, as a link that is down
                    down = await query(
                        prom, "linectl_mqtt_connected == 0 or linectl_asrs_opcua_connected == 0"
                    )
                    assert {s["metric"]["instance"] for s in down} == {b}, down
                    # the rules ran on both several times (each second)
                    await until(
                        prom,
                        "five scrapes of the standby",
                        lambda: query(prom, f'count_over_time(up{{instance="{b}"}}[1m])'),
                        lambda r: bool(r) and float(r[0]["value"][1]) >= 5,
                    )
                    assert await query(prom, f'ALERTS{{instance="{b}"}}') == []
                    assert await query(prom, 'ALERTS{alertname="LinectlNoActiveController"}') == []
                    assert by_instance(await query(prom, active)) == {a: 1.0}  # the first term

                    await pair.stop("a")
                    await pair.wait_active("b", within=30)
                    await until(
                        prom,
                        "b active and a down",
                        lambda: query(prom, roles),
                        lambda r: by_instance(r) == {a: -1.0, b: 1.0},
                    )
                    assert by_instance(await query(prom, active)) == {b: 2.0}
                    rules = (await prom.get("/api/v1/rules")).json()["data"]["groups"]
            finally:
                await pair.kill_all()
    finally:
        drop_schema(schema)
    broken = {
        r["name"]: r.get("lastError") for g in rules for r in g["rules"] if r.get("health") != "ok"
    }
    assert not broken, broken
