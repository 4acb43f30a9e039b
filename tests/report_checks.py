"""Checks of a KPI report page shared by the tests that render one."""

from __future__ import annotations

import re

# anything a page would load: src=/href= attributes and CSS url(), other than "#fragment"
_LOADS = re.compile(r"""(?:\b(?:src|href)\s*=\s*|url\(\s*)(?!["']?#)["']?([^"')\s>]*)""", re.I)


def loaded_refs(page: str) -> list[str]:
    """What the page would fetch; namespaces (``xmlns="http://..."``) are not fetched."""
    return _LOADS.findall(page)


def assert_offline_report(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") + page.count('class="nodata"') == 6, "six plots or no-data notes"
    assert loaded_refs(page) == []
    assert "<script" not in page.lower()
    # the inline SVGs share one document: ids unique, every internal reference resolves
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))
    targets = set(re.findall(r"""(?:href="|url\()#([^")]+)""", page))
    assert targets <= set(ids)
