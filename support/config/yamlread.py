"""Reading one YAML document safely: duplicate keys refused, and limits that keep a hostile file (an alias
bomb, deep nesting) from taking the memory or the stack of the tester (issue 13)."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_DEPTH", "MAX_NODES", "MAX_STRING", "TooLarge", "exhausted", "parse_yaml", "yaml_problem"]


class _Loader(yaml.SafeLoader):
    """Safe loader that rejects duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"found duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return dict(yaml.SafeLoader.construct_mapping(loader, node, deep=deep))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

#: Limits of one configuration document: values once every alias is expanded (a 300-byte "billion laughs"
#: alias bomb expands to billions), nesting depth, and the length of one string after interpolation (a chain
#: of ``${ref:}`` doubling a string also grows exponentially). Real configurations stay far below them.
MAX_NODES = 100_000
MAX_DEPTH = 64
MAX_STRING = 1 << 20


class TooLarge(Exception):
    """A YAML document over the limits (message: the one-line problem)."""


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_limits(root: yaml.Node) -> None:
    """Raise TooLarge when the document, with every alias expanded, has more than MAX_NODES values, nests
    deeper than MAX_DEPTH or refers to itself; counted on the composed node graph (an alias is the same node
    object as its anchor), without expanding anything."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _node_children(node)
        if done:
            size[key] = min(1 + sum(size[id(child)] for child in children), MAX_NODES + 1)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            active.discard(key)
            if size[key] > MAX_NODES:
                raise TooLarge(f"the document expands to more than {MAX_NODES} values once its aliases are "
                                "expanded (an alias bomb?)")
            if depth[key] > MAX_DEPTH:
                raise TooLarge(f"the document nests deeper than {MAX_DEPTH} levels")
            continue
        if key in size:
            continue
        active.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in active:
                line = child.start_mark.line + 1 if child.start_mark else 0
                raise TooLarge(f"an alias refers to the node that contains it (line {line})")
            if id(child) not in size:
                stack.append((child, False))


def parse_yaml(text: str) -> Any:
    """``text`` as YAML (duplicate keys refused), within MAX_NODES and MAX_DEPTH; raises yaml.YAMLError or
    TooLarge."""
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise TooLarge(f"the document nests deeper than {MAX_DEPTH} levels") from None
        if node is None:
            return None
        _check_limits(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def exhausted(exc: RecursionError | MemoryError) -> str:
    if isinstance(exc, MemoryError):
        return "out of memory (the document, once expanded, is too large)"
    return "nested too deeply (Python's recursion limit)"


def yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = exc.problem or "syntax error"
        context = f" ({exc.context})" if exc.context else ""
        return f"YAML error at line {mark.line + 1}, column {mark.column + 1}: {what}{context}"
    return f"YAML error: {exc}"
