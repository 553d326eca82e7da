"""Loading scenarios: YAML file → ``--set`` overrides → validated :class:`Scenario`.

Every problem becomes a :class:`ScenarioError` whose message is one line naming the file, the
line (when the YAML has one for it) and the field path, e.g.::

    quick.yaml:7: population.1.count: must be greater than 0 (got -3)

Overrides use dotted paths into the YAML tree, list entries by index, values parsed as YAML::

    >>> apply_overrides({"rounds": 6, "population": [{"count": 2}]},
    ...                 ["rounds=12", "population.0.count=5"])
    {'rounds': 12, 'population': [{'count': 5}]}
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hvae.files.safe_yaml import YamlProblem, parse_yaml
from hvae.files.untrusted import UnsafeFile, one_line, read_regular
from hvae.scenarios.errors import ScenarioError
from hvae.agents.limits import MAX_YAML_DEPTH
from hvae.scenarios.schema import Scenario, union_tags

__all__ = ["ScenarioError", "apply_overrides", "dump_scenario", "load_scenario", "shipped_scenarios", "validate_data"]


def shipped_scenarios_dir() -> Path:
    """Folder of the scenario files shipped with hvae."""
    return Path(str(resources.files("hvae.scenarios")))


def shipped_scenarios() -> dict[str, Path]:
    """Shipped scenario files by name (file stem)."""
    return {p.stem: p for p in sorted(shipped_scenarios_dir().glob("*.yaml"))}


def resolve_scenario_path(name_or_path: str | Path) -> Path:
    """A path as given, or the shipped scenario of that name (``quickstart`` → its file)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = shipped_scenarios()
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    if path.stem in shipped and path.parent == Path("scenarios"):
        return shipped[path.stem]
    raise ScenarioError(f"{name_or_path}: no such file (and no shipped scenario of that name)")


#: Largest scenario (or sweep) file read, in bytes.
MAX_SCENARIO_BYTES = 8 << 20


