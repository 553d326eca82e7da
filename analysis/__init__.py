"""What it means: reads run folders and turns their tables into figures, tables and a report.

What belongs here: the run-folder reader (:mod:`~hvae.analysis.runfolder`), value rationality
(:mod:`~hvae.analysis.rationality`), revealed angles of a run (:mod:`~hvae.analysis.revealed`),
population metrics, the per-group summary, position bias, invasion, evaluation tables, the
figures (:mod:`~hvae.analysis.plots`: add a new figure there), the HTML report, and surrogate
policies distilled from a run's decisions (:mod:`~hvae.analysis.distil`). It reads
files only, so it imports nothing of the simulation: only :mod:`hvae.agents`' maths.
"""
