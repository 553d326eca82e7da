"""How hvae writes files: the lowest room, shared by every other and importing none of them.

What belongs here: the one way a file is replaced in place (:mod:`~hvae.files.atomic`: written
under a temporary name, then renamed over the target, so a reader never sees half a file). The run
folder's store, checkpoints, the per-group table, sweep tables and the HTML report all use it; and
how input from outside is made harmless (:mod:`~hvae.files.untrusted`: text quoted on one safe
terminal line, files read only when regular and within a size bound; :mod:`~hvae.files.safe_yaml`:
YAML read as plain data, nesting bounded, repeated keys refused).
"""
