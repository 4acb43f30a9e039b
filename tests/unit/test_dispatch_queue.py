"""The release queue: release order kept as orders come and go, delivery windows, the AS/RS
index, and a round that looks only at the head."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice

from controller.orders.model import OrderIn, OrderRecord, OrderStatus
from controller.robots.queue import Pending, ReleaseQueue

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def record(
    order_id: str, due_in: float, priority: int = 5, window_in: float | None = None
) -> OrderRecord:
    body = {
        "type": "b2c" if window_in is None else "b2b",
        "priority": priority,
        "due_at": (T0 + timedelta(minutes=due_in)).isoformat(),
        "destination": "UPS",
        "lines": [{"line_id": "1", "sku": "SKU-0001", "quantity": 1}],
    }
    if window_in is not None:
        body["deliver_from"] = (T0 + timedelta(minutes=window_in)).isoformat()
        body["deliver_until"] = (T0 + timedelta(minutes=window_in + 600)).isoformat()
    parsed = OrderIn.model_validate(body)
    return OrderRecord(
        id=order_id,
        type=parsed.type,
        status=OrderStatus.ACCEPTED,
        priority=parsed.priority,
        due_at=parsed.due_at,
        destination=parsed.destination,
        body=parsed,
        fingerprint="-",
        created_at=T0,
        updated_at=T0,
    )


def ids(queue: ReleaseQueue, now: datetime = T0, **kw: bool) -> list[str]:
    return [p.record.id for p in queue.in_release_order(now, **kw)]


def test_orders_come_out_by_due_time_then_priority_then_arrival() -> None:
    q = ReleaseQueue()
    for seq, (oid, due, prio) in enumerate(
        [("late", 90, 9), ("a", 30, 5), ("urgent", 30, 8), ("b", 30, 5), ("soon", 10, 1)]
    ):
        q.add(Pending(record(oid, due, prio), seq), T0)
    assert ids(q) == ["soon", "urgent", "a", "b", "late"]
    assert len(q) == 5 and "a" in q and q["a"].record.id == "a"


def test_removed_and_changed_orders_move_without_a_resort() -> None:
    q = ReleaseQueue()
    for seq, oid in enumerate("abcd"):
        q.add(Pending(record(oid, 10 * (seq + 1)), seq), T0)
    assert q.pop("b") is not None and q.pop("b") is None
    del q["c"]
    q.changed(record("d", 1))  # due earlier now
    q.changed(record("a", 10))  # the same place: not listed twice
    assert ids(q) == ["d", "a"]
    assert q.changed(record("zz", 1)) is None


def test_an_order_waits_for_its_window_and_is_said_to_once() -> None:
    q = ReleaseQueue()
    q.add(Pending(record("now", 30), 1), T0)
    q.add(Pending(record("later", 5, window_in=60), 2), T0)
    assert [p.record.id for p in q.deferred()] == ["later"]
    assert q.deferred() == []  # said once
    assert ids(q) == ["now"]
    assert ids(q, T0 + timedelta(minutes=61)) == ["later", "now"]  # due first once open
    q.pop("later")
    assert ids(q, T0 + timedelta(hours=3)) == ["now"]


def test_the_asrs_index_holds_only_orders_waiting_for_their_totes() -> None:
    q = ReleaseQueue()
    for seq, oid in enumerate("abc"):
        p = Pending(record(oid, seq), seq, asrs=oid != "b")
        q.add(p, T0)
    assert ids(q, asrs_only=True) == ["a", "c"]
    q.served_by_asrs("a")
    assert ids(q, asrs_only=True) == ["c"] and ids(q) == ["a", "b", "c"]


def test_a_huge_queue_keeps_its_order_through_churn() -> None:
    q = ReleaseQueue()
    n = 5000
    for i in range(n):
        q.add(Pending(record(f"o{i}", (i * 7919) % n), i), T0)
    for i in range(0, n, 2):
        q.pop(f"o{i}")  # enough to sweep the stale entries out
    left = ids(q)
    assert len(left) == n // 2 == len(q)
    dues = [q[o].record.due_at for o in left]
    assert dues == sorted(dues)
    # the head is read without walking the whole queue
    assert len(list(islice(q.in_release_order(T0), 12))) == 12
    assert len(q._sorted) < n  # swept
