"""The live line page in a real browser: headless Chromium (the system's) driven by Playwright,
against the whole simulated line on real protocols and real HTTP.

The page must load with no console error, draw every robot, zone and chute, move when the line
moves, show a jam injected in the conveyor simulator (and the zones it holds), show a robot's and
an order's detail on a click, and offer the operator's buttons only to a token that may operate.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.config.model import ApiConfig, ApiToken, LineConfig
from simulators.broker import free_port
from tests.e2e.test_lifecycle import TOKEN, Line, running_line

pytestmark = pytest.mark.e2e

try:
    from playwright import async_api as playwright_api
except ImportError:  # pragma: no cover - the test extra installs it
    if os.environ.get("LINECTL_REQUIRE_CHROMIUM") == "1":
        raise
    pytest.skip("Playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

READER = "reader-token-0123456789ab"
WAIT_MS = 20_000


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("LINECTL_REQUIRE_CHROMIUM") == "1":
        pytest.fail("LINECTL_REQUIRE_CHROMIUM=1 but no Chromium installed")
    pytest.skip("no Chromium installed (apt-get install chromium)")


@pytest.fixture
async def line(
    reference_line: LineConfig, mqtt_url: str, interface_name: str, tmp_path: Path
) -> AsyncIterator[Line]:
    api = ApiConfig(
        port=free_port(),
        reads_open=False,
        tokens=[
            ApiToken(token=TOKEN, name="operator"),
            ApiToken(token=READER, name="viewer", scopes=["orders:read"]),
        ],
    )
    async with running_line(
        reference_line, mqtt_url, interface_name, tmp_path, api_config=api
    ) as running:
        yield running


class Page:
    """A browser tab on the live page, with every console error and failed request kept."""

    def __init__(self, page: object, errors: list[str]) -> None:
        self.page = page
        self.errors = errors


@pytest.fixture
async def chromium_browser() -> AsyncIterator[object]:
    executable = chromium()
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_page(browser: object, line: Line, token: str | None) -> Page:
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on(
        "requestfailed",
        lambda r: (
            errors.append(f"request failed: {r.url} {r.failure}")
            if "/stream" not in r.url
            else None
        ),
    )
    if token is not None:  # as if entered earlier in this tab
        await page.add_init_script(f"sessionStorage.setItem('linectl.token', {token!r})")
    await page.goto(f"{line.http.base_url}/ui")
    return Page(page, errors)


async def robot_positions(page: object) -> dict[str, str | None]:
    return await page.eval_on_selector_all(  # type: ignore[attr-defined, no-any-return]
        "#robots g[data-robot]",
        "gs => Object.fromEntries(gs.map(g => [g.dataset.robot, g.getAttribute('transform')]))",
    )


async def test_the_live_page_shows_the_line_and_follows_it(
    chromium_browser: object, line: Line
) -> None:
    cfg = line.service.config
    tab = await open_page(chromium_browser, line, None)
    page = tab.page
    # without a token the page asks for one: reads are not open on this line
    await page.wait_for_selector("#link.bad", timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert await page.is_visible("#token-form")  # type: ignore[attr-defined]
    await page.fill("#token-input", READER)  # type: ignore[attr-defined]
    await page.click("#token-form button[type=submit]")  # type: ignore[attr-defined]
    await page.wait_for_selector("#link.ok", timeout=WAIT_MS)  # type: ignore[attr-defined]

    # every robot, zone and chute of the line file is drawn, and the robots are placed
    serials = sorted(r.serial for r in cfg.robots.fleet)
    await page.wait_for_function(  # type: ignore[attr-defined]
        "n => document.querySelectorAll('#robots g[data-robot]:not(.hidden)').length === n",
        arg=len(serials),
        timeout=WAIT_MS,
    )
    assert sorted(await robot_positions(page)) == serials
    zones = await page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#conveyor g[data-zone]", "gs => gs.map(g => g.dataset.zone)"
    )
    assert zones == [z.id for z in cfg.conveyor.zones]
    await page.wait_for_function(  # type: ignore[attr-defined]
        "() => [...document.querySelectorAll('#conveyor g[data-zone]')]"
        ".every(g => g.dataset.state === 'running')",
        timeout=WAIT_MS,
    )
    chutes = await page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#conveyor g[data-chute]", "gs => gs.map(g => g.dataset.chute)"
    )
    assert sorted(chutes) == sorted({d.chute for d in cfg.conveyor.sorter.diverts})
    rows = await page.eval_on_selector_all(  # type: ignore[attr-defined]
        "#robot-list tr", "rs => rs.map(r => r.dataset.robot)"
    )
    assert sorted(rows) == serials
    # a viewer's token: no operator button
    assert not await page.is_visible("#hold-line")  # type: ignore[attr-defined]

    # the line moves: orders go out, robots drive, the page follows
    before = await robot_positions(page)
    for i in range(4):
        await line.put(f"UI-{i}", **line.b2c("SKU-0001" if i % 2 else "SKU-0002"))
    await page.wait_for_function(  # type: ignore[attr-defined]
        """before => [...document.querySelectorAll('#robots g[data-robot]')]
            .some(g => g.getAttribute('transform') !== before[g.dataset.robot])""",
        arg=before,
        timeout=WAIT_MS,
    )
    # the four orders are counted (by status, as the store has them)
    await page.wait_for_function(  # type: ignore[attr-defined]
        "() => [...document.querySelectorAll('#order-counts tr')]"
        ".reduce((n, tr) => n + Number(tr.dataset.count), 0) === 4",
        timeout=WAIT_MS,
    )

    # a jam injected in the simulator: its zone red, the two before it held, the header says so
    await line.sim.conveyor.set_zone_jammed("Z10", True)
    await page.wait_for_selector(  # type: ignore[attr-defined]
        "#conveyor g[data-zone=Z10][data-state=jam]", timeout=WAIT_MS
    )
    for held in ("Z08", "Z09"):
        await page.wait_for_selector(  # type: ignore[attr-defined]
            f"#conveyor g[data-zone={held}][data-state=held]", timeout=WAIT_MS
        )
    assert "jam Z10" in await page.inner_text("#packml")  # type: ignore[attr-defined]
    await line.sim.conveyor.set_zone_jammed("Z10", False)
    await page.wait_for_selector(  # type: ignore[attr-defined]
        "#conveyor g[data-zone=Z10][data-state=running]", timeout=WAIT_MS
    )

    # a robot's detail on a click on its marker
    await page.click("#robots g[data-robot=R02]")  # type: ignore[attr-defined]
    await page.wait_for_selector("#detail:not(.hidden)", timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert await page.inner_text("#detail-title") == "Robot R02"  # type: ignore[attr-defined]
    assert "connection" in await page.inner_text("#detail-body")  # type: ignore[attr-defined]
    # a slow click on a row of the robot list, held across snapshots, still counts
    await page.hover("#robot-list tr[data-robot=R03]")  # type: ignore[attr-defined]
    await page.mouse.down()  # type: ignore[attr-defined]
    await asyncio.sleep(1.2)  # at least two snapshots while the button is down
    await page.mouse.up()  # type: ignore[attr-defined]
    await page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('#detail-title').textContent === 'Robot R03'",
        timeout=WAIT_MS,
    )
    # a viewer's token gets no operator button in the detail either
    assert await page.eval_on_selector_all("#detail-actions button", "bs => bs.length") == 0  # type: ignore[attr-defined]
    # and an order's, from the robots' orders or the queue
    order = await line.service.store.get_order("UI-0")
    assert order is not None
    await page.evaluate("id => select('order', id)", "UI-0")  # type: ignore[attr-defined]
    await page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.querySelector('#detail-body').innerText.includes('status')"
        " && !document.querySelector('#detail-body').innerText.includes('loading')",
        timeout=WAIT_MS,
    )
    assert await page.inner_text("#detail-title") == "Order UI-0"  # type: ignore[attr-defined]
    assert tab.errors == []


async def test_an_operator_token_holds_and_resumes_the_line(
    chromium_browser: object, line: Line
) -> None:
    tab = await open_page(chromium_browser, line, TOKEN)
    page = tab.page
    await page.wait_for_selector("#link.ok", timeout=WAIT_MS)  # type: ignore[attr-defined]
    await page.wait_for_selector("#hold-line:not(.hidden)", timeout=WAIT_MS)  # type: ignore[attr-defined]
    await page.click("#hold-line")  # type: ignore[attr-defined]
    await page.wait_for_selector("#hold:not(.hidden)", timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert "Held by operator" in await page.inner_text("#hold")  # type: ignore[attr-defined]
    assert (await line.http.get("/v1/line")).json()["held"]["by"] == "operator"
    await page.click("#resume-line")  # type: ignore[attr-defined]
    await page.wait_for_selector("#hold", state="hidden", timeout=WAIT_MS)  # type: ignore[attr-defined]
    assert (await line.http.get("/v1/line")).json()["held"] is None
    # a robot paused from its detail, then resumed
    await page.click("#robots g[data-robot=R01]")  # type: ignore[attr-defined]
    await page.click("#detail-actions button:has-text('Pause robot')")  # type: ignore[attr-defined]
    await page.wait_for_selector(  # type: ignore[attr-defined]
        "#detail-actions button:has-text('Resume robot')", timeout=WAIT_MS
    )
    await page.click("#detail-actions button:has-text('Resume robot')")  # type: ignore[attr-defined]
    await page.wait_for_selector(  # type: ignore[attr-defined]
        "#detail-actions button:has-text('Pause robot')", timeout=WAIT_MS
    )
    assert tab.errors == []
