"""The documented conveyor model (docs/opcua-model.md), case by case, for both sides.

Each case runs once through a generic asyncua client and once through linectl's sorter adapter
(see ``conftest.py``). The simulator's scripting hooks only arrange a situation; what the model
should show is always read through the driver.
"""

from __future__ import annotations

import itertools

import pytest

from kernel.config.model import LineConfig
from tests.contract.driver import (
    COMMANDS,
    STATES,
    TRANSITIONS,
    Accepted,
    Driver,
    Refused,
    Scan,
    eventually,
)
from tests.contract.line import (
    KEEPING_CHUTE,
    LEVEL_CHUTE,
    PLAIN_CHUTE,
    REFUSING_CHUTE,
    SMALL_CHUTE,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

# No command leads into Complete (the simulated unit never completes a production run), so the
# transitions out of it cannot be arranged over the protocol.
REACHABLE = tuple(s for s in STATES if s != "Complete")
ARRANGEABLE = sorted((cmd, state) for (cmd, state) in TRANSITIONS if state in REACHABLE)


def loop_seconds(config: LineConfig) -> float:
    conveyor = config.conveyor
    return sum(z.length for z in conveyor.zones) / conveyor.belt_speed


def divert_to(config: LineConfig, chute_id: str) -> str:
    return next(d.id for d in config.conveyor.sorter.diverts if d.chute == chute_id)


def assert_refused(outcome: object, driver: Driver, status: str) -> None:
    assert isinstance(outcome, Refused), f"expected a refusal ({status}), got {outcome}"
    if driver.shows_status:
        assert outcome.status == status, outcome


def assert_flags(scan: Scan, *, no_read: bool, multi_read: bool) -> None:
    if scan.no_read is not None:
        assert scan.no_read is no_read, scan
    if scan.multi_read is not None:
        assert scan.multi_read is multi_read, scan


# --- PackML unit ------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "start"), ARRANGEABLE, ids=lambda v: str(v))
async def test_a_documented_command_leads_to_the_documented_state(
    driver: Driver, command: str, start: str
) -> None:
    await driver.reach(start)
    assert await driver.command(command) == Accepted()
    assert await driver.state() == TRANSITIONS[(command, start)]


@pytest.mark.parametrize("start", REACHABLE)
async def test_a_command_invalid_in_a_state_is_refused_and_changes_nothing(
    driver: Driver, start: str
) -> None:
    await driver.reach(start)
    invalid = [cmd for cmd in COMMANDS if (cmd, start) not in TRANSITIONS]
    assert invalid
    for command in invalid:
        assert_refused(await driver.command(command), driver, "BadInvalidState")
        assert await driver.state() == start, f"{command} in {start} changed the state"
    assert await driver.alive()
    await driver.reach("Execute")  # still answers valid commands
    item_id = await driver.induct("TOTE-ALIVE")
    assert (await driver.scan_of(item_id)).codes == ("TOTE-ALIVE",)


# --- jog ---------------------------------------------------------------------------------------


async def test_a_jog_is_accepted_outside_execute_and_refused_in_it(driver: Driver) -> None:
    await driver.reach("Execute")
    assert_refused(await driver.jog("Z03", 0.5, 1.0), driver, "BadInvalidState")
    await driver.reach("Held")
    speed = driver.config.conveyor.belt_speed
    assert_refused(await driver.jog("Z03", speed * 2, 1.0), driver, "BadOutOfRange")
    assert_refused(await driver.jog("Z03", speed, 61.0), driver, "BadOutOfRange")
    assert await driver.jog("Z03", speed, 1.0) == Accepted()
    assert driver.sim.zone_running("Z03")
    assert await driver.alive()
    await driver.reach("Execute")  # a PackML command ends the jog; production runs again
    assert all(driver.sim.zone_running(z.id) for z in driver.config.conveyor.zones)


# --- scanner ----------------------------------------------------------------------------------


async def test_an_inducted_tote_is_scanned_once_per_pass(driver: Driver) -> None:
    item_id = await driver.induct("TOTE-PASS")
    scans = [await driver.scan_of(item_id) for _ in range(3)]
    scanner_id = driver.config.conveyor.scanner.id
    for scan in scans:
        assert (scan.scanner_id, scan.item_id, scan.codes) == (scanner_id, item_id, ("TOTE-PASS",))
        assert_flags(scan, no_read=False, multi_read=False)
    # one read per pass: consecutive reads of the item lie exactly one loop apart in line time
    for earlier, later in itertools.pairwise(scans):
        gap = (later.at - earlier.at).total_seconds()
        assert gap == pytest.approx(loop_seconds(driver.config), abs=0.05)


async def test_a_no_read_gives_a_scan_without_codes(driver: Driver) -> None:
    driver.sim.set_no_read_rate(1.0)
    item_id = await driver.induct("TOTE-NOREAD")
    scan = await driver.scan_of(item_id)
    assert scan.codes == ()
    assert_flags(scan, no_read=True, multi_read=False)


async def test_a_multi_read_gives_a_scan_with_more_than_one_code(driver: Driver) -> None:
    driver.sim.set_multi_read_rate(1.0)
    item_id = await driver.induct("TOTE-MULTI")
    scan = await driver.scan_of(item_id)
    assert len(scan.codes) == 2 and "TOTE-MULTI" in scan.codes, scan
    assert_flags(scan, no_read=False, multi_read=True)


# --- sorter -----------------------------------------------------------------------------------


async def test_a_divert_to_a_chute_that_takes_the_tote_completes_and_counts(
    driver: Driver,
) -> None:
    before = (await driver.chute(KEEPING_CHUTE)).count
    item_id = await driver.induct("TOTE-OK")
    scan = await driver.scan_of(item_id)
    assert await driver.divert(item_id, KEEPING_CHUTE) == Accepted()
    done = await driver.completion_of(item_id)
    assert (done.item_id, done.chute_id, done.divert_id, done.ok) == (
        item_id,
        KEEPING_CHUTE,
        divert_to(driver.config, KEEPING_CHUTE),
        True,
    )
    assert done.at > scan.at

    async def counted() -> bool:
        return (await driver.chute(KEEPING_CHUTE)).count == before + 1

    await eventually(counted, f"{KEEPING_CHUTE} count {before} + 1")


@pytest.mark.parametrize("why", ["full", "disabled"])
async def test_a_divert_to_a_chute_that_cannot_take_the_tote_fails_and_the_tote_rides_on(
    driver: Driver, why: str
) -> None:
    chute_id = REFUSING_CHUTE
    if why == "full":
        await driver.sim.set_chute_full(chute_id, True)
    else:
        await driver.sim.set_chute_enabled(chute_id, False)
    before = (await driver.chute(chute_id)).count
    item_id = await driver.induct(f"TOTE-{why.upper()}")
    assert await driver.divert(item_id, chute_id) == Accepted()
    done = await driver.completion_of(item_id)
    assert (done.item_id, done.chute_id, done.divert_id, done.ok) == (
        item_id,
        chute_id,
        divert_to(driver.config, chute_id),
        False,
    )
    again = await driver.scan_of(item_id)  # still on the belt, read again on the next pass
    assert again.at > done.at
    assert (await driver.chute(chute_id)).count == before


async def test_a_later_divert_request_for_the_item_replaces_the_earlier_one(
    driver: Driver,
) -> None:
    diverts = {d.chute: d.zone for d in driver.config.conveyor.sorter.diverts}
    zones = [z.id for z in driver.config.conveyor.zones]
    # the first request's divert comes first along the belt: were it kept, it would fire first
    assert zones.index(diverts[REFUSING_CHUTE]) < zones.index(diverts[PLAIN_CHUTE])
    assert await driver.command("Hold") == Accepted()  # belts stand while both requests go in
    item_id = await driver.induct("TOTE-AGAIN")
    assert await driver.divert(item_id, REFUSING_CHUTE) == Accepted()
    assert await driver.divert(item_id, PLAIN_CHUTE) == Accepted()
    assert await driver.command("Unhold") == Accepted()
    done = await driver.completion_of(item_id)
    assert (done.chute_id, done.divert_id, done.ok) == (
        PLAIN_CHUTE,
        divert_to(driver.config, PLAIN_CHUTE),
        True,
    )


async def test_a_chute_is_full_once_its_count_reaches_the_capacity(driver: Driver) -> None:
    first = await driver.induct("TOTE-FILL-1")
    assert await driver.divert(first, SMALL_CHUTE) == Accepted()
    assert (await driver.completion_of(first)).ok

    async def full() -> bool:
        level = await driver.chute(SMALL_CHUTE)
        return level.full and level.count == 1

    await eventually(full, f"{SMALL_CHUTE} full at count 1")
    second = await driver.induct("TOTE-FILL-2")
    assert await driver.divert(second, SMALL_CHUTE) == Accepted()
    assert not (await driver.completion_of(second)).ok


async def test_a_divert_to_an_unknown_chute_or_item_is_refused_and_later_calls_work(
    driver: Driver,
) -> None:
    item_id = await driver.induct("TOTE-UNKNOWN")
    assert_refused(await driver.divert(item_id, "NO-SUCH-CHUTE"), driver, "BadInvalidArgument")
    assert_refused(await driver.divert("NO-SUCH-ITEM", PLAIN_CHUTE), driver, "BadInvalidArgument")
    assert await driver.alive()
    assert await driver.divert(item_id, PLAIN_CHUTE) == Accepted()
    done = await driver.completion_of(item_id)
    assert (done.chute_id, done.ok) == (PLAIN_CHUTE, True)


# --- chutes -----------------------------------------------------------------------------------


async def test_chute_full_and_enabled_changes_are_visible(driver: Driver) -> None:
    chute_id = LEVEL_CHUTE
    initial = await driver.chute(chute_id)
    assert (initial.full, initial.enabled) == (False, True)

    async def shows(full: bool, enabled: bool) -> None:
        async def check() -> bool:
            level = await driver.chute(chute_id)
            return (level.full, level.enabled) == (full, enabled)

        await eventually(check, f"{chute_id} full={full} enabled={enabled}")

    await driver.sim.set_chute_full(chute_id, True)
    await shows(full=True, enabled=True)
    await driver.sim.set_chute_full(chute_id, False)
    await shows(full=False, enabled=True)
    await driver.sim.set_chute_enabled(chute_id, False)
    await shows(full=False, enabled=False)
    await driver.sim.set_chute_enabled(chute_id, True)
    await shows(full=False, enabled=True)
