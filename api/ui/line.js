// linectl live line page: draws the plan from GET /v1/line/plan once, then keeps it up to date
// from the Server-Sent Events of GET /v1/line/stream (each message a whole line view). Every
// request carries the bearer token kept in this tab's sessionStorage, so the stream is read with
// fetch() rather than EventSource (which cannot send a header). Nothing here uses innerHTML:
// every text from the controller goes into the page as text.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const TOKEN_KEY = "linectl.token";
// seconds between the controller's looks for a change: /ui?interval=1 for a slow link
const STREAM_INTERVAL = Math.min(10, Math.max(0.2, Number(new URLSearchParams(location.search).get("interval")) || 0.5));
const PX = 28; // pixels per metre on the robots' floor
const MARGIN = 30;

const state = {
  plan: null,
  view: null,
  layout: null,
  scopes: [],
  selected: null, // {kind: "robot"|"order"|"zone"|"crane"|"chute", id}
  streamAbort: null,
  generation: 0, // counts start(): a stream loop of an earlier one stops
  robotsDrawn: new Map(),
  nodeCircles: new Map(),
  detailKey: "", // what the detail panel shows now: rebuilt only when it changes
  actionsKey: "",
  standbyShown: false,
};

// --- small helpers -----------------------------------------------------------------------------

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function html(name, text = "", attrs = {}) {
  const node = document.createElement(name);
  if (text !== "") node.textContent = text;
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function $(id) {
  return document.getElementById(id);
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  if (token()) h.Authorization = `Bearer ${token()}`;
  return h;
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    try {
      const problem = await response.json();
      if (problem.detail) detail = problem.detail;
    } catch (_) {
      /* not problem+json */
    }
    throw new ApiError(response.status, detail);
  }
  return response.json();
}

function say(text, bad = false) {
  const box = $("message");
  box.textContent = text;
  box.classList.toggle("bad", bad);
  box.classList.toggle("hidden", !text);
}

