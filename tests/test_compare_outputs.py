"""benchmarks/compare_outputs.py plans a run every shipped scenario can play without a model.

Every LLM backend a shipped scenario names must be replaced by a scripted ``replay`` backend of the
same name (talk.yaml's groups use ``oracle_server`` as well as ``embedded``); the check reads the
names from the scenario files itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from hvae.scenarios.loader import load_scenario, shipped_scenarios

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_outputs.py"


def _script():
    spec = importlib.util.spec_from_file_location("compare_outputs", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_backend_a_shipped_scenario_names_is_replayed() -> None:
    script = _script()
    plan = script.runs()
    named = {
        name: set((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("backends") or {})
        for name, path in shipped_scenarios().items()
        if name in plan
    }
    assert "oracle_server" in named["talk"]  # the case that crashed: a backend other than `embedded`
    for name, backends in named.items():
        scenario = load_scenario(*plan[name])  # validates: every group's backend exists
        assert set(scenario.backends) == backends, name
        assert all(config.kind == "replay" for config in scenario.backends.values()), name
