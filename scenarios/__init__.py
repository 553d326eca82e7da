"""What to run, as data: shipped scenario files, their schema, the loader and its one exception.

What belongs here: the YAML scenarios shipped with hvae, the pydantic schema every scenario is
validated against (:mod:`~hvae.scenarios.schema`: add a field for a new menu family, network or
update rule here), the loader with ``--set`` overrides (:mod:`~hvae.scenarios.loader`) and
:class:`~hvae.scenarios.errors.ScenarioError`. Imports only :mod:`hvae.agents` (value specs).
"""
