"""Rules that tie parts of a line file together, reported all at once with their place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from controller.linefile.roadmap_checks import check_roadmap
from controller.webhooks.policy import ReceiverPolicy
from kernel.config.model import ChuteKind, LineConfig, OpcUaEndpoint
from routing.rack import BadLocation, Rack, parse_location

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem in a line file: where (path in the document) and what."""

    path: Path
    message: str


def _dupes(items: Iterable[tuple[int, str]], base: Path, field: str, what: str) -> list[Issue]:
    seen: Counter[str] = Counter()
    out = []
    for index, key in items:
        seen[key] += 1
        if seen[key] == 2:
            out.append(
                Issue((*base, index, field), f"duplicate {what} id {key!r}; ids must be unique")
            )
    return out


def cross_check(cfg: LineConfig) -> list[Issue]:
    """Every reference between sections resolves, and ids are unique."""
    issues: list[Issue] = []
    ra = cfg.robots
    node_ids = {n.id for n in ra.nodes}
    zone_ids = {z.id for z in cfg.conveyor.zones}
    sorter = cfg.conveyor.sorter
    chute_ids = {c.id for c in sorter.chutes}
    sku_ids = {s.sku for s in cfg.skus}
    location_ids = {loc.id for loc in ra.storage_locations}

    issues += _dupes(((i, n.id) for i, n in enumerate(ra.nodes)), ("robots", "nodes"), "id", "node")
    issues += _dupes(
        ((i, r.serial) for i, r in enumerate(ra.fleet)), ("robots", "fleet"), "serial", "robot"
    )
    issues += _dupes(
        ((i, s.id) for i, s in enumerate(ra.storage_locations)),
        ("robots", "storage_locations"),
        "id",
        "storage location",
    )
    issues += _dupes(
        ((i, z.id) for i, z in enumerate(cfg.conveyor.zones)), ("conveyor", "zones"), "id", "zone"
    )
    issues += _dupes(
        ((i, c.id) for i, c in enumerate(sorter.chutes)),
        ("conveyor", "sorter", "chutes"),
        "id",
        "chute",
    )
    issues += _dupes(
        ((i, d.id) for i, d in enumerate(sorter.diverts)),
        ("conveyor", "sorter", "diverts"),
        "id",
        "divert",
    )
    issues += _dupes(((i, s.sku) for i, s in enumerate(cfg.skus)), ("skus",), "sku", "SKU")
    if cfg.failover.enabled and cfg.store.backend != "postgresql":
        issues.append(
            Issue(
                ("failover", "enabled"),
                "a standby needs the store both controllers share: set store.backend postgresql",
            )
        )

    def need_node(path: Path, node: str, what: str) -> None:
        if node not in node_ids:
            issues.append(Issue(path, f"{what} {node!r} is not a node of robots.nodes"))

    for i, e in enumerate(ra.edges):
        need_node(("robots", "edges", i, "start"), e.start, "edge start")
        need_node(("robots", "edges", i, "end"), e.end, "edge end")
        if e.start == e.end:
            issues.append(Issue(("robots", "edges", i), "an edge must join two different nodes"))
    for i, loc in enumerate(ra.storage_locations):
        need_node(("robots", "storage_locations", i, "node"), loc.node, "storage node")
    for i, ch in enumerate(ra.chargers):
        need_node(("robots", "chargers", i, "node"), ch.node, "charger node")
    for i, ind in enumerate(ra.inductions):
        need_node(("robots", "inductions", i, "node"), ind.node, "induction node")
        if ind.zone not in zone_ids:
            issues.append(
                Issue(
                    ("robots", "inductions", i, "zone"),
                    f"zone {ind.zone!r} is not a zone of conveyor.zones",
                )
            )
    if not ra.inductions:
        issues.append(Issue(("robots", "inductions"), "at least one induction point is needed"))
    for i, node in enumerate(ra.traffic.parking):
        need_node(("robots", "traffic", "parking", i), node, "parking node")
    for i, r in enumerate(ra.fleet):
        need_node(("robots", "fleet", i, "home"), r.home, "home node")
        if r.model not in ra.models:
            issues.append(
                Issue(
                    ("robots", "fleet", i, "model"),
                    f"robot model {r.model!r} is not defined; known: {sorted(ra.models)}",
                )
            )

    conv = cfg.conveyor
    if conv.scanner.zone not in zone_ids:
        issues.append(
            Issue(("conveyor", "scanner", "zone"), f"zone {conv.scanner.zone!r} is not defined")
        )
    for i, d in enumerate(sorter.diverts):
        if d.zone not in zone_ids:
            issues.append(
                Issue(
                    ("conveyor", "sorter", "diverts", i, "zone"), f"zone {d.zone!r} is not defined"
                )
            )
        if d.chute not in chute_ids:
            issues.append(
                Issue(
                    ("conveyor", "sorter", "diverts", i, "chute"),
                    f"divert points at chute {d.chute!r}, which is not in conveyor.sorter.chutes",
                )
            )
    diverted_chutes = {d.chute for d in sorter.diverts}
    for i, c in enumerate(sorter.chutes):
        if c.id not in diverted_chutes:
            issues.append(
                Issue(("conveyor", "sorter", "chutes", i), f"no divert leads to chute {c.id!r}")
            )
    if sorter.reject_chute not in chute_ids:
        issues.append(
            Issue(
                ("conveyor", "sorter", "reject_chute"),
                f"reject chute {sorter.reject_chute!r} is not in conveyor.sorter.chutes",
            )
        )
    else:
        kind = next(c.kind for c in sorter.chutes if c.id == sorter.reject_chute)
        if kind is not ChuteKind.REJECT:
            issues.append(
                Issue(
                    ("conveyor", "sorter", "reject_chute"),
                    "the reject chute must be of kind reject",
                )
            )
    if sorter.b2b_chute is not None and sorter.b2b_chute not in chute_ids:
        issues.append(
            Issue(("conveyor", "sorter", "b2b_chute"), f"chute {sorter.b2b_chute!r} is not defined")
        )
    issues += _sort_plan(cfg)
    issues += [Issue(path, message) for path, message in check_roadmap(cfg)]

    issues += _opcua_security(conv.opcua)

    policy = ReceiverPolicy.of(cfg.webhooks)
    for i, target in enumerate(cfg.webhooks.targets):
        refused = policy.refuse_url(str(target.url))
        if refused is not None:
            issues.append(
                Issue(("webhooks", "targets", i, "url"), f"not an allowed receiver: {refused}")
            )

    issues += _asrs(cfg, zone_ids, sku_ids)

    replenishment_chutes = [c.id for c in sorter.chutes if c.kind is ChuteKind.REPLENISHMENT]
    for i, st in enumerate(cfg.stock):
        if st.replenish_below > 0 and not cfg.asrs.aisles:
            issues.append(
                Issue(("stock", i, "replenish_below"), "replenishment needs an AS/RS (asrs.aisles)")
            )
        elif st.replenish_below > 0 and not replenishment_chutes:
            issues.append(
                Issue(
                    ("stock", i, "replenish_below"),
                    "replenishment needs a chute of kind replenishment in conveyor.sorter.chutes",
                )
            )
        if st.sku not in sku_ids:
            issues.append(Issue(("stock", i, "sku"), f"SKU {st.sku!r} is not in the SKU master"))
        if st.replenish_to is not None and st.replenish_to <= st.replenish_below:
            issues.append(
                Issue(
                    ("stock", i, "replenish_to"),
                    f"must be above replenish_below ({st.replenish_below})",
                )
            )
        if st.location not in location_ids:
            issues.append(
                Issue(
                    ("stock", i, "location"), f"location {st.location!r} is not a storage location"
                )
            )
    return issues


