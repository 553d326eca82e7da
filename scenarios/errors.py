"""The one exception of the scenario layer.

A :class:`ScenarioError` says that a scenario — its file, an override or a value in it — cannot be
used. Its message is one line naming the file, the line and the field path where known; the command
line prints it as ``hvae: error: ...`` and exits 2. It lives in its own module so that the model
and the network builder can raise it without importing the loader.
"""

from __future__ import annotations


class ScenarioError(ValueError):
    """A scenario (file, override or value) that cannot be used; the message is one line."""
