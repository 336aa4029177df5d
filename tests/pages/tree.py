"""Where an AppTest element sits on the page: its path of child indices from ``at.main``
(a block's children: columns of a row, elements of a container)."""

from __future__ import annotations

from collections.abc import Iterator


def walk(node, path: tuple[int, ...] = ()) -> Iterator[tuple[object, tuple[int, ...]]]:
    """Every node under ``node`` (itself first) with its path of child indices."""
    yield node, path
    children = getattr(node, "children", None)
    if isinstance(children, dict):
        for i, child in children.items():
            yield from walk(child, (*path, i))


def path_of(at, key: str) -> tuple[int, ...]:
    """The path of the widget ``key`` in the main area (AssertionError if absent)."""
    for node, path in walk(at.main):
        if getattr(node, "key", None) == key:
            return path
    raise AssertionError(f"no widget {key!r} on the page")


def node_at(at, path: tuple[int, ...]):
    """The node at ``path`` (from :func:`path_of`) under ``at.main``."""
    node = at.main
    for i in path:
        node = node.children[i]
    return node


def under(at, prefix: tuple[int, ...], kind: str) -> list:
    """The nodes of type ``kind`` (e.g. "caption", "image") under the block at ``prefix``,
    in page order."""
    return [n for n, _ in walk(node_at(at, prefix)) if getattr(n, "type", None) == kind]
