"""The dashboard without a browser: controls → scenario, the session's figures, the CLI's errors.

The page itself is tested in a real browser in ``test_dashboard_browser.py``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from conftest import assert_user_error, make_scenario

from hvae.analysis.rationality import decision_scores
from hvae.dashboard import figures
from hvae.dashboard.session import (
    DASHBOARD_MAX_AGENTS,
    Controls,
    DashboardSession,
    build_scenario,
    default_redraw_every,
    parse_control,
)
from hvae.scenarios.errors import ScenarioError
from hvae.simulation.model import HvaeModel
from hvae.simulation.static_tables import menus_table


def test_unchanged_controls_give_back_the_scenario() -> None:
    base = make_scenario()
    rebuilt = build_scenario(base, Controls.of(base))
    assert rebuilt.model_dump() == base.model_dump()


def test_controls_change_shares_network_rule_and_menus() -> None:
    base = make_scenario()
    controls = Controls.of(base)
    changed = replace(
        controls.with_rule("influence"),
        shares={**controls.shares, "alt": 0.0, "com": 0.5},  # alt left out; com twice the others
        size=20, network="barabasi_albert", menus="ring", seed=11,
    )
    scenario = build_scenario(base, changed)
    assert scenario.group_counts() == {"pro": 5, "ind": 5, "com": 10}
    assert scenario.network.kind == "barabasi_albert" and scenario.menus.kind == "ring"
    assert scenario.dynamics.rule == "influence" and scenario.dynamics.strength == 1.0  # the rule's default step
    assert scenario.seed == 11
    # the scenario's own network parameters stay when its family stays
    kept = build_scenario(base, replace(controls, size=24))
    assert kept.network.model_dump() == base.network.model_dump()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"size": 3}, "gets 0 agents at size 3"),
        ({"shares": {"alt": 0.0, "pro": 0.0, "ind": 0.0, "com": 0.0}}, "every group has share 0"),
        ({"shares": {"alt": float("nan"), "pro": 1.0, "ind": 1.0, "com": 1.0}}, "share of group 'alt' must be a number"),
        ({"strength": -1.0}, "dynamics.strength: input should be greater than or equal to 0"),
        ({"every": 0}, "dynamics.every"),
    ],
)
def test_bad_controls_are_one_line_messages(change, fragment) -> None:
    base = make_scenario()
    with pytest.raises(ScenarioError) as error:
        build_scenario(base, replace(Controls.of(base), **change))
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("strength", "nan", "update strength: 'nan' is not a finite number"),  # killed the tab ("Too many renders")
        ("strength", "abc", "update strength: 'abc' is not a number"),  # was silently ignored
        ("strength", "1e400", "not a finite number"),
        ("size", "2.5", "population size: '2.5' is not a whole number"),
        ("every", "", "is not a number"),
        ("seed", "9" * 5000, "seed: '9999999999"),  # an OverflowError before; the excerpt stays short
    ],
)
def test_typed_fields_that_are_not_numbers_are_one_line(name: str, text: str, fragment: str) -> None:
    with pytest.raises(ScenarioError) as error:
        parse_control(name, text)
    message = str(error.value)
    assert fragment in message and "\n" not in message and len(message) < 200


def test_typed_fields_read_numbers() -> None:
    assert parse_control("size", " 16 ") == 16 and isinstance(parse_control("size", "16"), int)
    assert parse_control("strength", "0.25") == 0.25 and parse_control("seed", "0") == 0


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"size": 20_000}, f"population size must be between 1 and {DASHBOARD_MAX_AGENTS:,}"),  # 20,000 agents were built
        ({"seed": -1}, "seed: input should be greater than or equal to 0"),
        ({"seed": 10**30}, "seed: input should be less than or equal to"),
        ({"strength": 1e300}, "dynamics.strength: input should be less than or equal to"),
        ({"every": 10**12}, "dynamics.every: input should be less than or equal to"),
    ],
)
def test_controls_go_through_the_scenario_bounds(change, fragment) -> None:
    base = make_scenario()
    with pytest.raises(ScenarioError) as error:
        build_scenario(base, replace(Controls.of(base), **change))
    assert fragment in str(error.value) and "\n" not in str(error.value)


def test_session_vr_equals_the_analysis_estimator_on_the_same_decisions() -> None:
    """Running sums per group, drained round by round, equal one batch call of the estimator."""
    population = [
        {"name": "orc", "count": 6, "value": "prosocial", "decider": "oracle"},
        {"name": "rnd", "count": 6, "value": 30, "decider": "random"},
        {"name": "rec", "count": 4, "value": "individualistic", "decider": "reciprocal"},
    ]
    scenario = make_scenario(population=population, rounds=8, menus={"kind": "ring", "items": 12, "options": 3})
    session = DashboardSession(scenario)
    view = session.advance(8)
    assert view.round == 8 and session.finished

    reference = HvaeModel(scenario)
    reference.run(8)
    decisions = reference.log.decision_rows().to_pandas()
    scores = decision_scores(decisions, menus_table(reference).to_pandas())
    scored = pd.concat([decisions[["group"]], scores], axis=1).dropna(subset=["decision_vr"])
    expected = scored.groupby("group", observed=True)[["decision_vr", "chance_vr", "ceiling_vr"]].mean()
    table = view.vr_by_group.set_index("group")
    for group in ("orc", "rnd", "rec"):
        for column in ("decision_vr", "chance_vr", "ceiling_vr"):
            assert table.loc[group, column] == pytest.approx(expected.loc[group, column], abs=1e-12)
    assert table.loc["orc", "decision_vr"] == pytest.approx(1.0)
    assert table.loc["rnd", "decision_vr"] < 0.9  # a random chooser is not at the ceiling
    assert table["n"].sum() == scores["decision_vr"].notna().sum()


def test_session_figures_follow_the_rounds() -> None:
    scenario = make_scenario(dynamics={"rule": "imitation", "every": 2, "strength": 50.0}, rounds=10)
    session = DashboardSession(scenario)
    assert session.view.round == 0 and session.view.mean_payoff.empty and session.view.latest.empty
    first = session.view
    view = session.advance(10)
    assert first.round == 0  # an old view is a snapshot: the page may still be drawing it
    assert list(view.shares.index) == list(range(11))
    assert np.allclose(view.shares.sum(axis=1), 1.0)
    now = pd.Series(session.model.value_categories).value_counts(normalize=True)
    assert view.shares.iloc[-1][now.index].to_numpy() == pytest.approx(now.to_numpy())
    assert list(view.mean_payoff.index) == list(range(1, 11))
    assert set(view.latest["round"]) == {9} and len(view.latest) > 0
    assert np.array_equal(view.theta, session.model.state.theta)


def test_advance_stops_when_told_and_at_the_scenarios_rounds() -> None:
    session = DashboardSession(make_scenario(rounds=5))
    calls = []
    session.advance(4, keep_going=lambda: len(calls) < 2, on_round=calls.append)
    assert session.round == 2 and calls == [1, 2]
    session.advance(10)
    assert session.round == 5 and session.finished


def test_redraw_interval_grows_with_the_population() -> None:
    assert default_redraw_every(32) == 1
    assert default_redraw_every(200) == 1
    assert default_redraw_every(201) == 2
    assert default_redraw_every(1000) == 5


def test_figures_draw_from_a_view() -> None:
    session = DashboardSession(make_scenario(rounds=3))
    session.advance(2)
    view = session.view
    layout = figures.network_layout(view.n_agents, view.edges)
    assert layout.shape == (view.n_agents, 2)
    network = figures.network_figure(view, layout)
    colours = network.axes[0].collections[0].get_facecolors()
    assert len(colours) == view.n_agents  # one dot per agent, coloured by its value
    for draw in (figures.shares_figure, figures.payoff_figure, figures.vr_figure):
        assert draw(view).axes[0].has_data()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nosuch_scenario"], "nosuch_scenario: no such file"),
        (["oracle_population", "--set", "rounds=0"], "rounds: input should be greater than 0"),
        (["oracle_population", "--set", "network.k=40"], "network"),
    ],
)
def test_cli_bad_scenario_is_one_line_before_any_server(cli, args, fragment) -> None:
    assert_user_error(cli("dashboard", *args, "--port", "1"), fragment)


def test_without_the_dashboard_extra_the_command_says_what_to_install(monkeypatch, capsys) -> None:
    import hvae.cli.dashboard as command
    from hvae.cli.main import main

    monkeypatch.setattr(command, "solara_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        main(["dashboard", "oracle_population"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip() == (
        'hvae: error: the dashboard needs its optional dependencies: pip install "hvae[dashboard]" '
        '(in a checkout: pip install -e ".[dashboard]")'
    )


def test_page_fields_show_one_line_and_never_hold_nan() -> None:
    """The page itself (rendered without a browser): typed text goes through parse_control and the schema."""
    solara = pytest.importorskip("solara")
    vuetify = pytest.importorskip("ipyvuetify")
    from hvae.dashboard import app

    base = make_scenario()
    app.start(base)
    try:
        _, rendered = solara.render(app.ParametersCard(), handle_error=False)

        def enter(label: str, text: str) -> str | None:
            field = rendered.find(vuetify.TextField, label=label).widget
            field.v_model = text
            field.fire_event("keyup.enter", None)
            return app.message.value

        strength = app.controls.value.strength
        assert "update strength: 'nan' is not a finite number" in enter("update strength", "nan")
        assert app.controls.value.strength == strength  # nan never reached the controls (it re-rendered forever)
        assert "update strength: 'abc' is not a number" in enter("update strength", "abc")  # was silently ignored
        assert f"between 1 and {DASHBOARD_MAX_AGENTS:,}" in enter("population size", "20000")
        assert enter("population size", "16") is None
        assert "seed: input should be greater than or equal to 0" in enter("seed", "-1")
        assert enter("seed", "5") is None and app.controls.value.seed == 5  # a good value clears the message
        assert enter("update strength", "0.5") is None and app.controls.value.strength == 0.5
    finally:
        app.session.value.close()
        app.session.value = app.view.value = app.controls.value = app.message.value = None
