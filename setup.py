"""Package discovery for hvae (metadata lives in pyproject.toml).

The rooms are folders at the repository root (``files/``, ``agents/``, ``scenarios/``, ``simulation/``,
``analysis/``, ``experiments/``, ``cli/``; docs/architecture.md). Each is installed as
``hvae.<room>`` together with every subpackage found below it, and with its data files (shipped scenarios, reference tables), so a
wheel holds exactly what the checkout holds — no hand-kept list to forget a new subpackage in.
"""

from setuptools import find_packages, setup

ROOMS = ("files", "agents", "scenarios", "simulation", "analysis", "experiments", "dashboard", "cli")
DATA_FILES = ["*.yaml", "*.yml", "*.csv", "*.json", "*.md"]

# the top-level package itself (``import hvae``: version and the Python API) is the folder facade/. It is
# not called hvae/: a folder of that name in the working directory would shadow the installed package
# (``python -m pytest`` from the checkout puts the checkout first on sys.path) and hide its rooms.
packages: list[str] = ["hvae"]
package_dir: dict[str, str] = {"hvae": "facade"}
for room in ROOMS:
    package_dir[f"hvae.{room}"] = room
    packages.append(f"hvae.{room}")
    packages.extend(f"hvae.{room}.{name}" for name in find_packages(where=room))

setup(
    packages=packages,
    package_dir=package_dir,
    package_data={name: DATA_FILES for name in packages},
    include_package_data=False,
)
