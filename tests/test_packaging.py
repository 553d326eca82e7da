"""The distribution: a wheel built from the checkout holds every package and data file it has.

A hand-kept package list once left ``hvae.agents.llm`` out of the wheel (the editable install
hid it). Here the wheel is built as a user's ``pip install .`` would build it and compared with the
checkout: every folder with an ``__init__.py`` under the rooms, every module, and every
shipped scenario must be in it, under ``hvae/``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("files", "agents", "scenarios", "simulation", "analysis", "experiments", "dashboard", "cli")


def _expected_files() -> set[str]:
    files = {"hvae/" + path.name for path in (ROOT / "facade").glob("*.py")}  # the top-level package (import hvae)
    for room in ROOMS:
        for path in (ROOT / room).rglob("*"):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            if path.suffix in (".py", ".yaml"):
                files.add("hvae/" + path.relative_to(ROOT).as_posix())
    return files


@pytest.mark.slow
def test_wheel_holds_every_module_and_scenario(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("hvae-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _expected_files()
    assert "hvae/agents/llm/decider.py" in expected and "hvae/scenarios/quickstart.yaml" in expected
    assert "hvae/experiments/sweep/__init__.py" in expected and "hvae/cli/main.py" in expected
    assert "hvae/__init__.py" in expected and "hvae/api.py" in expected
    missing = sorted(expected - names)
    assert not missing, missing
    top = {"hvae/" + path.name for path in (ROOT / "facade").glob("*.py")}
    stray = sorted(n for n in names if n.startswith("hvae/") and n.split("/")[1] not in ROOMS and n not in top)
    assert not stray, stray  # tests, benchmarks and the like stay out of the wheel
