"""The position reference: the VR of a value-blind chooser that always takes the option shown first.

Checked by hand on a tiny table, and against a real value-blind "model" (a replay backend that
always answers "A"): its measured VR must equal the reference exactly, in runs and in evaluations.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hvae.analysis.rationality import decision_scores, first_shown


def test_position_vr_by_hand() -> None:
    menus = pd.DataFrame({"menu_id": ["m"] * 3, "option": [0, 1, 2], "self": [10.0, 5.0, 0.0], "other": [0.0, 5.0, 10.0]})
    decisions = pd.DataFrame({
        "menu_id": ["m"] * 4, "value_angle": [90.0, 90.0, 0.0, 90.0], "choice": [1, 1, 1, 1],
        "valid": [True, True, True, False], "shown_order": ["2,1,0", "0,1,2", None, "2,1,0"],
    })
    scores = decision_scores(decisions, menus)
    # altruist: normalised utilities (0, 0.5, 1); option 2 shown first → 1, option 0 first → 0;
    # no recorded display → NaN; an invalid reply is not behaviour → NaN
    assert scores["position_vr"].tolist()[:2] == [1.0, 0.0]
    assert np.isnan(scores["position_vr"].iloc[2]) and np.isnan(scores["position_vr"].iloc[3])
    assert first_shown(decisions).tolist() == [2, 0, -1, 2]


@pytest.mark.slow
def test_a_value_blind_model_scores_exactly_the_position_reference(tmp_path) -> None:
    from conftest import make_scenario

    from hvae.analysis.runfolder import RunFolder
    from hvae.analysis.summary import group_summary
    from hvae.simulation.runner import play_scenario

    llm = {"kind": "llm", "backend": "always_a"}
    scenario = make_scenario(
        rounds=12, seed=3, population=[{"name": n, "count": 3, "value": n, "decider": llm} for n in ("altruistic", "competitive")]
        + [{"name": "oracle", "count": 2, "value": "prosocial", "decider": "oracle"}],
        network={"kind": "complete"}, matching="random", menus={"kind": "slider"},
        backends={"always_a": {"kind": "replay", "replies": ["A"] * 40}}, cache={"enabled": False},
    )
    run = RunFolder(play_scenario(scenario, tmp_path / "run").path)
    groups = group_summary(run).set_index("group")
    for name in ("altruistic", "competitive"):
        row = groups.loc[name]
        assert row["decision_vr"] == pytest.approx(row["position_vr"], abs=1e-12)
        assert row["slider_vr"] == pytest.approx(row["position_slider_vr"], abs=1e-12)
        assert row["position_vr"] != pytest.approx(row["chance_vr"], abs=1e-3)  # a reference of its own
    assert np.isnan(groups.loc["oracle", "position_vr"])  # rule deciders are shown no display

    # the report's value-rationality figure draws the same reference (its data: Analysis.group_vr)
    from hvae.analysis.dataset import Analysis

    figure_data = Analysis.of(run).group_vr.set_index("group")
    for name in ("altruistic", "competitive"):
        assert figure_data.loc[name, "position_vr"] == pytest.approx(groups.loc[name, "position_vr"], abs=1e-12)
        assert figure_data.loc[name, "position_slider_vr"] == pytest.approx(groups.loc[name, "position_slider_vr"], abs=1e-12)
    assert np.isnan(figure_data.loc["oracle", "position_vr"])


@pytest.mark.slow
def test_evaluation_reports_the_position_reference(tmp_path) -> None:
    from hvae.agents.llm.backends import ReplayBackend
    from hvae.experiments.questionnaire import Evaluation, EvaluationPlan

    plan = EvaluationPlan(agents=["llm", "random"], values=["altruistic", "individualistic"], goal_prompting=[False],
                          repeats=6, backend="always_a", backends={"always_a": ReplayBackend(kind="replay", replies=["A"] * 40)},
                          cache_enabled=False)
    path = Evaluation(plan).run(tmp_path / "eval", figures=False)
    table = pd.read_parquet(path / "evaluation_summary.parquet")
    llm = table[table["agent"] == "llm"]
    np.testing.assert_allclose(llm["decision_vr"], llm["position_vr"], atol=1e-12)
    np.testing.assert_allclose(llm["slider_vr"], llm["position_slider_vr"], atol=1e-12)
    assert table.loc[table["agent"] == "random", "position_vr"].isna().all()


@pytest.mark.parametrize("dtype", [object, "str", "category"])
def test_first_shown_parses_each_order_like_the_row_by_row_rule(dtype) -> None:
    # missing, empty and NaN orders mean "not recorded"; each distinct order is parsed once, so the
    # result must still be the plain per-row rule whatever the column's dtype
    orders = ["2,1,0", None, "", "0,1,2", np.nan, "10,2", "2,1,0", "1"] * 3
    decisions = pd.DataFrame({"shown_order": pd.Series(orders, dtype=dtype)})
    direct = [int(o.split(",", 1)[0]) if isinstance(o, str) and o else -1 for o in orders]
    assert first_shown(decisions).tolist() == direct == [2, -1, -1, 0, -1, 10, 2, 1] * 3
    assert first_shown(pd.DataFrame({"choice": [0, 1]})).tolist() == [-1, -1]


@pytest.mark.parametrize("dtype", [object, "category"])
def test_menu_codes_name_each_row_s_menu(dtype) -> None:
    from hvae.analysis.rationality import menu_codes

    ids = pd.Series(["slider2", "ring1", "slider2", "slider10", "ring1"], dtype=dtype)
    codes, names = menu_codes(pd.DataFrame({"menu_id": ids}))
    assert [names[c] for c in codes] == ids.astype(str).tolist()
    assert len(names) == 3
