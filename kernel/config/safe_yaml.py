"""YAML for files an operator writes: bounded in size, depth and alias expansion, strict on keys.

PyYAML's ``safe_load`` builds no Python objects from tags, but it still trusts the shape of the
document: a few hundred bytes of nested aliases ("billion laughs") expand to billions of nodes
once anything walks the data, a deeply nested document overflows the composer's recursion, and
a key given twice silently keeps the last value. :func:`load` refuses all of these before any
Python object is built, each with its line:

* the text may be at most :data:`MAX_BYTES` long (checked before parsing; :func:`read_text`
  checks the file's size before reading it);
* collections may nest at most :data:`MAX_DEPTH` deep, counted through aliases;
* the document, with every alias expanded, may hold at most :data:`MAX_NODES` nodes, and an
  alias may not refer to the collection it is part of (a cycle);
* a mapping may not give the same key twice.

Line files and fault scripts need no anchors, but the budget lets an engineer share a block with
``&name``/``*name`` while a bomb fails at once: the cost of an alias is known from when its
anchor was composed, so the whole check is linear in the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent, ScalarEvent

MAX_BYTES = 4 * 1024 * 1024  # a map at the node limit with its edges is well under 1 MB
MAX_DEPTH = 64  # the reference line nests 7 deep
MAX_NODES = 1_000_000  # scalars, sequences and mappings after every alias is expanded

DocPath = tuple[str | int, ...]
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class YamlProblem:
    """One reason a document is refused: where (1-based line, path when known) and what."""

    line: int | None
    path: DocPath
    message: str


class YamlRefused(Exception):
    """A document that is not valid YAML or breaks a limit; every problem found is listed."""

    def __init__(self, problems: list[YamlProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class Document:
    """A loaded document: the Python data and the line each path of it starts on."""

    data: Any
    lines: dict[DocPath, int]


class _Limit(yaml.YAMLError):
    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message = message
        self.line = mark.line + 1


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader whose composer counts depth and expanded nodes as it goes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._expanded = 0
        self._cost: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded nodes, height)
        self._open: set[str] = set()  # anchors of collections being composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        if self.check_event(AliasEvent):
            if event.anchor in self._open:
                raise _Limit("an alias refers to the collection it is part of (a cycle)", mark)
            node = super().compose_node(parent, index)
            assert node is not None  # an alias always stands for a node
            size, height = self._cost[id(node)]
            self._count(size, mark)
            if self._depth + height > MAX_DEPTH:
                raise _Limit(f"nesting deeper than {MAX_DEPTH} levels (through an alias)", mark)
            return node
        collection = not self.check_event(ScalarEvent)
        if collection and self._depth >= MAX_DEPTH:
            raise _Limit(f"nesting deeper than {MAX_DEPTH} levels", mark)
        self._count(1, mark)
        anchor = event.anchor
        if anchor is not None:
            self._open.add(anchor)
        self._depth += collection
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= collection
            if anchor is not None:
                self._open.discard(anchor)
        assert node is not None  # an event that starts a node composes one
        self._cost[id(node)] = self._measure(node)
        return node

    def _measure(self, node: yaml.Node) -> tuple[int, int]:
        """Nodes the subtree holds with aliases expanded, and how many collections deep it is."""
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            return 1, 0  # a scalar adds no level of nesting
        size, height = 1, 1
        for child in children:
            child_size, child_height = self._cost[id(child)]
            size += child_size
            height = max(height, child_height + 1)
        return size, height

    def _count(self, nodes: int, mark: yaml.Mark) -> None:
        self._expanded += nodes
        if self._expanded > MAX_NODES:
            raise _Limit(
                f"more than {MAX_NODES:,} nodes once aliases are expanded "
                "(anchors and aliases that multiply)",
                mark,
            )


def _key(node: yaml.Node) -> Any:
    """What a mapping key stands for, for comparing keys (collections by identity)."""
    if isinstance(node, yaml.ScalarNode):
        return (node.tag, node.value)
    return ("node", id(node))


def _walk(root: yaml.Node | None) -> tuple[dict[DocPath, int], list[YamlProblem]]:
    """The line of every path, and every duplicate key. A node reached again through an
    alias is not walked again: paths inside it are located at the alias."""
    lines: dict[DocPath, int] = {}
    problems: list[YamlProblem] = []
    if root is None:
        return lines, problems
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, DocPath]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, DocPath]] = []
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                line = key_node.start_mark.line + 1
                if key_node.tag != _MERGE_TAG:
                    ident = _key(key_node)
                    if ident in first:
                        problems.append(
                            YamlProblem(
                                line,
                                path,
                                f"duplicate key {key!r} (first at line {first[ident]})",
                            )
                        )
                        continue
                    first[ident] = line
                lines[(*path, key)] = line
                children.append((value_node, (*path, key)))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, i)) for i, item in enumerate(node.value)]
        stack.extend(reversed(children))  # in document order: an anchor before its aliases
    problems.sort(key=lambda p: p.line or 0)
    return lines, problems


def _refusal(exc: yaml.YAMLError) -> YamlProblem:
    if isinstance(exc, _Limit):
        return YamlProblem(exc.line, (), exc.message)
    mark = getattr(exc, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None) or str(exc)
    return YamlProblem(line, (), f"not valid YAML: {problem}")


def load(text: str) -> Document:
    """Parse one YAML document within the limits; raise :class:`YamlRefused` otherwise."""
    if len(text) > MAX_BYTES:
        raise YamlRefused(
            [YamlProblem(None, (), f"larger than {MAX_BYTES // (1024 * 1024)} MB; refused")]
        )
    loader = _BoundedLoader(text)
    try:
        node = loader.get_single_node()
        lines, duplicates = _walk(node)
        if duplicates:
            raise YamlRefused(duplicates)
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise YamlRefused([_refusal(exc)]) from None
    except RecursionError:  # not reachable within MAX_DEPTH; kept as a last line of defence
        raise YamlRefused([YamlProblem(None, (), "nested too deeply")]) from None
    finally:
        loader.dispose()
    return Document(data, lines)


def load_scalar(text: str) -> Any:
    """A value given on its own (an environment override), within the same limits."""
    return load(text).data


def read_text(path: Path) -> str:
    """A file's UTF-8 text, refused before reading when it is larger than :data:`MAX_BYTES`.

    Raises ``OSError`` when the file cannot be read, ``UnicodeDecodeError`` when it is not
    UTF-8 and :class:`YamlRefused` when it is too large.
    """
    with path.open("rb") as f:
        data = f.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise YamlRefused(
            [YamlProblem(None, (), f"larger than {MAX_BYTES // (1024 * 1024)} MB; refused")]
        )
    return data.decode("utf-8")
