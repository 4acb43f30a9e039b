"""The garbage collector's settings for a long-running controller process.

A controller serving a large fleet holds a large, long-lived heap (robot trackers, orders, the
roadmap and its tables) and makes many short-lived objects per second (every state message is
a tree of dicts and lists). With CPython's default thresholds the short-lived ones are
collected young so often that many live just long enough to be promoted, and the oldest
generation fills and is searched in full every few seconds; at 1,000 robots each such pass
stops the event loop for about 100 ms, which is what a planning round or a state message then
waits for. :func:`tune_for_service` makes those passes rarer and shorter.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("kernel.heap")

# objects allocated (less those freed) between two collections of the youngest generation
# (CPython's default is 700): most of a state message's objects are gone before one runs
YOUNG_THRESHOLD = 20_000


def tune_for_service() -> None:
    """Once the service has started: collect, move what is alive now (the configuration, the
    roadmap, modules) out of the collector's sight for good (``gc.freeze``), and collect the
    youngest generation less often. Process-wide: for the process that serves one line."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
    log.info(
        "garbage collector tuned for a long-running service",
        extra={"frozen_objects": gc.get_freeze_count(), "thresholds": list(gc.get_threshold())},
    )
