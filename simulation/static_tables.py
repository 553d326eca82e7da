"""The tables a run folder gets once, not per round: its agents, its menus and its network.

``agents`` is written when the run starts and again when it ends (with the running totals and
values after dynamics); ``menus`` and ``network`` never change during a run. Their columns are
listed in docs/outputs.md::

    agents_table(model).column_names[:3]   # ['agent_id', 'group', 'decider']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from hvae.agents.svo import CATEGORY_ORDER, category_codes_of

if TYPE_CHECKING:
    from hvae.simulation.model import HvaeModel


def agents_table(model: HvaeModel) -> pa.Table:
    """One row per agent: identity, value, network position and running totals."""
    state = model.state

    def spread(codes: np.ndarray, names: list[str]) -> pa.Array:  # one text per code, as a plain string column
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(names, pa.string())).cast(pa.string())

    def per_group(names: list[str]) -> pa.Array:
        return spread(state.group_code, names)

    return pa.table(
        {
            "agent_id": np.arange(model.n_agents, dtype=np.int32),
            "group": per_group(model.group_names),
            "decider": per_group(model.decider_kinds),
            "value_spec": per_group([group.value_spec.label() for group in model.scenario.population]),
            "value_angle": state.theta.copy(),
            "value_category": spread(category_codes_of(state.theta) % (len(CATEGORY_ORDER) + 1), [*CATEGORY_ORDER, "None"]),
            "initial_value_angle": model.initial_theta.copy(),
            "n_value_changes": model.n_value_changes.copy(),
            "degree": model.degree.astype(np.int32),
            "cumulative_payoff": state.cumulative_payoff.copy(),
            "n_decisions": state.n_decisions.copy(),
            "n_idle": state.n_idle.copy(),
            "n_invalid": state.n_invalid.copy(),
        }
    )


def menus_table(model: HvaeModel) -> pa.Table:
    rows: dict[str, list] = {"menu_id": [], "position_in_cycle": [], "option": [], "self": [], "other": [], "slider_item": []}
    for position, menu in enumerate(model.schedule.menus):
        for option, (s, o) in enumerate(menu.options):
            rows["menu_id"].append(menu.menu_id)
            rows["position_in_cycle"].append(position)
            rows["option"].append(option)
            rows["self"].append(float(s))
            rows["other"].append(float(o))
            rows["slider_item"].append(menu.slider_item)
    return pa.table(rows, schema=pa.schema([
        ("menu_id", pa.string()), ("position_in_cycle", pa.int32()), ("option", pa.int32()),
        ("self", pa.float64()), ("other", pa.float64()), ("slider_item", pa.int32()),
    ]))


def network_table(model: HvaeModel) -> pa.Table:
    return pa.table({"u": model.edges[:, 0].astype(np.int32), "v": model.edges[:, 1].astype(np.int32)})
