"""The sorter adapter's divert journal numbers handled (devices/opcua/sorter/state.py)."""

from __future__ import annotations

from devices.opcua.sorter.state import HandledDiverts


def test_numbers_handled_out_of_order_close_the_gap_behind_them() -> None:
    h = HandledDiverts()
    h.handled_through(288)
    h.mark(290)
    assert not h.seen(289) and h.seen(290) and h.through == 288
    h.mark(289)
    assert h.through == 290 and h.above == set() and h.seen(289)


def test_a_number_is_handled_once() -> None:
    h = HandledDiverts(through=5)
    assert h.seen(3) and h.seen(5) and not h.seen(6)
    h.mark(7)
    h.mark(7)
    assert h.above == {7} and h.highest == 7


def test_before_the_first_contact_numbers_wait_above_an_unknown_position() -> None:
    h = HandledDiverts()
    h.mark(12)
    assert h.seen(12) and not h.seen(11) and h.highest == 12
    h.handled_through(10)  # the journal's position at first contact
    assert h.through == 10 and h.above == {12}
    h.mark(11)
    assert h.through == 12 and h.above == set()


def test_reading_the_journal_back_covers_what_arrived_in_between() -> None:
    h = HandledDiverts(through=10, above={13, 20})
    h.handled_through(15)
    assert h.through == 15 and h.above == {20}
    h.handled_through(12)  # never goes back
    assert h.through == 15


def test_a_journal_started_again_forgets_the_old_numbers() -> None:
    h = HandledDiverts(through=500, above={502})
    h.restart(3)
    assert h.through == 3 and h.above == set() and not h.seen(4)