def _asrs(cfg: LineConfig, zone_ids: set[str], sku_ids: set[str]) -> list[Issue]:
    """Aisles and cranes with unique ids, P&D points on defined zones, class shares that add
    up, and totes with unique ids in distinct locations of the racks."""
    asrs = cfg.asrs
    issues: list[Issue] = []
    racks: dict[str, Rack] = {}
    cranes: set[str] = set()
    for a, aisle in enumerate(asrs.aisles):
        path: Path = ("asrs", "aisles", a)
        if aisle.id in racks:
            issues.append(Issue((*path, "id"), f"aisle {aisle.id!r} is defined twice"))
        racks[aisle.id] = Rack(
            aisle.id, aisle.bays, aisle.levels, aisle.sides, aisle.bay_width, aisle.level_height
        )
        if aisle.crane.id in cranes:
            issues.append(Issue((*path, "crane", "id"), f"crane {aisle.crane.id!r} is used twice"))
        cranes.add(aisle.crane.id)
        if aisle.pd_zone is not None and aisle.pd_zone not in zone_ids:
            issues.append(Issue((*path, "pd_zone"), f"zone {aisle.pd_zone!r} is not defined"))
    loc_shares, turn_shares = asrs.class_location_shares, asrs.class_turnover_shares
    if len(loc_shares) != len(turn_shares):
        issues.append(
            Issue(
                ("asrs", "class_turnover_shares"),
                f"has {len(turn_shares)} classes, class_location_shares has {len(loc_shares)}",
            )
        )
    for name, shares in (
        ("class_location_shares", loc_shares),
        ("class_turnover_shares", turn_shares),
    ):
        if abs(sum(shares) - 1.0) > 1e-6:
            issues.append(Issue(("asrs", name), f"must add up to 1, not {sum(shares):g}"))
    totes: set[str] = set()
    held: set[str] = set()
    for t, tote in enumerate(asrs.totes):
        path = ("asrs", "totes", t)
        if tote.tote in totes:
            issues.append(Issue((*path, "tote"), f"tote {tote.tote!r} is listed twice"))
        totes.add(tote.tote)
        if tote.sku not in sku_ids:
            issues.append(Issue((*path, "sku"), f"SKU {tote.sku!r} is not in the SKU master"))
        try:
            loc = parse_location(tote.location)
            rack = racks.get(loc.aisle)
            if rack is None:
                raise BadLocation(f"{tote.location!r}: there is no aisle {loc.aisle!r}")
            rack.check(tote.location)
        except BadLocation as exc:
            issues.append(Issue((*path, "location"), str(exc)))
            continue
        if tote.location in held:
            issues.append(
                Issue((*path, "location"), f"location {tote.location!r} holds another tote")
            )
        held.add(tote.location)
    return issues


