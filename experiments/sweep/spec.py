"""The sweep's specification: the sweep file, its expansion into planned runs, their names.

:func:`load_sweep` reads and validates a sweep file (:class:`SweepFile`), :func:`expand` turns it
into :class:`PlannedRun` s (``runs × grid`` points, each for every seed) with deterministic folder
names (:func:`run_id`), and :func:`validate_runs` loads every run's scenario before anything runs,
so a bad value fails at once with the sweep file's line. Nothing here runs a model; see
:mod:`hvae.experiments.sweep` for the file format.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hvae.agents.llm.secrets import strip_credentials
from hvae.scenarios.loader import (
    ScenarioError,
    format_validation_error,
    _line_of,
    dump_scenario,
    load_scenario,
    read_text,
    read_yaml,
    resolve_scenario_path,
)
from hvae.scenarios.schema import SafeName

_KEY_PATH = re.compile(r"^[^\s=.]+(\.[^\s=.]+)*$")


class SweepFile(BaseModel):
    """The sweep file's schema (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid")

    name: SafeName
    description: str = ""
    scenario: str = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    overrides: dict[str, Any] = Field(default_factory=dict)
    runs: list[dict[str, Any]] = Field(default_factory=list)
    grid: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, seeds: list[int]) -> list[int]:
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"must be unique, repeated: {', '.join(map(str, repeated))}")
        return seeds

    @field_validator("overrides", "grid")
    @classmethod
    def _key_paths(cls, mapping: dict[str, Any]) -> dict[str, Any]:
        _check_keys(mapping)
        return mapping

    @field_validator("runs")
    @classmethod
    def _run_key_paths(cls, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for entry in runs:
            if not entry:
                raise ValueError("a runs entry needs at least one key path: value")
            _check_keys(entry)
        return runs

    @field_validator("grid")
    @classmethod
    def _non_empty_lists(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [key for key, values in grid.items() if not values]
        if empty:
            raise ValueError(f"grid key {empty[0]!r} has no values")
        return grid

    @model_validator(mode="after")
    def _no_clashes(self) -> SweepFile:
        run_keys = {key for entry in self.runs for key in entry}
        both = sorted(run_keys & set(self.grid))
        if both:
            raise ValueError(f"{both[0]!r} is set by both runs and grid")
        return self


def _check_keys(mapping: dict[str, Any]) -> None:
    for key in mapping:
        if not isinstance(key, str) or not _KEY_PATH.match(key):
            raise ValueError(f"{key!r} is not a key path like rounds or population.0.share")
        if key == "seed":
            raise ValueError("the seed is set by 'seeds', not by an override")


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: where it goes and how its scenario is made."""

    index: int
    run_id: str
    params: dict[str, Any]  # key path -> value (the runs entry and the grid point)
    seed: int
    overrides: tuple[str, ...]  # --set strings, global overrides first


@dataclass
class Sweep:
    """A loaded sweep file: its settings, the base scenario's path and every planned run."""

    config: SweepFile
    path: Path
    scenario_path: Path
    runs: list[PlannedRun]
    text: str = ""

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def param_keys(self) -> list[str]:
        keys = [key for entry in self.config.runs for key in entry]
        return list(dict.fromkeys([*keys, *self.config.grid]))


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file (a path, or a sweep shipped in ``scenarios/`` by name) and
    expand it into runs (the scenarios are not loaded yet).

    Raises:
        ScenarioError: one line, ``file:line: key.path: message``.
    """
    path = Path(path)
    if not path.exists():
        path = resolve_scenario_path(path)  # a sweep file shipped in scenarios/, e.g. sweep_example
    data, node = read_yaml(path)
    try:
        config = SweepFile.model_validate(data)
    except ValidationError as error:
        raise ScenarioError(_format_error(error, str(path), node)) from None
    scenario_path = _resolve_base(config.scenario, path, node)
    return Sweep(config, path, scenario_path, list(expand(config)), read_text(path))


def _resolve_base(name: str, sweep_path: Path, node: yaml.Node | None) -> Path:
    relative = sweep_path.parent / name
    if relative.is_file():
        return relative.resolve()
    try:
        return resolve_scenario_path(name).resolve()
    except ScenarioError:
        line = _line_of(node, ("scenario",))
        where = f"{sweep_path}:{line}" if line else str(sweep_path)
        raise ScenarioError(
            f"{where}: scenario: {name!r} is neither a file next to the sweep file nor a shipped scenario"
        ) from None


def _format_error(error: ValidationError, source: str, node: yaml.Node | None) -> str:
    return format_validation_error(error, source, node, what="sweep")


def expand(config: SweepFile) -> Iterator[PlannedRun]:
    """Every run of the sweep, in a fixed order: runs entry, then grid point, then seed."""
    entries = config.runs or [{}]
    keys = list(config.grid)
    points = [dict(zip(keys, values)) for values in itertools.product(*config.grid.values())]
    base = tuple(override_string(k, v) for k, v in config.overrides.items())
    index = 0
    for entry in entries:
        for point in points:
            params = {**entry, **point}
            overrides = base + tuple(override_string(k, v) for k, v in params.items())
            for seed in config.seeds:
                yield PlannedRun(index, run_id(index, params, seed), params, seed, overrides)
                index += 1


def override_string(key: str, value: Any) -> str:
    """``key=value`` with the value written as JSON (which the ``--set`` parser reads as YAML)."""
    return f"{key}={json.dumps(value, sort_keys=False)}"


_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


_MAX_PART = 48


def value_label(value: Any) -> str:
    """A short readable label of a parameter value (``{kind: grid, rows: 5}`` → ``grid-rows5``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        return format(value, "g")
    if isinstance(value, dict):
        parts = [value_label(value["kind"])] if "kind" in value else []
        parts += [f"{k}{value_label(v)}" for k, v in value.items() if k != "kind"]
        return "-".join(parts)
    if isinstance(value, (list, tuple)):
        return "-".join(value_label(v) for v in value)
    return strip_credentials(str(value))  # a base_url's password never becomes a folder name


def _safe(text: str) -> str:
    text = _UNSAFE.sub("-", text).strip("-") or "x"
    if len(text) > _MAX_PART:
        digest = hashlib.sha1(text.encode()).hexdigest()[:6]
        text = f"{text[: _MAX_PART - 7]}~{digest}".replace("~", "-")
    return text


def run_id(index: int, params: dict[str, Any], seed: int) -> str:
    """``run-0007_competitors.share=0.5_network=grid-rows5-cols8_seed=2`` (deterministic)."""
    parts = [f"run-{index:04d}"]
    parts += [f"{_safe(key)}={_safe(value_label(value))}" for key, value in params.items()]
    parts.append(f"seed={seed}")
    return "_".join(parts)


def validate_runs(sweep: Sweep) -> dict[str, str]:
    """Load every run's scenario; return the resolved scenario YAML per run id.

    Raises:
        ScenarioError: the first run whose scenario is invalid, pointing at the sweep file's line
            of the value that breaks it when one value alone does.
    """
    resolved: dict[str, str] = {}
    base_checked = False
    for run in sweep.runs:
        try:
            scenario = load_scenario(sweep.scenario_path, run.overrides, seed=run.seed)
        except ScenarioError as error:
            if not base_checked:
                load_scenario(sweep.scenario_path)  # a broken base scenario is reported as it is
            raise ScenarioError(_blame(sweep, run, error)) from None
        base_checked = True
        resolved[run.run_id] = dump_scenario(scenario)
    return resolved


def _blame(sweep: Sweep, run: PlannedRun, error: ScenarioError) -> str:
    """One line for a run whose scenario is invalid, at the sweep file's line of the culprit value."""
    _, node = read_yaml(sweep.path)
    config = sweep.config
    base = [override_string(k, v) for k, v in config.overrides.items()]
    candidates: list[tuple[tuple[Any, ...], str, Any, list[str]]] = [
        (("overrides", key), key, value, [override_string(key, value)]) for key, value in config.overrides.items()
    ]
    for number, entry in enumerate(config.runs):
        if all(run.params.get(k) == v for k, v in entry.items()):
            candidates += [(("runs", number, k), k, v, [*base, override_string(k, v)]) for k, v in entry.items()]
            break
    for key, values in config.grid.items():
        position = values.index(run.params[key])
        candidates.append((("grid", key, position), key, run.params[key], [*base, override_string(key, run.params[key])]))
    for loc, key, value, overrides in candidates:
        try:
            load_scenario(sweep.scenario_path, overrides)
        except ScenarioError as alone:
            line = _line_of(node, loc)
            where = f"{sweep.path}:{line}" if line else str(sweep.path)
            section = ".".join(map(str, loc[:-1])) if loc[0] == "runs" else loc[0]
            return f"{where}: {section}: {key}={value_label(value)} does not fit the scenario: {alone}"
    return f"{sweep.path}: run {run.run_id}: {error}"
