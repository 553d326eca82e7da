"""Who decides: the lowest room, importing no other room of hvae.

What belongs here: the SVO maths (:mod:`~hvae.agents.svo`: angles, categories, the slider
measure, utilities), value specifications (:mod:`~hvae.agents.values`), the revealed-angle
estimator (:mod:`~hvae.agents.revealed`, used by the ``influence`` dynamics and by the analysis),
surrogate policies and their decider (:mod:`~hvae.agents.surrogate`),
the decider interface and the rule deciders (:mod:`~hvae.agents.deciders`: a new decider is a
class with a ``kind`` and a ``Config``, registered with ``register_decider``), the plug-in
registries of games, rules and deciders (:mod:`~hvae.agents.plugins`), the games' maths and
scenario sections (:mod:`~hvae.agents.games`), and the LLM deciders with their backends
(:mod:`hvae.agents.llm`). Nothing here knows about scenario files, the Mesa world or run folders.
"""
