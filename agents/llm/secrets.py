"""Secrets in backend settings: read from the environment, never written anywhere.

API keys come from the environment only (``api_key_env`` names the variable). A ``base_url``
may carry credentials too — a user and password (``https://user:pass@proxy.example/v1``, an
authenticating proxy) or a secret query parameter (``?key=…``, ``?token=…``, ``?sig=…``):

* written as ``${VARIABLE}`` references — ``https://${PROXY_USER}:${PROXY_PASSWORD}@proxy/v1`` —
  they are expanded from the environment only when the client is built (:func:`expand_env`), so
  the run folder keeps the references and a resume reads the environment again (after the user
  agreed to the names and hosts: :mod:`hvae.simulation.credentials`);
* written literally, they are used for the run but removed wherever hvae writes the URL: the
  resolved ``scenario.yaml`` keeps ``https://proxy/v1`` (:func:`scrub_scenario`), ``summary.json``
  lists the field under ``redacted``, and a resume is refused with one line until references are
  put back. Error texts that reach transcripts, summaries and the terminal pass through
  :func:`redact_text`; sweep folder names and tables through :func:`strip_credentials`.

URLs are split as RFC 3986 says, not by a pattern: the authority ends at the first ``/``, ``?`` or
``#``, and the user information ends at its **last** ``@`` — so a password that itself holds an
``@`` is removed whole. Every function here takes one URL; a list of replica URLs is handled by
mapping it (:func:`map_urls`).

    >>> redact_url("https://ann:s3cret@proxy.example/v1")
    'https://***@proxy.example/v1'
    >>> redact_url("http://user:hun@ter2@host/v1?key=abc&model=m")
    'http://***@host/v1?key=***&model=m'
    >>> redact_url("https://${USER_VAR}:${PASS_VAR}@proxy.example/v1")   # references are not secrets
    'https://${USER_VAR}:${PASS_VAR}@proxy.example/v1'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hvae.files.untrusted import one_line

MASK = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S*")
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ONLY_REFERENCES = re.compile(r"^(\$\{[A-Za-z_][A-Za-z0-9_]*\}|:)+$")
#: Query parameter names whose values are treated as secrets (``key``, ``api_key``, ``token``, ``sig`` …).
SECRET_PARAMETER = re.compile(r"key|token|secret|pass|pwd|sig|auth|cred|session|code", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)


@dataclass(frozen=True)
class UrlParts:
    """One URL split into what may carry a secret and what may not."""

    scheme: str  # 'https://'
    userinfo: str | None  # 'user:pass' (None: no '@' in the authority)
    host: str  # 'proxy.example:8080'
    path: str  # '/v1'
    query: str | None  # 'key=abc&model=m' (None: no '?')
    fragment: str | None

    def secret_parameters(self) -> list[tuple[str, str]]:
        """``(name, value)`` of the query parameters whose names look secret."""
        found = []
        for pair in (self.query or "").split("&"):
            name, equals, value = pair.partition("=")
            if equals and SECRET_PARAMETER.search(name):
                found.append((name, value))
        return found

    def join(self, userinfo: str | None, query: str | None) -> str:
        url = self.scheme + (f"{userinfo}@" if userinfo is not None else "") + self.host + self.path
        if query is not None:
            url += f"?{query}"
        return url + (f"#{self.fragment}" if self.fragment is not None else "")


def split_url(url: str) -> UrlParts | None:
    """``url`` split into scheme, user information, host, path, query and fragment (None: not a URL)."""
    match = _URL.match(url)
    if not match:
        return None
    userinfo, at, host = match.group("authority").rpartition("@")
    rest, hash_, fragment = match.group("rest").partition("#")
    path, question, query = rest.partition("?")
    return UrlParts(
        match.group("scheme"), userinfo if at else None, host, path,
        query if question else None, fragment if hash_ else None,
    )


def _is_reference(text: str) -> bool:
    return bool(_ONLY_REFERENCES.match(text))


def _masked(parts: UrlParts, drop_userinfo: bool) -> str:
    userinfo = parts.userinfo
    if userinfo is not None and not _is_reference(userinfo):
        userinfo = None if drop_userinfo else MASK
    query = parts.query
    if query is not None:
        pairs = []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            if equals and SECRET_PARAMETER.search(name) and value and not _is_reference(value):
                pair = f"{name}={MASK}"
            pairs.append(pair)
        query = "&".join(pairs)
    return parts.join(userinfo, query)


def literal_secrets(url: str | None) -> list[str]:
    """The parts of ``url`` that carry a literal secret (``userinfo``, ``?key``), references excepted."""
    parts = split_url(url) if url else None
    if parts is None:
        return []
    found = ["userinfo"] if parts.userinfo is not None and not _is_reference(parts.userinfo) else []
    found += [f"?{name}" for name, value in parts.secret_parameters() if value and not _is_reference(value)]
    return found


def has_literal_credentials(url: str | None) -> bool:
    """Whether ``url`` carries a user, password or secret parameter that is not a ``${VARIABLE}`` reference."""
    return bool(literal_secrets(url))


def has_userinfo(url: str | None) -> bool:
    """Whether ``url`` carries a user or password at all (literal or ``${VARIABLE}`` references)."""
    parts = split_url(url) if url else None
    return parts is not None and parts.userinfo is not None


def credentials_restored(url: str | None) -> bool:
    """Whether a URL whose secrets were removed has them back (user info or secret parameters, none masked)."""
    parts = split_url(url) if url else None
    if parts is None or MASK in (url or ""):
        return False
    return parts.userinfo is not None or any(value for _, value in parts.secret_parameters())


def url_host(url: str) -> str:
    """The host (and port) a URL sends to, as shown to a user deciding whether to trust it."""
    parts = split_url(url)
    return one_line(parts.host, limit=120) if parts is not None else "(not a URL)"


def referenced_variables(value: str | None) -> list[str]:
    """Names of the ``${VARIABLE}`` references in ``value``, in order, without repeats."""
    return list(dict.fromkeys(_REFERENCE.findall(value or "")))


def redact_url(url: str) -> str:
    """``url`` with literal credentials shown as ``***`` (for messages)."""
    parts = split_url(url)
    return _masked(parts, drop_userinfo=False) if parts is not None else url


def strip_credentials(url: str) -> str:
    """``url`` without literal credentials (for files and folder names): user info removed, secret values ``***``."""
    parts = split_url(url)
    return _masked(parts, drop_userinfo=True) if parts is not None else url


def redact_text(text: str) -> str:
    """Any text (an error message) with the credentials of every URL in it, and bearer tokens, shown as ``***``."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
    return _BEARER.sub(lambda match: f"{match.group(1)} {MASK}", text)


def map_urls(value: Any, function: Callable[[str], Any]) -> Any:
    """``function`` applied to one URL, or to each URL of a list (replica URLs); other values unchanged."""
    if isinstance(value, str):
        return function(value)
    if isinstance(value, (list, tuple)):
        return [function(v) if isinstance(v, str) else v for v in value]
    return value


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
        if isinstance(config, dict) and config.get("base_url") is not None:
            config["base_url"] = map_urls(config["base_url"], strip_credentials)
    return data
