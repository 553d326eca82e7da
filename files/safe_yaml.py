"""Reading YAML from outside safely: plain data only, bounded nesting, no silently repeated keys.

Scenario files, sweep files and surrogate policy files are YAML written by anyone. :func:`parse_yaml`
is the one way hvae turns such text into data: PyYAML's ``SafeLoader`` (no Python objects), nesting
checked on the parser's flat event stream *before* composing (which recurses), and a mapping that
names the same key twice refused (YAML would silently keep the last one). Every problem is a
:class:`YamlProblem` whose message is one line ``SOURCE[:LINE[:COL]]: what is wrong``; callers turn
it into their own error type (``ScenarioError``, ``PolicyError``)::

    >>> parse_yaml("a: 1\\nb: [2, 3]\\n", "x.yaml", max_depth=8)[0]
    {'a': 1, 'b': [2, 3]}
    >>> parse_yaml("a: 1\\na: 2\\n", "x.yaml", max_depth=8)
    Traceback (most recent call last):
    ...
    hvae.files.safe_yaml.YamlProblem: x.yaml:2: duplicate key 'a'
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from hvae.files.untrusted import one_line

__all__ = ["YamlProblem", "parse_yaml"]


class YamlProblem(ValueError):
    """YAML text that cannot be used (syntax, nesting, a repeated key); the message is one line."""


def parse_yaml(text: str, source: object, max_depth: int) -> tuple[Any, yaml.Node | None]:
    """The data of ``text`` and its node tree (for line numbers); ``source`` names it in messages.

    Raises:
        YamlProblem: a syntax error, nesting deeper than ``max_depth``, a key given twice in one
            mapping, or an unreadable value (an integer of more than 4,300 digits).
    """
    try:
        _check_depth(yaml.parse(text, Loader=yaml.SafeLoader), source, max_depth)  # before composing
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_duplicate_keys(node, source)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise YamlProblem(f"{source}{where}: YAML syntax error: {one_line(problem, 200)}") from None
    except YamlProblem:
        raise
    except ValueError as error:  # an integer of more than 4,300 digits
        raise YamlProblem(f"{source}: unreadable value ({one_line(error, 80)})") from None
    return data, node


def _check_depth(events: Iterable[yaml.Event], source: object, max_depth: int) -> None:
    """Refuse YAML nested deeper than ``max_depth`` (the parser's events are flat)."""
    depth = 0
    for event in events:
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > max_depth:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise YamlProblem(f"{source}:{line}: YAML nested more than {max_depth} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_duplicate_keys(root: yaml.Node | None, source: object) -> None:
    """Refuse a mapping that gives the same key twice (YAML would silently keep the last one)."""
    stack = [root] if root is not None else []
    seen_nodes: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:  # an alias points back at a node already checked
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in keys:
                        raise YamlProblem(f"{source}:{key.start_mark.line + 1}: duplicate key {key.value[:60]!r}")
                    keys.add(key.value)
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
