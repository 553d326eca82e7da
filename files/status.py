"""A run's status, as ``summary.json`` records it, and which statuses mean "finished".

``running`` while it plays; ``complete`` when every round was played and written; ``complete_with_warnings``
when every round was played and written but its LLM decisions are mostly unusable (the share of valid
LLM decisions fell below the scenario's ``backend_errors.min_valid_share``: a warning line says so);
``interrupted`` (Ctrl-C) and ``failed`` for runs that stopped early (resumable). Readers that ask
"is this run finished, can its tables be trusted to be whole?" use :data:`FINISHED`, never
``status == "complete"``, so a run with warnings is neither resumed again nor re-run by a sweep::

    from hvae.files.status import FINISHED
    if summary.get("status") in FINISHED: ...
"""

from __future__ import annotations

COMPLETE = "complete"
COMPLETE_WITH_WARNINGS = "complete_with_warnings"
#: Statuses of a run that played every round and wrote every row.
FINISHED = frozenset({COMPLETE, COMPLETE_WITH_WARNINGS})
