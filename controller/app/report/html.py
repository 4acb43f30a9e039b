"""The KPI report as one self-contained HTML page: a KPI table and six plots as inline SVG.

Nothing is loaded from anywhere: no scripts, styles, fonts or images outside the file, so the
page opens in a browser on a machine without network. Every text from the database is escaped.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from controller.app.report.kpi import BUCKETS, iso
from controller.app.report.model import Kpis
from controller.app.report.summary import HEAD, KIND_NAMES, summary
from controller.app.report.summary import table as summary_table

TYPE_COLOURS = {"b2c": "#1f6fb4", "b2b": "#e07b00"}
OTHER_COLOUR = "#7f7f7f"
OUTCOME_COLOURS = {"diverted": "#2e8b57", "recirculated": "#e0b000", "rejected": "#c0392b"}
ON_TIME_COLOURS = {"on time": "#2e8b57", "late": "#e0b000", "overdue": "#c0392b"}
FIG_SIZE = (6.2, 3.6)  # inches; two plots side by side in a 1280 px page

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px;
       color: #1d2330; background: #f6f7f9; }
h1 { font-size: 22px; margin: 0 0 4px; }
.meta { color: #556; font-size: 14px; margin-bottom: 16px; }
table { border-collapse: collapse; background: #fff; font-size: 14px; margin-bottom: 20px; }
th, td { border: 1px solid #d5d9e0; padding: 6px 12px; text-align: right; }
th:first-child, td:first-child, td[colspan] { text-align: left; }
thead th { background: #eef1f5; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; }
.plot { background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; padding: 8px; }
.plot svg { width: 100%; height: auto; display: block; }
.nodata { height: 200px; display: flex; align-items: center; justify-content: center;
          color: #778; font-style: italic; }
.nodata strong { font-style: normal; margin-right: 8px; color: #1d2330; }
"""


def render(kpis: Kpis, line: str, source: str, generated_at: datetime | None = None) -> str:
    """The whole page. ``line`` names the line, ``source`` the database it was read from."""
    generated = (generated_at or datetime.now(UTC)).isoformat(timespec="seconds")
    plots = [
        ("Throughput over time", _throughput, bool(sum(map(sum, kpis.throughput.counts.values())))),
        ("Cycle time by order type", _cycle_times, any(d.count for d in kpis.cycle_times.values())),
        (
            "On-time share by order type",
            _on_time,
            any(o.share is not None for o in kpis.on_time.values()),
        ),
        ("Robot utilisation", _robots, bool(kpis.robots)),
        ("Sorter outcomes", _sorter, kpis.sorter.total > 0),
        ("AS/RS crane cycles", _asrs, bool(kpis.asrs)),
    ]
    cells = [
        f'<div class="plot">{_svg(kpis, draw) if has_data else _no_data(title)}</div>'
        for title, draw, has_data in plots
    ]
    e = html.escape
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>KPI report {e(line)}</title><style>{STYLE}</style></head><body>"
        f"<h1>KPI report: {e(line)}</h1>"
        f'<div class="meta">Window {e(iso(kpis.window.start))} to {e(iso(kpis.window.end))} '
        f"(line time, {kpis.window.seconds / 3600:.2f} h) &middot; source {e(source)} "
        f"&middot; generated {e(generated)}</div>"
        f"{_table(kpis)}"
        f'<div class="grid">{"".join(cells)}</div>'
        "</body></html>\n"
    )


def _table(k: Kpis) -> str:
    """The headline figures (:mod:`controller.app.report.summary`), as ``linectl demo`` prints
    them."""
    rows, notes = summary_table(summary(k))
    e = html.escape
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    extra = "".join(
        f"<tr><td>{e(name)}</td><td colspan={len(HEAD) - 1}>{e(text)}</td></tr>"
        for name, text in notes
    )
    return (
        "<table><thead><tr>"
        + "".join(f"<th>{e(h)}</th>" for h in HEAD)
        + f"</tr></thead><tbody>{body}{extra}</tbody></table>"
    )


def _no_data(title: str) -> str:
    return f'<div class="nodata"><strong>{html.escape(title)}</strong> no data in this window</div>'


_ID = re.compile(r'\bid="([^"]+)"')


def _svg(kpis: Kpis, draw: Callable[[Axes, Kpis], None]) -> str:
    """One plot as an inline ``<svg>``; its ids prefixed so several SVGs share one page."""
    fig = Figure(figsize=FIG_SIZE)  # not pyplot: no global state, safe in a worker thread
    draw(fig.add_subplot(), kpis)
    fig.tight_layout()
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "linectl"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    prefix = f"{draw.__name__.strip('_')}-"
    for old in set(_ID.findall(text)):
        text = text.replace(f'id="{old}"', f'id="{prefix}{old}"')
        text = text.replace(f"#{old})", f"#{prefix}{old})").replace(
            f'"#{old}"', f'"#{prefix}{old}"'
        )
    return text


def _colour(order_type: str) -> str:
    return TYPE_COLOURS.get(order_type, OTHER_COLOUR)


def _label(ax: Axes, title: str, xlabel: str, ylabel: str, grid: Literal["x", "y"]) -> None:
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis=grid, alpha=0.3)


