"""Experiment protocols: many runs or questionnaires, organised to answer one question.

What belongs here: the HVAE questionnaire (:mod:`~hvae.experiments.questionnaire`: fresh agents
answer the SVO slider items, scored as the paper does) and parameter sweeps on dask
(:mod:`hvae.experiments.sweep`: the sweep file's specification, its execution, its results
table). Protocols sit above the simulation and the analysis and use both; the command line sits
above them.
"""
