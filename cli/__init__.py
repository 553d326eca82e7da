"""The ``hvae`` command line: the top room, which may import every other.

What belongs here: the click commands and what only a terminal needs — argument parsing, one-line
user errors with exit status 2 (:mod:`~hvae.cli.errors`), rich tables and progress, the figures
``hvae evaluate`` writes. Each command is a thin layer over a function of a lower room (run a
scenario, resume, sweep, evaluate, report), so everything the command line does can also be done
from Python. The console script ``hvae`` is :func:`hvae.cli.main.main`.
"""
