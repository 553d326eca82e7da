"""The validity probes of ``hvae evaluate``: does a measured value rationality mean what it says?

Each probe adds cells to an evaluation (LLM agents only; each with the evaluation's values and
``repeats``, goal prompting on when the plan has it), answered beside the standard cells and told
apart by the ``probe`` column of every table:

``paraphrases`` (cells ``wording1`` … ``wording3``)
    the value stated in three other wordings written from the category definitions
    (:mod:`hvae.agents.llm.wordings`); only for category values (angles have one wording). The
    spread of VR across the four wordings says how much the *wording* moves the result.
``placement`` (cell ``system``)
    the value stated in the system message, the first user turn only asking for the description,
    instead of the value in the first user turn (the paper's pipeline).
``disguised`` (cell ``disguised``)
    the six primary slider items with every amount moved by an affine map ``a + c·x`` of its own
    (the same ``a`` and ``c > 0`` for self and other, so every value ranks the options exactly as
    on the original item and the normalised decision VR is unchanged), asked in another item order:
    a memorised answer key for the published slider does not help. Choices map one-to-one to the
    original options, so the slider angle is defined too. VR on original minus VR on disguised items
    is a **contamination indicator** (near 0 for a model that follows its value; positive when it
    does better on the items it may have seen).
``dictator`` (cell ``dictator``)
    one decision: split 100 coins with the other participant, in steps of 10 (11 options).
    Reported as the mean share given, the share giving nothing and the share giving half, per value,
    beside human reference figures shipped with their sources
    (``analysis/dictator_reference.csv``: Engel 2011, Mei et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hvae.agents.llm.wordings import N_WORDINGS, category_wording
from hvae.agents.svo import PRIMARY_ITEMS
from hvae.simulation.menus import Menu, MenuSchedule, dictator_schedule

#: (shift a, scale c) per primary item 1..6 and the order the disguised items are asked in.
DISGUISE = ((20.0, 0.6), (5.0, 1.2), (30.0, 0.8), (10.0, 1.1), (25.0, 0.7), (15.0, 0.9))
DISGUISED_ORDER = (4, 1, 6, 2, 5, 3)
DICTATOR_ENDOWMENT, DICTATOR_STEP = 100.0, 10.0


def disguised_schedule() -> MenuSchedule:
    """The six primary items, each moved by its own ``a + c·x`` and asked in :data:`DISGUISED_ORDER`."""
    menus = []
    for item in DISGUISED_ORDER:
        shift, scale = DISGUISE[item - 1]
        options = np.round(shift + scale * PRIMARY_ITEMS[item - 1].astype(float), 2)
        menus.append(Menu(f"disguised{item}", options, slider_item=item))
    return MenuSchedule("disguised", tuple(menus))


@dataclass(frozen=True)
class ProbeVariant:
    """One probe cell: its name, how the value is worded and placed, and the items asked."""

    name: str
    wording_variant: int = 0
    placement: str = "user"
    schedule: MenuSchedule | None = None

    def wording(self, value_name: str | None) -> str | None:
        """The paraphrased wording (None: the standard one)."""
        if self.wording_variant == 0 or value_name is None:
            return None
        return category_wording(value_name, self.wording_variant)


def probe_variants(probes: list[str], value_name: str | None, secondary: bool = False) -> list[ProbeVariant]:
    """The probe cells for one value (paraphrases only for category values)."""
    from hvae.simulation.menus import slider_schedule

    standard = slider_schedule(secondary=secondary)
    variants = []
    if "paraphrases" in probes and value_name is not None:
        variants += [ProbeVariant(f"wording{v}", v, schedule=standard) for v in range(1, N_WORDINGS)]
    if "placement" in probes:
        variants.append(ProbeVariant("system", placement="system", schedule=standard))
    if "disguised" in probes:
        variants.append(ProbeVariant("disguised", schedule=disguised_schedule()))
    if "dictator" in probes:
        variants.append(ProbeVariant("dictator", schedule=dictator_schedule(DICTATOR_ENDOWMENT, DICTATOR_STEP)))
    return variants


def write_validity(folder: Path, summary: pd.DataFrame, answers: pd.DataFrame, figures: bool = True) -> None:
    """``validity.csv``/``.parquet``, ``probes.csv``, ``dictator.csv`` (and figures) in an evaluation folder."""
    from hvae.analysis.validity import dictator_table, probe_table, validity_figure, validity_table

    folder = Path(folder)
    probes = probe_table(summary)
    probes.to_csv(folder / "probes.csv", index=False)
    table = validity_table(probes)
    table.to_csv(folder / "validity.csv", index=False)
    table.to_parquet(folder / "validity.parquet", index=False)
    dictator = dictator_table(answers[answers["probe"] == "dictator"], DICTATOR_ENDOWMENT)
    dictator.to_csv(folder / "dictator.csv", index=False)
    if figures:
        validity_figure(probes, dictator, folder / "figures" / "validity.png")