def _bar_ends(ax: Axes, bars: BarContainer, texts: list[str]) -> None:
    """A text at the end of each horizontal bar."""
    for bar, text in zip(bars, texts, strict=True):
        y = bar.get_y() + bar.get_height() / 2
        ax.text(bar.get_width(), y, f" {text}", va="center", fontsize=8)


def _throughput(ax: Axes, k: Kpis) -> None:
    tp = k.throughput
    bottom = [0] * len(tp.starts)
    for t, counts in tp.counts.items():
        if sum(counts):
            width = tp.bucket_seconds * 0.9
            ax.bar(
                tp.starts, counts, width, bottom, align="edge", color=_colour(t), label=t.upper()
            )
            bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    _time_axis(ax, k.window.seconds)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    span = _span(tp.bucket_seconds)
    _label(
        ax,
        f"Throughput: orders completed per {span}",
        "line time (UTC, HH:MM)",
        f"orders / {span}",
        "y",
    )
    ax.legend(loc="upper right")


def _time_axis(ax: Axes, seconds: float) -> None:
    """Times of day (line time, UTC) on the x axis, at most 8 round ticks."""
    step = next((b for b in BUCKETS if seconds / b <= 8), BUCKETS[-1])
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(_clock_time))


def _clock_time(t: float, _pos: int | None = None) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


def _span(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds % 3600 == 0 else f"{seconds // 60} min"


def _cycle_times(ax: Axes, k: Kpis) -> None:
    present = {t: d for t, d in k.cycle_times.items() if d.count}
    top = max(d.max or 0.0 for d in present.values()) / 60
    bins = [top * i / 30 for i in range(31)] if top > 0 else 10
    for t, d in present.items():
        minutes = [v / 60 for v in d.values]
        label = f"{t.upper()} (n={d.count})"
        ax.hist(minutes, bins=bins, color=_colour(t), alpha=0.55, label=label)
        for q, style in ((d.p50, "-"), (d.p95, "--")):
            if q is not None:
                ax.axvline(q / 60, color=_colour(t), linestyle=style, linewidth=1.5)
    ax.plot([], [], color="#333", linestyle="-", label="p50")
    ax.plot([], [], color="#333", linestyle="--", label="p95")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    _label(ax, "Cycle time, order created to completed", "cycle time (line minutes)", "orders", "y")
    ax.legend(loc="upper right", fontsize=8)


def _on_time(ax: Axes, k: Kpis) -> None:
    types = [t for t, o in k.on_time.items() if o.share is not None]
    left = [0] * len(types)
    for label, colour in ON_TIME_COLOURS.items():
        counts = [getattr(k.on_time[t], label.replace(" ", "_")) for t in types]
        ax.barh([t.upper() for t in types], counts, left=left, color=colour, label=label)
        left = [a + b for a, b in zip(left, counts, strict=True)]
    for i, t in enumerate(types):
        share = k.on_time[t].share or 0.0
        ax.text(left[i], i, f"  {share:.1%} on time", va="center", fontsize=9)
    ax.set_xlim(0, max(left) * 1.3)
    ax.invert_yaxis()
    xlabel = "orders (cut-off B2C: due_at; B2B: deliver_until, else due_at)"
    _label(ax, "On time: completed by the cut-off", xlabel, "order type", "x")
    ax.legend(loc="lower right", fontsize=8)


def _robots(ax: Axes, k: Kpis) -> None:
    """One row per robot: its trips over the window, and its share of the window on trips."""
    w = k.window
    for i, use in enumerate(k.robots.values()):
        spans = [(s, e - s) for s, e in use.intervals]
        ax.broken_barh(spans, (i - 0.35, 0.7), color="#4c72b0")
        ax.text(
            1.01,
            i,
            f"{use.share:.0%} ({use.trips} trips)",
            va="center",
            fontsize=8,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(range(len(k.robots)), list(k.robots))
    ax.set_ylim(len(k.robots) - 0.5, -0.5)
    ax.set_xlim(w.start, w.end if w.end > w.start else w.start + 60)
    _time_axis(ax, w.seconds)
    title = "Robot utilisation: trips over time, share of the window"
    _label(ax, title, "line time (UTC, HH:MM)", "robot", "x")


def _sorter(ax: Axes, k: Kpis) -> None:
    s = k.sorter
    rows = [("diverted to destination", s.diverted, "diverted")]
    rows += [(f"recirculated: {r}", n, "recirculated") for r, n in s.recirculated.items()]
    rows += [(f"rejected: {r}", n, "rejected") for r, n in s.rejected.items()]
    counts = [r[1] for r in rows]
    bars = ax.barh([r[0] for r in rows], counts, color=[OUTCOME_COLOURS[r[2]] for r in rows])
    _bar_ends(ax, bars, [str(n) for n in counts])
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, max(counts) * 3)
    ax.invert_yaxis()
    title = f"Sorter outcomes, {s.total} scans of order totes"
    _label(ax, title, "scans (log scale above 10)", "", "x")


def _asrs(ax: Axes, k: Kpis) -> None:
    labels = [
        f"{a}\n{KIND_NAMES.get(kind, kind)}\n(n={d.count})" for (a, kind), d in k.asrs.items()
    ]
    ax.boxplot([list(d.values) for d in k.asrs.values()], tick_labels=labels)
    ax.tick_params(axis="x", labelsize=8)
    title = "AS/RS crane cycles, command written to done"
    _label(ax, title, "aisle and cycle kind", "cycle time (line seconds)", "y")
