"""Credentials and run folders: which secrets a run leaves out of its files, and who decides where they go.

**Trust model.** A run folder is data someone may have sent you; it never decides on its own where
your credentials go or which environment variables are read. A fresh run takes its backends from
the scenario *you* give; a resume takes them from the folder's ``scenario.yaml``, which anyone
could have edited (``base_url: http://HOST/${SOME_OTHER_SECRET}/v1``, ``api_key_env:
MY_SECRET_KEY``). So before a resume builds any client, :func:`check_backends_trusted` lists every
backend that would read an environment variable — its ``api_key_env`` and the ``${VARIABLE}``
references in its ``base_url`` — with the host it would send them to, and refuses with one line
naming them unless the user passed ``--trust-backends`` (:func:`credential_destinations`).
A backend that reads no variable sends no secret and needs no consent.

**Removed secrets.** A backend's ``base_url`` may carry literal credentials
(``https://user:pass@proxy/v1``, ``?key=…``). hvae uses them for the run but never writes them
(:mod:`hvae.agents.llm.secrets` strips them from the resolved ``scenario.yaml``); ``summary.json``
lists the fields that lost them under ``redacted`` (:func:`redacted_fields`), and a resume is
refused with one line until they are put back as ``${VARIABLE}`` references
(:func:`check_credentials_restored`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hvae.agents.llm.secrets import MASK, credentials_restored, has_literal_credentials, referenced_variables, url_host
from hvae.files.untrusted import one_line
from hvae.scenarios.schema import Scenario
from hvae.simulation.store import RunFolderError

#: Where an OpenAI-compatible client sends requests when the scenario gives no ``base_url``.
DEFAULT_HOST = "api.openai.com (the client's default)"


class UntrustedBackends(RunFolderError):
    """A resume would send environment variables named by the folder; the user has not agreed."""


def _urls(value: object) -> list[str]:
    """A ``base_url`` as a list (one URL, or replica URLs)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return []


@dataclass(frozen=True)
class Destination:
    """One backend that reads environment variables, and the hosts it sends them to."""

    backend: str
    variables: tuple[str, ...]
    hosts: tuple[str, ...]

    def describe(self) -> str:
        names = ", ".join(f"${name}" for name in self.variables)
        return f"backend {one_line(self.backend, 60)!r} would send {names} to {', '.join(self.hosts)}"


def credential_destinations(scenario: Scenario) -> list[Destination]:
    """Every backend that reads an environment variable (API key or ``${VARIABLE}`` in its URL)."""
    found = []
    for name, config in scenario.backends.items():
        urls = _urls(getattr(config, "base_url", None))
        variables: list[str] = []
        key_env = getattr(config, "api_key_env", None)
        if key_env:
            variables.append(one_line(key_env, 80))
        for url in urls:
            variables += referenced_variables(url)
        if variables:
            hosts = tuple(dict.fromkeys(url_host(url) for url in urls)) or (DEFAULT_HOST,)
            found.append(Destination(str(name), tuple(dict.fromkeys(variables)), hosts))
    return found


def check_backends_trusted(scenario: Scenario, run_dir: Path, trusted: bool) -> list[str]:
    """Refuse to resume with backends that read environment variables, unless ``trusted``.

    Returns the lines describing what the resume will send (empty when no variable is read), so a
    caller can show them when the user did agree.

    Raises:
        UntrustedBackends: a backend reads a variable and ``trusted`` is false (the message names
            every variable and host).
    """
    lines = [destination.describe() for destination in credential_destinations(scenario)]
    if lines and not trusted:
        raise UntrustedBackends(
            f"{run_dir}: resuming reads backends from the folder's scenario.yaml, and {'; '.join(lines)}; "
            "a run folder never decides alone where your credentials go: if these hosts and variables "
            "are yours, resume again with --trust-backends"
        )
    return lines


def redacted_fields(scenario: Scenario) -> list[str]:
    """Key paths of the scenario whose secrets :func:`scrub_scenario` removes from files."""
    return [
        f"backends.{name}.base_url"
        for name, config in scenario.backends.items()
        if any(has_literal_credentials(url) for url in _urls(getattr(config, "base_url", None)))
    ]


def check_credentials_restored(scenario: Scenario, redacted: list[str], run_dir: Path) -> None:
    """Refuse to resume a run whose base_url credentials were removed and not put back.

    Raises:
        RunFolderError: a field listed in ``redacted`` still has no credentials.
    """
    for path in redacted:
        parts = str(path).split(".")
        config = scenario.backends.get(parts[1]) if len(parts) == 3 and parts[0] == "backends" else None
        urls = _urls(getattr(config, "base_url", None))
        restored = any(credentials_restored(url) for url in urls) and not any(MASK in url for url in urls)
        if config is not None and not restored:
            raise RunFolderError(
                f"{run_dir}: {one_line(path, 80)} had credentials, which hvae never writes to a run folder; put them in "
                f"{run_dir / 'scenario.yaml'} as ${{VARIABLE}} references (e.g. https://${{USER_VAR}}:${{PASS_VAR}}@host/v1) "
                "set in the environment, then resume again"
            )
