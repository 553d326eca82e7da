"""Secrets in backend settings: read from the environment, never written anywhere.

API keys come from the environment only (``api_key_env`` names the variable). A ``base_url``
may carry credentials too (``https://user:pass@proxy.example/v1``, an authenticating proxy):

* written as ``${VARIABLE}`` references — ``https://${PROXY_USER}:${PROXY_PASSWORD}@proxy/v1`` —
  they are expanded from the environment only when the client is built (:func:`expand_env`), so
  the run folder keeps the references and a resume reads the environment again;
* written literally, they are used for the run but removed wherever hvae writes the URL: the
  resolved ``scenario.yaml`` keeps ``https://proxy/v1`` (:func:`scrub_scenario`), ``summary.json``
  lists the field under ``redacted``, and a resume is refused with one line until references are
  put back (:mod:`hvae.simulation.credentials`). Error texts that reach transcripts, summaries and
  the terminal pass through :func:`redact_text`.

    >>> redact_url("https://ann:s3cret@proxy.example/v1")
    'https://***@proxy.example/v1'
    >>> redact_url("https://${USER_VAR}:${PASS_VAR}@proxy.example/v1")   # references are not secrets
    'https://${USER_VAR}:${PASS_VAR}@proxy.example/v1'
"""

from __future__ import annotations

import os
import re
from typing import Any

_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@?#]+)@")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ONLY_REFERENCES = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|:)+$")


def has_literal_credentials(url: str | None) -> bool:
    """Whether ``url`` carries a user or password that is not a ``${VARIABLE}`` reference."""
    if not url:
        return False
    match = _URL_USERINFO.search(url)
    return bool(match) and not _ONLY_REFERENCES.match(match.group("userinfo"))


def has_userinfo(url: str | None) -> bool:
    """Whether ``url`` carries a user or password at all (literal or ``${VARIABLE}`` references)."""
    return bool(url) and bool(_URL_USERINFO.search(url))


def _replace(text: str, replacement: str) -> str:
    def sub(match: re.Match[str]) -> str:
        if _ONLY_REFERENCES.match(match.group("userinfo")):
            return match.group(0)
        return match.group("scheme") + replacement

    return _URL_USERINFO.sub(sub, text)


def redact_url(url: str) -> str:
    """``url`` with literal credentials shown as ``***`` (for messages)."""
    return _replace(url, "***@")


def strip_credentials(url: str) -> str:
    """``url`` without literal credentials (for files)."""
    return _replace(url, "")


def redact_text(text: str) -> str:
    """Any text (an error message) with credentials in the URLs it contains shown as ``***``."""
    return _replace(text, "***@")


def expand_env(value: str, what: str) -> str:
    """Replace each ``${VARIABLE}`` in ``value`` by its environment value.

    Raises:
        BackendError: a variable is not set (the message names it and ``what``).
    """
    from hvae.agents.llm.backends import BackendError

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise BackendError(f"{what} refers to ${{{name}}}, which is not set in the environment")
        return found

    return _REFERENCE.sub(sub, value)


def scrub_scenario(data: dict[str, Any]) -> dict[str, Any]:
    """A resolved scenario mapping (``model_dump``) with literal base_url credentials removed."""
    for config in (data.get("backends") or {}).values():
        url = config.get("base_url") if isinstance(config, dict) else None
        if isinstance(url, list):  # replicas: each URL as one
            config["base_url"] = [strip_credentials(u) if has_literal_credentials(u) else u for u in url]
        elif has_literal_credentials(url):
            config["base_url"] = strip_credentials(url)
    return data
