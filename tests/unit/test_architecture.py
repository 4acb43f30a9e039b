"""The package structure holds: the import contracts in pyproject.toml, and no import cycle.

``lint-imports`` checks the layers (kernel at the bottom, the application layer on top, the
controller's packages from the order model up to the service); ``scripts/import_graph.py`` finds
cycles between modules, including imports made only for type checking.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _import_graph():  # the script is not a package module
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_graph", module)
    spec.loader.exec_module(module)
    return module


def test_the_import_contracts_are_kept() -> None:
    # in a process of its own, as CI runs it: the linter leaves state behind in the process
    # that would change what later tests see of logging
    check = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / 'pyproject.toml')!r}, "
        "no_cache=True, no_logo=True))"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_package_imports_up_the_layers() -> None:
    graph = _import_graph()
    _, imports = graph.graph()
    assert [f"{i.source}:{i.line} -> {i.target}" for i in imports if graph.upward(i)] == []


def test_no_import_cycle_not_even_for_type_checking() -> None:
    graph = _import_graph()
    _, imports = graph.graph()
    assert graph.cycles(graph.edges_of(imports)) == []


def test_no_private_name_is_imported_from_another_module() -> None:
    graph = _import_graph()
    _, imports = graph.graph()
    assert graph.private_imports(imports) == []


def test_no_class_is_spread_over_modules_by_inheritance() -> None:
    """A class built on another class of its own package's modules (not a Protocol, an ABC, an
    exception, an enum or a pydantic model) is a class split over files: compose instead."""
    graph = _import_graph()
    known, _ = graph.graph()
    assert graph.split_classes(known) == []
