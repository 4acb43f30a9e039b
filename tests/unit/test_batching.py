from routing.batching import Candidate, make_batches, tour_length
from routing.roadmap import Edge, Node, Roadmap


def line_map(n: int) -> Roadmap:
    nodes = tuple(Node(f"N{i}", float(i) * 5, 0.0, "m") for i in range(n))
    return Roadmap(nodes, tuple(Edge(f"N{i}", f"N{i + 1}") for i in range(n - 1)))


DIST = line_map(20).matrix


def test_tour_length() -> None:
    assert tour_length(DIST, []) == 0.0
    assert tour_length(DIST, [0]) == 0.0
    assert tour_length(DIST, [0, 4, 2]) == 20.0  # 0 -> 2 -> 4


def test_near_orders_with_close_cut_offs_share_a_trip() -> None:
    cands = [
        Candidate("a", due=100, priority=5, nodes=(2,)),
        Candidate("b", due=200, priority=5, nodes=(3,)),
        Candidate("c", due=300, priority=5, nodes=(4,)),
        Candidate("far", due=150, priority=5, nodes=(19,)),  # 85 m away: not worth the detour
        Candidate("late", due=9000, priority=5, nodes=(2,)),  # outside the cut-off window
    ]
    batches = make_batches(DIST, cands, capacity=4)
    assert [b.order_ids for b in batches] == [("a", "b", "c"), ("far",), ("late",)]
    assert batches[0].tour_length == 10.0


def test_capacity_b2b_and_every_order_once() -> None:
    cands = [Candidate(f"o{i}", due=i, priority=5, nodes=(i % 3,)) for i in range(9)]
    cands.append(Candidate("b2b", due=0.5, priority=5, nodes=(1,), batchable=False))
    batches = make_batches(DIST, cands, capacity=4)
    assert all(len(b.order_ids) <= 4 for b in batches)
    assert ("b2b",) in [b.order_ids for b in batches]
    ids = [o for b in batches for o in b.order_ids]
    assert sorted(ids) == sorted(c.order_id for c in cands)
    assert make_batches(DIST, cands, capacity=1) == [
        type(batches[0])((c,), 0.0) for c in ["o0", "b2b", *[f"o{i}" for i in range(1, 9)]]
    ]
