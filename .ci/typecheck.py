"""pyright (basic) over the rooms and modules in pyproject.toml's ``[tool.hvae.typecheck]`` (a list that only grows).

The rooms are folders at the repository root installed as ``hvae.<room>`` (setup.py), a mapping
pyright cannot follow: analysed in place, ``simulation/model.py`` would be both ``simulation.model``
and ``hvae.simulation.model``. So this script assembles the package as it is installed — hard links
under ``build/typecheck/hvae/`` — and runs pyright there, where every file has one module name::

    python .ci/typecheck.py          # exit status: pyright's (0: no errors)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALL_ROOMS = ("files", "agents", "scenarios", "simulation", "analysis", "experiments", "dashboard", "cli")


def assemble(target: Path) -> None:
    """``target/hvae/<room>`` for every room, as hard links (copies where links are not possible)."""
    shutil.rmtree(target, ignore_errors=True)
    package = target / "hvae"
    package.mkdir(parents=True)
    facade = ROOT / "facade" / "__init__.py"  # the facade, where the checkout has one
    if facade.is_file():
        shutil.copy2(facade, package / "__init__.py")
    else:
        (package / "__init__.py").write_text("", encoding="utf-8")
    for room in ALL_ROOMS:
        shutil.copytree(ROOT / room, package / room, ignore=shutil.ignore_patterns("__pycache__"),
                        copy_function=_link_or_copy)


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def main() -> int:
    include = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["hvae"]["typecheck"]["include"]
    target = ROOT / "build" / "typecheck"
    assemble(target)
    config = {"include": [f"hvae/{path}" for path in include], "typeCheckingMode": "basic", "pythonVersion": "3.11"}
    (target / "pyrightconfig.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent)) or "pyright"
    return subprocess.call([pyright, "--pythonpath", sys.executable, "-p", str(target)])


if __name__ == "__main__":
    sys.exit(main())
