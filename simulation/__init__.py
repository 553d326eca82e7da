"""The world and its loop: a scenario becomes a Mesa model whose rounds fill a run folder.

What belongs here: the model and its round (:mod:`~hvae.simulation.model`), the network and
matching (:mod:`~hvae.simulation.network`, :mod:`~hvae.simulation.matching`), the games that
play a scenario's menus (:mod:`~hvae.simulation.games`, on :mod:`~hvae.simulation.menus`: a new
game is registered there), value-update rules (:mod:`~hvae.simulation.dynamics`: a new rule is
registered there), building deciders (:mod:`~hvae.simulation.deciders`), the round records
(:mod:`~hvae.simulation.records`), and the run folder: runner, store and checkpoints. Imports
:mod:`hvae.agents` and :mod:`hvae.scenarios` only; it never reads its own outputs back to
analyse them (that is :mod:`hvae.analysis`) and has no command line (that is :mod:`hvae.cli`).
"""
