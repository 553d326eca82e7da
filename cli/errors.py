"""User errors on the command line: one line ``hvae: error: ...``, exit status 2, no traceback.

Every command is wrapped in :func:`friendly_errors`: the errors that mean "what you gave me cannot
be used" (a bad scenario, a run folder in the way, an unusable backend) become a
:class:`UserError`; a backend that stopped answering is one line with exit status 1; anything
else is an internal error, printed as one line with exit status 1 (``HVAE_DEBUG=1`` shows the
traceback). Every line is passed through :func:`error_line`: credentials masked
(:func:`~hvae.agents.llm.secrets.redact_text`), then made one safe line
(:func:`~hvae.files.untrusted.one_line`: no escape sequences or newlines, capped in length), since
error texts quote backends, folders and files that anyone may have written.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any

import click

from hvae.agents.llm.backends import BackendError
from hvae.agents.llm.health import BackendUnavailable
from hvae.agents.llm.secrets import redact_text
from hvae.agents.surrogate import PolicyError
from hvae.files.untrusted import UnsafeFile, one_line
from hvae.scenarios.errors import ScenarioError
from hvae.simulation.store import RunFolderError

USER_ERRORS: tuple[type[Exception], ...] = (ScenarioError, RunFolderError, BackendError, UnsafeFile, PolicyError)
EXIT_USER_ERROR = 2
#: Longest error line printed (characters).
ERROR_LINE_LIMIT = 1000


def error_line(text: str) -> str:
    """``text`` as printed on the terminal: credentials masked, one line, no escape sequences, capped."""
    return one_line(redact_text(text), limit=ERROR_LINE_LIMIT)


class UserError(click.ClickException):
    """A problem with what the user gave us: one line, exit status 2."""

    exit_code = EXIT_USER_ERROR

    def show(self, file: Any = None) -> None:
        click.echo(error_line(f"hvae: error: {self.format_message()}"), err=True)


def friendly_errors(func: Callable) -> Callable:
    """Turn known user errors into :class:`UserError` and anything else into one line, exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except USER_ERRORS as error:
            raise UserError(str(error)) from None
        except BackendUnavailable as error:
            click.echo(error_line(f"hvae: error: {error}"), err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("hvae: interrupted", err=True)
            sys.exit(130)
        except Exception as error:  # noqa: BLE001 - last line of defence for the CLI
            if os.environ.get("HVAE_DEBUG"):
                raise
            click.echo(
                error_line(f"hvae: internal error: {type(error).__name__}: {error}") + " (set HVAE_DEBUG=1 for the traceback)",
                err=True,
            )
            sys.exit(1)

    return wrapper
