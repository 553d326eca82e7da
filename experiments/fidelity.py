"""Fidelity's population check: the LLM run's own scenario played by the surrogates, seed by seed.

The population level of :mod:`hvae.analysis.fidelity` compares the scenario played by the LLM
agents with the same scenario played by their surrogates. :func:`surrogate_scenario` takes the
resolved scenario of an LLM run (its ``scenario.yaml``) and replaces the decider of every LLM group
by ``{kind: surrogate, policy: <path>, group: <name>}`` (``group`` only for a policy fitted by
group; a policy by value or by agent finds each agent's unit itself); everything else — population,
network, menus, matching, dynamics, rounds — stays as the LLM played it. :func:`surrogate_runs`
plays it in memory over several seeds (:func:`hvae.experiments.runs.run_in_memory`, what
``hvae.Simulation.run`` uses), and :func:`llm_runs` plays the LLM scenario itself over more seeds
(real LLM calls: for a local server such as ``hvae serve-oracle``, or when the cost is accepted)::

    from hvae.analysis.runfolder import RunFolder
    llm = RunFolder("runs/llm")
    runs = surrogate_runs(llm.scenario, "policy.yaml", seeds=range(5))
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hvae.analysis.rundata import MemoryRun
from hvae.experiments.runs import run_in_memory
from hvae.scenarios.loader import validate_data
from hvae.scenarios.schema import Scenario


def surrogate_scenario(scenario: dict[str, Any], policy_path: str | Path, *, by_group: bool = True,
                       groups: Iterable[str] | None = None) -> Scenario:
    """``scenario`` (plain data, e.g. a run's ``scenario.yaml``) with its LLM groups played by the policy.

    ``groups`` limits the replacement to those group names (default: every group whose decider is
    an LLM). ``by_group`` passes each group's name to the decider (policies fitted by group). The
    policy is named by its absolute path: the scenario has no file a relative path could be read from.

    Raises:
        ValueError: no group to replace.
        hvae.scenarios.errors.ScenarioError: the result is not a valid scenario.
    """
    data = copy.deepcopy(scenario)
    wanted = None if groups is None else set(groups)
    replaced = []
    for group in data.get("population", []):
        decider = group.get("decider")
        is_llm = isinstance(decider, dict) and decider.get("kind") == "llm"
        if (wanted is None and is_llm) or (wanted is not None and group.get("name") in wanted):
            group["decider"] = {"kind": "surrogate", "policy": str(Path(policy_path).resolve()),
                                "group": group["name"] if by_group else None}
            replaced.append(group["name"])
    if not replaced:
        raise ValueError("the scenario has no LLM group for the surrogate to play")
    data.pop("communication", None)  # surrogates do not talk
    if not any(isinstance(g.get("decider"), dict) and g["decider"].get("kind") == "llm" for g in data["population"]):
        data.pop("backends", None)
    return validate_data(data, f"surrogate of {scenario.get('name', 'scenario')}")


def play_seeds(scenario: Scenario, seeds: Iterable[int]) -> list[MemoryRun]:
    """``scenario`` played in memory once per seed."""
    return [run_in_memory(scenario.model_copy(update={"seed": int(seed)})) for seed in seeds]


def surrogate_runs(scenario: dict[str, Any], policy_path: str | Path, seeds: Iterable[int], *,
                   by_group: bool = True) -> list[MemoryRun]:
    """The LLM run's scenario played by the policy's surrogates, once per seed (in memory)."""
    return play_seeds(surrogate_scenario(scenario, policy_path, by_group=by_group), seeds)


def llm_runs(scenario: dict[str, Any], seeds: Iterable[int]) -> list[MemoryRun]:
    """The LLM run's scenario itself, played again once per seed (real LLM calls; in memory)."""
    return play_seeds(validate_data(copy.deepcopy(scenario), str(scenario.get("name", "scenario"))), seeds)