function ago(iso) {
  if (!iso) return "";
  // on the line's clock, which runs faster than the wall clock on a simulated line
  const now = state.view && state.view.at ? Date.parse(state.view.at) : Date.now();
  const seconds = Math.max(0, (now - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// --- layout: where everything goes on the plan ------------------------------------------------

function layOut(plan) {
  const nodes = plan.robots.nodes;
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const minX = Math.min(...xs, 0);
  const maxX = Math.max(...xs, 1);
  const minY = Math.min(...ys, 0);
  const maxY = Math.max(...ys, 1);
  const floorWidth = (maxX - minX) * PX;
  const floorHeight = (maxY - minY) * PX;
  const node = new Map();
  for (const n of nodes) {
    node.set(n.id, { x: MARGIN + (n.x - minX) * PX, y: MARGIN + 14 + (maxY - n.y) * PX });
  }
  const toPx = (x, y) => ({ x: MARGIN + (x - minX) * PX, y: MARGIN + 14 + (maxY - y) * PX });

  // the conveyor loop: the first half of the zones left to right, the rest right to left below
  const zones = plan.conveyor.zones;
  const top = Math.ceil(zones.length / 2);
  const width = Math.max(floorWidth, top * 26);
  const zoneWidth = width / top;
  const zoneHeight = 22;
  const loopTop = MARGIN + 14 + floorHeight + 60;
  const chuteHeight = 46;
  const loopBottom = loopTop + zoneHeight + 2 * chuteHeight + 40;
  const zone = new Map();
  zones.forEach((z, i) => {
    if (i < top) {
      zone.set(z.id, { x: MARGIN + i * zoneWidth, y: loopTop, w: zoneWidth, h: zoneHeight, row: "top" });
    } else {
      const j = zones.length - 1 - i; // right to left
      const w = width / (zones.length - top);
      zone.set(z.id, { x: MARGIN + j * w, y: loopBottom, w, h: zoneHeight, row: "bottom" });
    }
  });
  const chute = new Map();
  for (const d of plan.conveyor.diverts) {
    const z = zone.get(d.zone);
    if (!z || chute.has(d.chute)) continue;
    const w = Math.min(z.w - 4, 30);
    const x = z.x + (z.w - w) / 2;
    const y = z.row === "top" ? z.y + z.h + 14 : z.y - 14 - chuteHeight + 14;
    chute.set(d.chute, { x, y, w, h: chuteHeight - 14, zone: z, divert: d.id });
  }

  // the AS/RS aisles below the loop, their P&D point on the left
  const aisles = new Map();
  let y = loopBottom + zoneHeight + 50;
  const aisleScale = Math.min(PX, width / Math.max(1, ...plan.asrs.aisles.map((a) => a.bays * a.bay_width)));
  for (const a of plan.asrs.aisles) {
    const length = a.bays * a.bay_width * aisleScale;
    aisles.set(a.id, { x: MARGIN + 40, y, w: length, h: 26, scale: aisleScale, aisle: a });
    y += 50;
  }
  const height = y + (plan.asrs.aisles.length ? 10 : -30);
  return {
    node, toPx, zone, chute, aisles,
    width: MARGIN * 2 + Math.max(width, ...[...aisles.values()].map((a) => a.w + 40)),
    height: height + MARGIN,
    floorBottom: MARGIN + 14 + floorHeight,
    loopTop, loopBottom, zoneHeight,
  };
}

// --- drawing the plan once ---------------------------------------------------------------------

function drawPlan(plan) {
  const svg = $("plan");
  svg.replaceChildren();
  const L = layOut(plan);
  state.layout = L;
  svg.setAttribute("viewBox", `0 0 ${L.width} ${L.height}`);
  el("text", { x: MARGIN, y: MARGIN - 6, class: "area-label" }, svg).textContent =
    `Robots: map ${plan.robots.map_id}`;

  const edges = el("g", { id: "edges" }, svg);
  for (const e of plan.robots.edges) {
    const a = L.node.get(e.start);
    const b = L.node.get(e.end);
    if (a && b) el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge" }, edges);
  }
  const chargers = new Set(plan.robots.chargers.map((c) => c.node));
  const inductions = new Map(plan.robots.inductions.map((i) => [i.node, i]));
  // induction drops onto the conveyor
  const feeds = el("g", { id: "feeds" }, svg);
  for (const i of plan.robots.inductions) {
    const a = L.node.get(i.node);
    const z = L.zone.get(i.zone);
    if (a && z) el("path", { d: `M${a.x},${a.y} L${z.x + z.w / 2},${z.y}`, class: "feed" }, feeds);
  }
  const nodes = el("g", { id: "nodes" }, svg);
  for (const n of plan.robots.nodes) {
    const p = L.node.get(n.id);
    let kind = n.locations ? "location" : "";
    if (chargers.has(n.id)) kind = "charger";
    if (inductions.has(n.id)) kind = "induction";
    const circle = el("circle", { cx: p.x, cy: p.y, r: 7, class: `node ${kind}`, "data-node": n.id }, nodes);
    state.nodeCircles.set(n.id, circle);
    el("text", { x: p.x + 8, y: p.y - 8, class: "node-label" }, nodes).textContent = n.id;
  }
  el("g", { id: "waits" }, svg);
  el("g", { id: "robots" }, svg);

  // the conveyor
  el("text", { x: MARGIN, y: L.loopTop - 22, class: "area-label" }, svg).textContent =
    `Conveyor ${plan.conveyor.id}`;
  const conveyor = el("g", { id: "conveyor" }, svg);
  const scanner = plan.conveyor.scanner;
  for (const z of plan.conveyor.zones) {
    const r = L.zone.get(z.id);
    const g = el("g", { "data-zone": z.id }, conveyor);
    el("rect", { x: r.x, y: r.y, width: r.w, height: r.h, class: "zone unknown" }, g);
    el("rect", { x: r.x + r.w / 2 - 6, y: r.y + r.h / 2 - 6, width: 12, height: 12, rx: 2, class: "tote hidden" }, g);
    const labelY = r.row === "top" ? r.y - 3 : r.y + r.h + 10;
    el("text", { x: r.x + 2, y: labelY, class: "zone-label" }, g).textContent = z.id;
    g.addEventListener("click", () => select("zone", z.id));
    if (z.id === scanner.zone) {
      const sx = r.row === "top" ? r.x + r.w : r.x;
      el("path", { d: `M${sx},${r.y - 6} l-5,-8 l10,0 z`, class: "scanner" }, conveyor);
      el("text", { x: sx - 12, y: r.y - 16, class: "zone-label" }, conveyor).textContent = scanner.id;
    }
  }
  const capacity = new Map(plan.conveyor.chutes.map((c) => [c.id, c.capacity]));
  for (const [id, c] of L.chute) {
    const g = el("g", { "data-chute": id }, conveyor);
    const zy = c.zone.row === "top" ? c.zone.y + c.zone.h : c.zone.y;
    const cy = c.zone.row === "top" ? c.y : c.y + c.h;
    el("line", { x1: c.x + c.w / 2, y1: zy, x2: c.x + c.w / 2, y2: cy, class: "divert" }, g);
    el("rect", { x: c.x, y: c.y, width: c.w, height: c.h, class: "chute" }, g);
    el("rect", { x: c.x, y: c.y + c.h, width: c.w, height: 0, class: "chute-fill" }, g);
    const label = el("text", { x: c.x, y: c.zone.row === "top" ? c.y + c.h + 10 : c.y - 3, class: "chute-label" }, g);
    label.textContent = id;
    c.capacity = capacity.get(id) || 1;
    g.addEventListener("click", () => select("chute", id));
  }

  // the AS/RS
  const asrs = el("g", { id: "asrs" }, svg);
  if (L.aisles.size) {
    const first = [...L.aisles.values()][0];
    el("text", { x: MARGIN, y: first.y - 12, class: "area-label" }, asrs).textContent = "AS/RS";
  }
  for (const [id, a] of L.aisles) {
    const g = el("g", { "data-aisle": id }, asrs);
    el("rect", { x: a.x, y: a.y, width: a.w, height: a.h, class: "aisle" }, g);
    el("rect", { x: a.x - 30, y: a.y + 3, width: 24, height: a.h - 6, class: "pd" }, g);
    el("text", { x: a.x - 30, y: a.y - 3, class: "zone-label" }, g).textContent = `${id} P&D`;
    const pd = a.aisle.pd_zone && L.zone.get(a.aisle.pd_zone);
    if (pd) {
      el("path", { d: `M${a.x - 18},${a.y} L${pd.x + pd.w / 2},${pd.y + pd.h}`, class: "feed" }, g);
    }
    const crane = el("g", { class: "crane-g", "data-crane": a.aisle.crane }, g);
    el("rect", { x: a.x, y: a.y - 3, width: 12, height: a.h + 6, rx: 2, class: "crane Unknown" }, crane);
    el("rect", { x: a.x + 3, y: a.y + a.h, width: 6, height: 0, class: "crane-lift" }, crane);
    el("text", { x: a.x + a.w + 6, y: a.y + a.h / 2 + 4, class: "zone-label" }, g).textContent =
      `${a.aisle.crane}`;
    crane.addEventListener("click", () => select("crane", a.aisle.crane));
  }
}

// --- updating it from each view --------------------------------------------------------------

function robotClass(r) {
  if (r.connection !== "ONLINE") return "robot-offline";
  if (r.errors.length || r.attention) return "robot-fault";
  if (r.paused) return "robot-paused";
  if (r.charging) return "robot-charging";
  if (r.busy) return "robot-busy";
  return "robot-idle";
}

function robotStateText(r) {
  return {
    "robot-offline": r.connection.toLowerCase(),
    "robot-fault": r.attention ? "needs attention" : "error",
    "robot-paused": "paused",
    "robot-charging": "charging",
    "robot-busy": "on a trip",
    "robot-idle": "idle",
  }[robotClass(r)];
}

function robotPoint(r) {
  const L = state.layout;
  if (r.x !== null && r.y !== null) return L.toPx(r.x, r.y);
  return r.last_node_id ? L.node.get(r.last_node_id) || null : null;
}

function drawRobots(view) {
  const group = $("robots");
  const waits = $("waits");
  waits.replaceChildren();
  const seen = new Set();
  for (const node of state.nodeCircles.values()) node.classList.remove("base", "horizon");
  for (const r of view.robots) {
    seen.add(r.serial);
    if (r.traffic) {
      for (const id of r.traffic.horizon || []) nodeCircle(id)?.classList.add("horizon");
      for (const id of r.traffic.base || []) nodeCircle(id)?.classList.add("base");
    }
    let g = state.robotsDrawn.get(r.serial);
    if (!g) {
      g = el("g", { class: "robot", "data-robot": r.serial }, group);
      el("circle", { r: 11, class: "body" }, g);
      el("text", { "text-anchor": "middle", y: 4 }, g).textContent = r.serial.slice(-3);
      el("rect", { x: -11, y: 14, width: 22, height: 4, class: "battery-bg" }, g);
      el("rect", { x: -11, y: 14, width: 22, height: 4, class: "battery" }, g);
      el("title", {}, g);
      g.addEventListener("click", () => select("robot", r.serial));
      state.robotsDrawn.set(r.serial, g);
    }
    const p = robotPoint(r);
    g.classList.toggle("hidden", !p);
    if (p) g.setAttribute("transform", `translate(${p.x.toFixed(1)},${p.y.toFixed(1)})`);
    const body = g.querySelector("circle.body");
    body.setAttribute("class", `body ${robotClass(r)}`);
    const battery = g.querySelector("rect.battery");
    const charge = r.battery === null ? 0 : Math.max(0, Math.min(100, r.battery));
    battery.setAttribute("width", (22 * charge) / 100);
    battery.classList.toggle("low", charge < 25);
    g.classList.toggle("selected", state.selected?.kind === "robot" && state.selected.id === r.serial);
    g.querySelector("title").textContent = `${r.serial}: ${robotStateText(r)}`;
    const wait = r.traffic?.waiting_for;
    if (wait && p) {
      const q = state.layout.node.get(wait.node);
      if (q) el("line", { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: "wait-line" }, waits);
    }
  }
  for (const [serial, g] of state.robotsDrawn) {
    if (!seen.has(serial)) {
      g.remove();
      state.robotsDrawn.delete(serial);
    }
  }
}

function nodeCircle(id) {
  return state.nodeCircles.get(id);
}

function drawConveyor(view) {
  const c = view.conveyors[0];
  if (!c) return;
  const zones = new Map((c.zones || []).map((z) => [z.zone_id, z]));
  for (const g of document.querySelectorAll("#conveyor g[data-zone]")) {
    const id = g.getAttribute("data-zone");
    const z = zones.get(id);
    const rect = g.querySelector("rect.zone");
    let kind = "unknown";
    if (z && z.jammed) kind = "jam";
    else if (z && z.held) kind = "held";
    else if (z && z.running === true) kind = "running";
    else if (z && z.running === false) kind = "stopped";
    rect.setAttribute("class", `zone ${kind}`);
    rect.classList.toggle("selected", state.selected?.kind === "zone" && state.selected.id === id);
    g.querySelector("rect.tote").classList.toggle("hidden", !(z && z.occupied));
    g.setAttribute("data-state", kind);
  }
  const chutes = new Map(c.chutes.map((ch) => [ch.chute_id, ch]));
  for (const g of document.querySelectorAll("#conveyor g[data-chute]")) {
    const id = g.getAttribute("data-chute");
    const ch = chutes.get(id);
    const box = state.layout.chute.get(id);
    const fill = g.querySelector("rect.chute-fill");
    const share = ch ? Math.min(1, ch.count / box.capacity) : 0;
    fill.setAttribute("y", box.y + box.h * (1 - share));
    fill.setAttribute("height", box.h * share);
    fill.classList.toggle("full", Boolean(ch && ch.full));
    const outline = g.querySelector("rect.chute");
    outline.setAttribute("class", `chute${ch && ch.full ? " full" : ""}${ch && !ch.enabled ? " disabled" : ""}`);
    g.setAttribute("data-count", ch ? ch.count : "");
  }
}

function drawCranes(view) {
  for (const crane of view.cranes) {
    const g = document.querySelector(`#asrs g[data-crane="${CSS.escape(crane.crane)}"]`);
    if (!g) continue;
    const a = state.layout.aisles.get(crane.aisle);
    const body = g.querySelector("rect.crane");
    const x = a.x + Math.max(0, Math.min(a.w - 12, (crane.x || 0) * a.scale));
    body.setAttribute("x", x);
    body.setAttribute("class", `crane ${crane.state}`);
    const height = a.aisle.levels * a.aisle.level_height;
    const lift = g.querySelector("rect.crane-lift");
    const share = Math.max(0, Math.min(1, (crane.y || 0) / height));
    lift.setAttribute("x", x + 3);
    lift.setAttribute("y", a.y + a.h - a.h * share);
    lift.setAttribute("height", a.h * share);
  }
}

function drawHeader(view) {
  const c = view.conveyors[0];
  const packml = $("packml");
  if (c) {
    packml.textContent = `${c.conveyor_id} ${c.state}${c.jammed_zones.length ? ` · jam ${c.jammed_zones.join(", ")}` : ""}`;
    packml.className = `badge ${c.jammed_zones.length ? "bad" : c.available ? "ok" : "warn"}`;
  } else {
    packml.textContent = "no conveyor";
    packml.className = "badge";
  }
  const hold = $("hold");
  hold.classList.toggle("hidden", !view.held);
  if (view.held) {
    hold.textContent = `Held by ${view.held.by} for ${ago(view.held.since)}`;
    hold.className = "badge warn";
  }
  const storeHold = $("store-hold");
  storeHold.classList.toggle("hidden", !view.store_hold);
  storeHold.textContent = view.store_hold ? `Store: ${view.store_hold}` : "";
  const role = view.controller;
  $("role").textContent = role.failover ? `${role.role} (term ${role.term ?? "–"})` : role.role;
  $("role").className = `badge ${role.role === "active" ? "" : "warn"}`;
  const operate = state.scopes.includes("line:operate");
  $("hold-line").classList.toggle("hidden", !operate || Boolean(view.held));
  $("resume-line").classList.toggle("hidden", !operate || !view.held);
  const standby = role.role === "standby";
  if (standby !== state.standbyShown) {
    const url = role.active?.api_url;
    say(standby ? `This controller is the standby; the line is shown by the active controller${url ? ` at ${url}` : ""}.` : "");
    state.standbyShown = standby;
  }
}

// keeps ``container``'s children one per item, in order, each made once by ``create`` and brought
// up to date by ``update``: a row under the pointer stays the same node, so a click on it counts
function syncList(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of container.children) existing.set(child.dataset.key, child);
  items.forEach((item, i) => {
    const key = keyOf(item);
    let node = existing.get(key);
    if (node) existing.delete(key);
    else {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    if (container.children[i] !== node) container.insertBefore(node, container.children[i] || null);
  });
  for (const node of existing.values()) node.remove();
}

function cells(node, texts) {
  texts.forEach((text, i) => {
    const cell = node.children[i];
    if (cell.lastChild?.nodeType === Node.TEXT_NODE) {
      if (cell.lastChild.data !== text) cell.lastChild.data = text;
    } else cell.append(text);
  });
}

function drawSide(view) {
  const orders = view.orders;
  syncList(
    $("order-counts"),
    orders ? Object.entries(orders.by_status) : [],
    ([status]) => status,
    ([status]) => {
      const row = html("tr", "", { "data-status": status });
      row.append(html("td", status.replace("_", " ")), html("td"));
      return row;
    },
    (row, [, n]) => {
      row.children[1].textContent = String(n);
      row.dataset.count = String(n);
    },
  );
  syncList(
    $("oldest"),
    orders ? orders.oldest_waiting : [],
    (o) => o.order_id,
    (o) => {
      const li = html("li", "", { "data-order": o.order_id });
      li.append(html("strong", o.order_id), html("span"), html("span", "", { class: "why" }));
      li.addEventListener("click", () => select("order", o.order_id));
      return li;
    },
    (li, o) => {
      li.children[1].textContent = ` ${o.type} · ${ago(o.created_at)} old`;
      li.children[2].textContent = o.waiting_reason || "not yet looked at";
    },
  );
  syncList(
    $("robot-list"),
    view.robots,
    (r) => r.serial,
    (r) => {
      const row = html("tr", "", { "data-robot": r.serial });
      const name = html("td");
      name.append(html("span", "", { class: "dot" }));
      row.append(name, html("td"), html("td"), html("td"));
      row.addEventListener("click", () => select("robot", r.serial));
      return row;
    },
    (row, r) => {
      row.querySelector(".dot").setAttribute("class", `dot ${robotClass(r)}`);
      cells(row, [
        r.serial,
        robotStateText(r),
        r.battery === null ? "–" : `${Math.round(r.battery)} %`,
        r.last_node_id || "–",
      ]);
    },
  );
  syncList(
    $("crane-list"),
    view.cranes,
    (c) => c.crane,
    (c) => {
      const row = html("tr", "", { "data-crane": c.crane });
      row.append(html("td"), html("td"), html("td"), html("td"));
      row.addEventListener("click", () => select("crane", c.crane));
      return row;
    },
    (row, c) => {
      cells(row, [c.crane, c.state, c.x === null ? "–" : `${c.x.toFixed(1)} m`, `${c.queue_length} queued`]);
    },
  );
}

function render(view) {
  state.view = view;
  drawHeader(view);
  drawRobots(view);
  drawConveyor(view);
  drawCranes(view);
  drawSide(view);
  if (state.selected && state.selected.kind !== "order") showDetail();
}

// --- details ---------------------------------------------------------------------------------

function select(kind, id) {
  state.selected = { kind, id };
  state.detailKey = "";
  state.actionsKey = "";
  showDetail();
  if (state.view) render(state.view);
}

// the detail's rows, each value replaced only when it changed: a link in a row that did not
// change stays the node under the pointer
function detailRows(rows) {
  rows = rows.filter(([, value]) => value !== undefined);
  const body = $("detail-body");
  const labels = rows.map(([label]) => label).join("\n");
  if (labels !== state.detailKey) {
    state.detailKey = labels;
    body.replaceChildren();
    for (const [label] of rows) body.append(html("dt", label), html("dd"));
  }
  rows.forEach(([, value], i) => {
    const dd = body.children[2 * i + 1];
    const text = value instanceof Node ? value.textContent : value === null || value === "" ? "–" : String(value);
    if (dd.dataset.value === text) return;
    dd.dataset.value = text;
    if (value instanceof Node) dd.replaceChildren(value);
    else dd.textContent = text;
  });
}

function orderLinks(list) {
  const span = html("span");
  list.forEach((c, i) => {
    const a = html("a", c.order_id, { href: "#" });
    a.addEventListener("click", (event) => {
      event.preventDefault();
      select("order", c.order_id);
    });
    span.append(i ? ", " : "", a, ` (tote ${c.tote})`);
  });
  return list.length ? span : "–";
}

function operateButton(label, handler) {
  const b = html("button", label, { type: "button", class: "operate" });
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await handler();
      say("");
    } catch (error) {
      say(`${label}: ${error.message}`, true);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

async function showDetail() {
  const sel = state.selected;
  if (!sel) return;
  $("detail").classList.remove("hidden");
  const actions = $("detail-actions");
  const view = state.view;
  const operate = state.scopes.includes("line:operate");
  const setActions = (key, ...buttons) => {
    if (key === state.actionsKey) return;
    state.actionsKey = key;
    actions.replaceChildren(...buttons);
  };
  if (sel.kind === "robot") {
    const r = view && view.robots.find((x) => x.serial === sel.id);
    $("detail-title").textContent = `Robot ${sel.id}`;
    if (!r) return detailRows([["state", "not in the line view"]]);
    const wait = r.traffic?.waiting_for;
    detailRows([
      ["state", robotStateText(r)],
      ["connection", r.connection],
      ["mode", r.operating_mode],
      ["battery", r.battery === null ? null : `${r.battery.toFixed(0)} %${r.charging ? " (charging)" : ""}`],
      ["node", r.last_node_id],
      ["position", r.x === null ? null : `${r.x.toFixed(2)}, ${r.y.toFixed(2)} m`],
      ["VDA order", r.order_id],
      ["carrying", orderLinks(r.carrying || [])],
      ["reserved", r.traffic ? (r.traffic.base || []).join(" ") : "traffic control off"],
      ["planned", r.traffic ? (r.traffic.horizon || []).join(" ") : undefined],
      ["waits for", wait ? `${wait.node}, held by ${wait.holder}, ${wait.seconds} s` : null],
      ["attention", r.attention],
      ["order hold", r.order_hold],
      ["fault hold", r.fault_hold_seconds === null || r.fault_hold_seconds === undefined ? null : `${r.fault_hold_seconds} s`],
      ["errors", r.errors.join("; ")],
      ["factsheet", r.factsheet_problems.join("; ")],
    ]);
    const command = (c) => () => api(`/v1/robots/${encodeURIComponent(sel.id)}/${c}`, { method: "POST" });
    if (!operate) setActions("none");
    else if (r.paused) setActions(`resume:${sel.id}`, operateButton("Resume robot", command("resume")));
    else setActions(`pause:${sel.id}`, operateButton("Pause robot", command("pause")));
  } else {
    setActions("none");
  }
  if (sel.kind === "zone") {
    const z = view && view.conveyors[0]?.zones.find((x) => x.zone_id === sel.id);
    $("detail-title").textContent = `Zone ${sel.id}`;
    detailRows(z ? [
      ["belt", z.running === null ? null : z.running ? "running" : "stopped"],
      ["jam", z.jammed ? "jammed" : "no"],
      ["held by a jam", z.held ? "yes" : "no"],
      ["photo-eye", z.occupied === null ? null : z.occupied ? "occupied" : "clear"],
      ["item", z.item_id],
      ["tote", z.tote],
      ["order", z.order_id ? orderLinks([{ order_id: z.order_id, tote: z.tote }]) : null],
      ["to chute", z.chute],
    ] : [["state", "unknown"]]);
  } else if (sel.kind === "chute") {
    const ch = view && view.conveyors[0]?.chutes.find((x) => x.chute_id === sel.id);
    const box = state.layout.chute.get(sel.id);
    $("detail-title").textContent = `Chute ${sel.id}`;
    detailRows(ch ? [
      ["totes", `${ch.count} of ${box.capacity}`],
      ["full", ch.full ? "yes" : "no"],
      ["enabled", ch.enabled ? "yes" : "no"],
      ["divert", box.divert],
    ] : [["state", "unknown"]]);
  } else if (sel.kind === "crane") {
    const c = view && view.cranes.find((x) => x.crane === sel.id);
    $("detail-title").textContent = `Crane ${sel.id}`;
    detailRows(c ? [
      ["aisle", c.aisle],
      ["state", c.state],
      ["position", c.x === null ? null : `${c.x.toFixed(1)} m along, ${c.y.toFixed(1)} m up`],
      ["command", c.current_command],
      ["queued", c.queue_length],
      ["fault", c.fault],
      ["at P&D input", c.pd_input.join(", ")],
      ["open transports", c.transports ? `${c.transports.waiting_stores} stores, ${c.transports.waiting_retrieves} retrieves waiting, ${c.transports.sent} sent` : null],
    ] : [["state", "unknown"]]);
  } else if (sel.kind === "order") {
    $("detail-title").textContent = `Order ${sel.id}`;
    detailRows([["status", "loading…"]]);
    try {
      const o = await api(`/v1/orders/${encodeURIComponent(sel.id)}`);
      if (state.selected !== sel) return;
      const robot = view && view.robots.find((r) => (r.carrying || []).some((c) => c.order_id === sel.id));
      const zone = view && view.conveyors[0]?.zones.find((z) => z.order_id === sel.id);
      detailRows([
        ["status", o.status],
        ["type", o.type],
        ["priority", o.priority],
        ["due", o.due_at],
        ["destination", o.destination],
        ["step", o.step],
        ["waiting", o.waiting_reason],
        ["lines", (o.lines || []).map((l) => `${l.sku} ${l.picked}/${l.requested}`).join(", ")],
        ["on robot", robot ? robot.serial : null],
        ["on the conveyor", zone ? `zone ${zone.zone_id}` : null],
        ["created", o.created_at],
      ]);
    } catch (error) {
      if (state.selected === sel) detailRows([["error", error.message]]);
    }
  }
}

// --- the live stream -------------------------------------------------------------------------

function setLink(text, kind) {
  const link = $("link");
  link.textContent = text;
  link.className = `badge ${kind}`;
}

// the stream of start() number ``generation``: it ends as soon as a later start() begins
async function stream(generation) {
  const current = () => generation === state.generation;
  let delay = 1000;
  while (current()) {
    const abort = new AbortController();
    state.streamAbort = abort;
    try {
      const response = await fetch(`/v1/line/stream?interval=${STREAM_INTERVAL}`, {
        headers: headers({ Accept: "text/event-stream" }),
        signal: abort.signal,
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        setLink("no access", "bad");
        say("Reading the line needs a token with scope orders:read: enter it with Token.", true);
        $("token-form").classList.remove("hidden");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLink("live", "ok");
      delay = 1000;
      await readEvents(response.body, (event, data) => {
        if (!current()) throw new Error("superseded");
        if (event === "line") render(JSON.parse(data));
      });
      throw new Error("stream ended");
    } catch (error) {
      if (abort.signal.aborted || !current()) return;
      setLink(`reconnecting (${error.message})`, "warn");
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
      }
      if (data.length) onEvent(event, data.join("\n"));
    }
  }
}

// --- start -----------------------------------------------------------------------------------

async function whoami() {
  try {
    const who = await api("/v1/whoami");
    state.scopes = who.scopes;
    $("token-who").textContent = token() ? `${who.name}: ${who.scopes.join(", ") || "no scope"}` : "";
    return who;
  } catch (error) {
    state.scopes = [];
    $("token-who").textContent = error.message;
    return null;
  }
}

async function start() {
  state.generation += 1;
  const generation = state.generation;
  if (state.streamAbort) state.streamAbort.abort();
  say("");
  state.standbyShown = false;
  const who = await whoami();
  if (generation !== state.generation) return; // a later start() took over
  if (who && !who.reads_open && !who.scopes.includes("orders:read")) {
    setLink("no access", "bad");
    say("Reading the line needs a token with scope orders:read: enter it with Token.", true);
    $("token-form").classList.remove("hidden");
    return;
  }
  try {
    state.plan = await api("/v1/line/plan");
  } catch (error) {
    if (generation !== state.generation) return;
    setLink("no plan", "bad");
    say(`The line's plan could not be read: ${error.message}`, true);
    if (error.status === 401 || error.status === 403) $("token-form").classList.remove("hidden");
    return;
  }
  if (generation !== state.generation) return;
  $("line-name").textContent = `${state.plan.name} (${state.plan.line_id})`;
  document.title = `linectl: ${state.plan.line_id}`;
  state.robotsDrawn = new Map();
  state.nodeCircles = new Map();
  drawPlan(state.plan);
  stream(generation);
}

function wire() {
  $("token-button").addEventListener("click", () => $("token-form").classList.toggle("hidden"));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    start();
  });
  $("token-clear").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    start();
  });
  $("detail-close").addEventListener("click", () => {
    state.selected = null;
    $("detail").classList.add("hidden");
    if (state.view) render(state.view);
  });
  const lineCommand = (command) => async () => {
    const button = $(`${command}-line`);
    button.disabled = true;
    try {
      await api(`/v1/line/${command}`, { method: "POST" });
      say("");
    } catch (error) {
      say(`${command} the line: ${error.message}`, true);
    } finally {
      button.disabled = false;
    }
  };
  $("hold-line").addEventListener("click", lineCommand("hold"));
  $("resume-line").addEventListener("click", lineCommand("resume"));
}

wire();
start();
