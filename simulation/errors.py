"""The run folder's exception, in a module of its own so that the store and the lock share it.

:class:`RunFolderError` says that a run folder cannot be created or used (not empty, not a run
folder, locked by another process — :class:`~hvae.simulation.lock.FolderLocked` — or a
checkpoint that cannot be read). The command line prints it as one ``hvae: error:`` line.
"""

from __future__ import annotations


class RunFolderError(ValueError):
    """A run folder that cannot be created or used."""