def _sort_plan(cfg: LineConfig) -> list[Issue]:
    """Plan entries name chutes a divert leads to, never the reject chute or a replenishment
    chute (those take AS/RS totes for pick locations only); the B2B pool too."""
    sorter = cfg.conveyor.sorter
    base: Path = ("conveyor", "sorter")
    kinds = {c.id: c.kind for c in sorter.chutes}
    diverted = {d.chute for d in sorter.diverts}
    issues: list[Issue] = []

    def usable(path: Path, chute: str, what: str) -> None:
        if chute not in kinds:
            issues.append(Issue(path, f"{what} {chute!r}, which is not in conveyor.sorter.chutes"))
        elif chute == sorter.reject_chute:
            issues.append(Issue(path, f"{what} {chute!r}, which is the reject chute"))
        elif kinds[chute] is ChuteKind.REPLENISHMENT:
            issues.append(Issue(path, f"{what} {chute!r}, which is a replenishment chute"))
        elif chute not in diverted:
            issues.append(Issue(path, f"{what} {chute!r}, which no divert leads to"))

    def listing(path: Path, chutes: tuple[str, ...], what: str) -> None:
        if not chutes:
            issues.append(Issue(path, "names no chute; give a chute id or a list of them"))
        for i, chute in enumerate(chutes):
            if chute in chutes[:i]:
                issues.append(Issue((*path, i), f"chute {chute!r} is listed twice"))
            else:
                usable((*path, i) if len(chutes) > 1 else path, chute, what)

    for dest, chutes in sorter.sort_plan.items():
        listing((*base, "sort_plan", dest), chutes, f"destination {dest!r} maps to chute")

    alloc = sorter.b2b_allocation
    path: Path = (*base, "b2b_allocation", "chutes")
    if alloc.mode == "static":
        if alloc.chutes:
            issues.append(Issue(path, "a chute pool needs mode dynamic"))
        return issues
    if not alloc.chutes:
        issues.append(Issue(path, "mode dynamic needs at least one chute in the pool"))
        return issues
    listing(path, alloc.chutes, "the B2B pool names chute")
    for i, chute in enumerate(alloc.chutes):
        if kinds.get(chute, ChuteKind.B2B) is not ChuteKind.B2B:
            issues.append(Issue((*path, i), f"pool chute {chute!r} must be of kind b2b"))
    pool = set(alloc.chutes)
    for dest, chutes in sorter.sort_plan.items():
        if 0 < len(pool.intersection(chutes)) < len(chutes):
            issues.append(
                Issue(
                    (*base, "sort_plan", dest),
                    f"destination {dest!r} mixes B2B pool chutes with others; name either "
                    "pool chutes (preferred when free) or chutes outside the pool (dedicated)",
                )
            )
    return issues


def _opcua_security(opcua: OpcUaEndpoint) -> list[Issue]:
    """A secured channel needs the controller's own certificate and key and a user name and
    password (the server admits no anonymous sessions then); a password is only ever sent
    encrypted, so security None takes neither."""
    base: Path = ("conveyor", "opcua")
    issues: list[Issue] = []
    if opcua.security == "Basic256Sha256":
        for field in ("certificate", "private_key"):
            if not getattr(opcua, field):
                issues.append(Issue((*base, field), "required when security is Basic256Sha256"))
        if not opcua.username:
            issues.append(
                Issue(
                    (*base, "username"),
                    "required when security is Basic256Sha256 (no anonymous sessions)",
                )
            )
        if opcua.password is None or not opcua.password.get_secret_value():
            issues.append(
                Issue(
                    (*base, "password"),
                    "required when security is Basic256Sha256; set it as "
                    "LINECTL_CONVEYOR__OPCUA__PASSWORD rather than in the file",
                )
            )
        return issues
    if opcua.username is not None or opcua.password is not None:
        issues.append(
            Issue(
                (*base, "security"),
                "username and password need security Basic256Sha256 (never sent in the clear)",
            )
        )
    return issues