def read_text(path: Path) -> str:
    """A scenario or sweep file's text: a regular file of at most :data:`MAX_SCENARIO_BYTES`, UTF-8."""
    try:
        return read_regular(path, "scenario file", MAX_SCENARIO_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except UnsafeFile as error:
        raise ScenarioError(str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: cannot read ({one_line(error, 120)})") from None


def read_yaml(path: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    """Parse a scenario file into data and its node tree (for line numbers; :func:`~hvae.files.safe_yaml.parse_yaml`)."""
    text = read_text(path)
    try:
        data, node = parse_yaml(text, path, MAX_YAML_DEPTH)
    except YamlProblem as error:
        raise ScenarioError(str(error)) from None
    if data is None:
        raise ScenarioError(f"{path}: the file is empty")
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario must be a mapping of keys, got {type(data).__name__}")
    return data, node


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``key.path=value`` override applied."""
    data = copy.deepcopy(data)
    for override in overrides:
        if "=" not in override:
            raise ScenarioError(f"--set {override!r}: expected key.path=value")
        path, raw_value = override.split("=", 1)
        keys = [k for k in path.strip().split(".")]
        if not all(keys):
            raise ScenarioError(f"--set {override!r}: empty key in path {path!r}")
        try:
            value = yaml.safe_load(raw_value) if raw_value.strip() else ""
        except yaml.YAMLError:
            value = raw_value
        except (ValueError, RecursionError):  # an integer of more than 4,300 digits, nesting too deep
            raise ScenarioError(f"--set {path}: unreadable value") from None
        target: Any = data
        for depth, key in enumerate(keys):
            last = depth == len(keys) - 1
            where = ".".join(keys[: depth + 1])
            if isinstance(target, list):
                if not key.lstrip("-").isdigit():
                    raise ScenarioError(f"--set {path}: {where!r} needs a list index, got {key!r}")
                index = int(key)
                if not 0 <= index < len(target):
                    raise ScenarioError(
                        f"--set {path}: index {index} out of range ({len(target)} entries at "
                        f"{'.'.join(keys[:depth]) or 'top'})"
                    )
                if last:
                    target[index] = value
                else:
                    target = target[index]
            elif isinstance(target, dict):
                if last:
                    target[key] = value
                else:
                    if key not in target or target[key] is None:
                        target[key] = {}
                    target = target[key]
            else:
                raise ScenarioError(
                    f"--set {path}: {'.'.join(keys[:depth])!r} is a value, not a section"
                )
    return data


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node that ``loc`` reaches."""
    line = None
    for part in loc:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if match is None:
                continue  # a union tag in the loc (e.g. 'watts_strogatz'), not a YAML key
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            continue
        if node is not None:
            line = node.start_mark.line + 1
    return line


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def format_validation_error(
    error: ValidationError, source: str, node: yaml.Node | None, what: str = "scenario"
) -> str:
    """One line for the first problem of a pydantic error (the rest are counted).

    ``what`` names the document when the problem has no field path (``scenario``, ``sweep``).
    """
    problems = error.errors(include_url=False)
    first = problems[0]
    loc = tuple(first["loc"])
    # Drop union/discriminator tags pydantic inserts into the path (they are not YAML keys).
    path = ".".join(str(p) for i, p in enumerate(loc) if not _is_union_tag(loc, i))
    message = _MESSAGES.get(first["type"], first["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    message = message[0].lower() + message[1:] if message else message
    if first["type"] not in ("missing", "extra_forbidden") and "input" in first:
        got = first["input"]
        if not isinstance(got, (dict, list)):
            message += f" (got {got!r})"
    line = _line_of(node, loc)
    where = f"{source}:{line}" if line else source
    more = f" [and {len(problems) - 1} more problem(s)]" if len(problems) > 1 else ""
    return f"{where}: {path or what}: {message}{more}"


_UNION_FIELDS = {"network", "menus", "decider", "value", "dynamics"}


def _is_union_tag(loc: tuple[Any, ...], index: int) -> bool:
    """Whether ``loc[index]`` is a tag pydantic inserted after a union field (not a YAML key)."""
    if index == 0 or not _is_tag(loc[index]):
        return False
    previous = loc[index - 1]
    return previous in _UNION_FIELDS or (index >= 2 and loc[index - 2] == "backends")


def _is_tag(part: Any) -> bool:
    # the schema's union tags (generated from its unions and the plug-in registries)
    return isinstance(part, str) and (part in union_tags() or part.startswith(("function-", "tagged-union")))


def validate_data(data: dict[str, Any], source: str, node: yaml.Node | None = None) -> Scenario:
    """Validate a scenario mapping; raise :class:`ScenarioError` with a one-line message."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(format_validation_error(error, source, node)) from None
    except ValueError as error:  # raised outside pydantic's wrapping (e.g. share arithmetic)
        raise ScenarioError(f"{source}: {error}") from None


def load_scenario(
    path: str | Path, overrides: Iterable[str] = (), seed: int | None = None
) -> Scenario:
    """Read, override and validate a scenario file (a path or a shipped scenario's name).

    Relative network file paths are resolved against the scenario file's folder.
    """
    file_path = resolve_scenario_path(path)
    data, node = read_yaml(file_path)
    overrides = list(overrides)
    if overrides:
        data = apply_overrides(data, overrides)
        node = None if _touches_structure(overrides) else node
    if seed is not None:
        data["seed"] = seed
    network = data.get("network")
    if isinstance(network, dict) and network.get("kind") == "file" and "path" in network:
        network_path = Path(str(network["path"]))
        if not network_path.is_absolute():
            network["path"] = str((file_path.parent / network_path).resolve())
    for group in data.get("population") or []:  # a decider's policy file (surrogate), likewise
        decider = group.get("decider") if isinstance(group, dict) else None
        if isinstance(decider, dict) and isinstance(decider.get("policy"), str) and decider["policy"]:
            policy_path = Path(decider["policy"])
            if not policy_path.is_absolute():
                decider["policy"] = str((file_path.parent / policy_path).resolve())
    return validate_data(data, str(file_path), node)


def _touches_structure(overrides: list[str]) -> bool:
    # Line numbers stay right unless an override adds or replaces a whole section.
    return any(o.split("=", 1)[1].strip().startswith(("{", "[")) for o in overrides if "=" in o)


def dump_scenario(scenario: Scenario) -> str:
    """The resolved scenario as YAML (every default filled in; credentials in URLs removed)."""
    from hvae.agents.llm.secrets import scrub_scenario

    return yaml.safe_dump(
        scrub_scenario(scenario.model_dump(mode="json", exclude_none=True)), sort_keys=False, allow_unicode=True
    )
