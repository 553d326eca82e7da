"""Shared fixtures: small scenarios built in code and a way to run the CLI as a user does."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hvae.scenarios.loader import validate_data
from hvae.scenarios.schema import Scenario

BASE_SCENARIO: dict[str, Any] = {
    "name": "test",
    "seed": 3,
    "rounds": 12,
    "population": [
        {"name": "alt", "count": 4, "value": "altruistic", "decider": "oracle"},
        {"name": "pro", "count": 4, "value": "prosocial", "decider": "oracle"},
        {"name": "ind", "count": 4, "value": "individualistic", "decider": "oracle"},
        {"name": "com", "count": 4, "value": "competitive", "decider": "oracle"},
    ],
    "network": {"kind": "watts_strogatz", "k": 4, "p": 0.2},
    "matching": "random",
    "menus": {"kind": "slider"},
}



def llm_scenario_data(name: str, base_url: str, rounds: int) -> dict[str, Any]:
    """Two LLM agents on an openai backend at ``base_url`` (no retries, no cache) beside two oracles."""
    return {
        "name": name,
        "seed": 1,
        "rounds": rounds,
        "population": [
            {"name": "l", "count": 2, "value": "prosocial", "decider": {"kind": "llm", "backend": "srv"}},
            {"name": "o", "count": 2, "value": "prosocial", "decider": "oracle"},
        ],
        "network": {"kind": "complete"},
        "backends": {"srv": {"kind": "openai", "base_url": base_url, "model": "m", "retries": 0}},
        "cache": {"enabled": False},
    }


def make_scenario(**changes: Any) -> Scenario:
    """The base scenario with top-level keys replaced."""
    data = copy.deepcopy(BASE_SCENARIO)
    data.update(changes)
    return validate_data(data, "test")


@pytest.fixture(autouse=True, scope="session")
def private_llm_cache(tmp_path_factory):
    """Tests never read or write the user's LLM response cache."""
    folder = tmp_path_factory.mktemp("hvae-cache")
    previous = os.environ.get("HVAE_CACHE_DIR")
    os.environ["HVAE_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("HVAE_CACHE_DIR", None)
    else:
        os.environ["HVAE_CACHE_DIR"] = previous


@pytest.fixture
def scenario_factory():
    return make_scenario


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``hvae ARGS`` in a subprocess, as a user types it."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("HVAE_DEBUG", None)
    executable = Path(sys.executable).with_name("hvae")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "hvae.cli.main"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=cwd, env=full_env, timeout=timeout
    )


@pytest.fixture
def cli():
    return run_cli


def assert_user_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    """A user error: exit 2, exactly one ``hvae: error: …`` line naming ``fragment``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hvae: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
