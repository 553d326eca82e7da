"""Surrogate policies shipped with the example scenarios (``hvae distil`` output, YAML).

``surrogate_million.yaml`` is the policy of ``scenarios/surrogate_million.yaml``: one unit per SVO
value, fitted from the ``validity_demo`` scenario played against ``hvae serve-oracle`` (a logit
chooser with known β, position bias and invalid rate). docs/scale.md gives the commands that made it.
"""
