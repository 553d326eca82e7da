"""Who decides: the lowest room, importing no other room of hvae.

What belongs here: the SVO maths (:mod:`~hvae.agents.svo`: angles, categories, the slider
measure, utilities), value specifications (:mod:`~hvae.agents.values`), the revealed-angle
estimator (:mod:`~hvae.agents.revealed`, used by the ``influence`` dynamics and by the analysis),
the decider interface and the rule deciders (:mod:`~hvae.agents.deciders`: add a new decider
there and register it in its ``RULE_DECIDERS``), and the LLM deciders with their backends
(:mod:`hvae.agents.llm`). Nothing here knows about scenario files, the Mesa world or run folders.
"""
