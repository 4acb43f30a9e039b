"""The import graph of linectl's packages, in figures anyone can re-run.

    python scripts/import_graph.py            # summary
    python scripts/import_graph.py --edges    # also every import that crosses a layer upwards

It reads the source with ``ast`` (nothing is imported) and prints:

- modules per package and the imports between top-level packages;
- imports that run *up* the layers (kernel < routing < devices < simulators, controller < api <
  the application layer), which the import contracts in ``pyproject.toml`` forbid;
- import cycles between modules (strongly connected components), counting imports made only for
  type checking separately;
- the longest chain of imports from one module to another;
- private names (``_name``) imported from another module;
- classes whose base class is one of the project's own classes defined in another module of the
  same package (a class spread over files by inheritance).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kernel", "routing", "devices", "simulators", "controller", "api")

# The layer of each package (a module may import its own layer and those below). The
# application layer is a sub-package of the controller package and sits above the API.
LAYERS = {
    "kernel": 0,
    "routing": 1,
    "devices": 2,
    "simulators": 3,
    "controller": 3,
    "api": 4,
    "controller.app": 5,
}
# imports allowed sideways at the same height: none between simulators and the controller
SIDEWAYS_FORBIDDEN = {("simulators", "controller"), ("controller", "simulators")}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    names: tuple[str, ...]
    type_checking: bool
    line: int


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            found[module_name(path)] = path
    return found


def layer_of(module: str) -> str:
    if module == "controller.app" or module.startswith("controller.app."):
        return "controller.app"
    return module.split(".")[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path, known: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    found: list[Import] = []

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known_prefix(alias.name, known)
                if target:
                    found.append(Import(module, target, (), type_checking, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if full in known:  # a sub-module imported by name
                    found.append(Import(module, full, (), type_checking, node.lineno))
                    continue
                target = _known_prefix(base, known)
                if target:
                    found.append(Import(module, target, (alias.name,), type_checking, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(tree, False)
    return found


def _known_prefix(name: str, known: dict[str, Path]) -> str | None:
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def upward(imp: Import) -> bool:
    source, target = layer_of(imp.source), layer_of(imp.target)
    if (source, target) in SIDEWAYS_FORBIDDEN:
        return True
    return LAYERS[target] > LAYERS[source]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10_000)

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            connect(v)
    return found


def longest_chain(edges: dict[str, set[str]]) -> list[str]:
    @cache
    def chain(v: str, seen: frozenset[str]) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for w in sorted(edges.get(v, ())):
            if w in seen:
                continue
            candidate = chain(w, seen | {w})
            if len(candidate) > len(best):
                best = candidate
        return (v, *best)

    # acyclic graphs only (cycles are reported on their own); fall back to a bounded search
    best: tuple[str, ...] = ()
    for v in sorted(edges):
        candidate = chain(v, frozenset({v}))
        if len(candidate) > len(best):
            best = candidate
    return list(best)


def graph() -> tuple[dict[str, Path], list[Import]]:
    """Every module of the project and every import between them."""
    known = all_modules()
    return known, [imp for m, p in known.items() for imp in imports_of(m, p, known)]


def edges_of(imports: list[Import], *, runtime_only: bool = False) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        if imp.target != imp.source and not (runtime_only and imp.type_checking):
            edges[imp.source].add(imp.target)
    return edges


def private_imports(imports: list[Import]) -> list[str]:
    """Private names (``_name``) one module imports from another."""
    return [
        f"{i.source}:{i.line} imports {n} from {i.target}"
        for i in imports
        for n in i.names
        if n.startswith("_") and not n.startswith("__")
    ]


def split_classes(known: dict[str, Path]) -> list[str]:
    """Classes whose base is a project class from another module of the same package."""
    defined: dict[str, set[str]] = defaultdict(set)  # class name -> modules defining it
    trees = {m: ast.parse(p.read_text(), str(p)) for m, p in known.items()}
    for module, tree in trees.items():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                defined[node.name].add(module)
    found = []
    for module, tree in trees.items():
        package = module.rsplit(".", 1)[0]
        for node in tree.body:
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                name = base.id if isinstance(base, ast.Name) else None
                if not name or name not in defined or module in defined[name]:
                    continue
                homes = [m for m in defined[name] if m.rsplit(".", 1)[0] == package]
                if homes and not _is_interface(trees[homes[0]], name):
                    found.append(f"{module}.{node.name}({name} from {homes[0]})")
    return sorted(found)


def _is_interface(tree: ast.Module, name: str) -> bool:
    """A Protocol, an ABC, an exception or an enum: base classes meant to be derived from."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            roots = {
                "Protocol",
                "ABC",
                "Exception",
                "Enum",
                "StrEnum",
                "IntEnum",
                "RuntimeError",
                "BaseModel",
            }
            return bool(bases & roots) or any(b.endswith("Error") for b in bases)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", action="store_true", help="list every upward import")
    args = parser.parse_args()

    known, imports = graph()
    edges, runtime = edges_of(imports), edges_of(imports, runtime_only=True)

    per_package = Counter(layer_of(m) for m in known)
    print("modules:", ", ".join(f"{p} {n}" for p, n in sorted(per_package.items())))

    between = Counter((layer_of(i.source), layer_of(i.target)) for i in imports)
    print("\nimports between packages (source -> target: count):")
    for (s, t), n in sorted(between.items()):
        if s != t:
            print(f"  {s:>15} -> {t:<15} {n}")

    ups = [i for i in imports if upward(i)]
    print(f"\nimports running up the layers: {len(ups)}")
    for (s, t), n in sorted(Counter((layer_of(i.source), layer_of(i.target)) for i in ups).items()):
        print(f"  {s:>15} -> {t:<15} {n}")
    if args.edges:
        for i in ups:
            print(f"    {i.source}:{i.line} -> {i.target}")

    all_cycles = cycles(edges)
    run_cycles = cycles(runtime)
    print(
        f"\nimport cycles: {len(all_cycles)} (at run time, without type-checking imports: "
        f"{len(run_cycles)})"
    )
    for c in all_cycles:
        print("  " + " <-> ".join(c))

    chain = longest_chain(runtime) if not run_cycles else []
    print(f"\nlongest import chain: {len(chain)} modules")
    if chain:
        print("  " + " -> ".join(chain))

    private = private_imports(imports)
    print(f"\nprivate names imported across modules: {len(private)}")
    for p in private:
        print("  " + p)

    split = split_classes(known)
    print(f"\nclasses built on a sibling module's class: {len(split)}")
    for s in split:
        print("  " + s)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
