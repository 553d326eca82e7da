"""Credentials and run folders: which secrets a run leaves out of its files, and resuming without them.

A backend's ``base_url`` may carry literal credentials (``https://user:pass@proxy/v1``). hvae uses
them for the run but never writes them (:mod:`hvae.agents.llm.secrets` strips them from the
resolved ``scenario.yaml``); ``summary.json`` lists the fields that lost them under ``redacted``
(:func:`redacted_fields`), and a resume is refused with one line until they are put back as
``${VARIABLE}`` references (:func:`check_credentials_restored`).
"""

from __future__ import annotations

from pathlib import Path

from hvae.agents.llm.secrets import has_literal_credentials, has_userinfo
from hvae.scenarios.schema import Scenario
from hvae.simulation.store import RunFolderError


def _urls(config: object) -> list[str]:
    """A backend's base URLs (``base_url`` may be a list of replicas)."""
    url = getattr(config, "base_url", None)
    return [url] if isinstance(url, str) else list(url or [])


def redacted_fields(scenario: Scenario) -> list[str]:
    """Key paths of the scenario whose secrets :func:`scrub_scenario` removes from files."""
    return [
        f"backends.{name}.base_url"
        for name, config in scenario.backends.items()
        if any(has_literal_credentials(url) for url in _urls(config))
    ]


def check_credentials_restored(scenario: Scenario, redacted: list[str], run_dir: Path) -> None:
    """Refuse to resume a run whose base_url credentials were removed and not put back.

    Raises:
        RunFolderError: a field listed in ``redacted`` still has no credentials.
    """
    for path in redacted:
        parts = path.split(".")
        config = scenario.backends.get(parts[1]) if len(parts) == 3 and parts[0] == "backends" else None
        if config is not None and not any(has_userinfo(url) for url in _urls(config)):
            raise RunFolderError(
                f"{run_dir}: {path} had credentials, which hvae never writes to a run folder; put them in "
                f"{run_dir / 'scenario.yaml'} as ${{VARIABLE}} references (e.g. https://${{USER_VAR}}:${{PASS_VAR}}@host/v1) "
                "set in the environment, then resume again"
            )
