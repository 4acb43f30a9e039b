#!/usr/bin/env python3
"""Write the Grafana dashboards in deploy/grafana/dashboards/ (the JSON files are what ships).

Every dashboard has the same shape: a row of stat panels on top, then time series, state
timelines, bar gauges and heatmaps; every target queries the ``datasource`` variable (filled in
from the ``DS_PROMETHEUS`` input on import) for the series of the line chosen in the ``line``
variable, and rates use ``$__rate_interval``. The dashboards are defined in
the ``dashboards`` package next to this script, one module per dashboard. Run from anywhere:

    python scripts/gen-dashboards.py            # write the files
    python scripts/gen-dashboards.py --check    # exit 1 if a committed file differs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    # the dashboards package next to this script, also when the script is loaded by its path
    sys.path.insert(0, str(HERE))

from dashboards.asrs import asrs  # noqa: E402
from dashboards.devices import devices  # noqa: E402
from dashboards.line import line  # noqa: E402
from dashboards.orders import orders  # noqa: E402
from dashboards.robots import robots  # noqa: E402
from dashboards.sorter import sorter  # noqa: E402

OUT = HERE.parent / "deploy" / "grafana" / "dashboards"

DASHBOARDS = {
    "line.json": line,
    "orders.json": orders,
    "sorter.json": sorter,
    "robots.json": robots,
    "asrs.json": asrs,
    "devices.json": devices,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {name: json.dumps(make(), indent=2) + "\n" for name, make in DASHBOARDS.items()}


def main(argv: list[str]) -> int:
    files = render()
    if "--check" in argv:
        stale = [n for n, text in files.items() if (OUT / n).read_text() != text]
        for name in stale:
            print(f"{OUT / name} differs from scripts/gen-dashboards.py; run it", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (OUT / name).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
