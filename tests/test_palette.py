"""One palette: every figure takes the value categories' colours from hvae.analysis.palette."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from hvae.agents.svo import CATEGORY_ORDER
from hvae.analysis import evaluation, invasion, plots
from hvae.analysis.palette import CATEGORY_COLORS, category_color

ROOT = Path(__file__).resolve().parents[1]


def test_no_other_module_defines_category_colours() -> None:
    pattern = re.compile(r"[\"'](altruistic|prosocial|individualistic|competitive)[\"']\s*:\s*[\"']#[0-9A-Fa-f]{3,6}")
    defining = sorted(
        str(path.relative_to(ROOT)) for path in ROOT.glob("*/**/*.py")
        if ".venv" not in path.parts and "build" not in path.parts and pattern.search(path.read_text(encoding="utf-8"))
    )
    assert defining == ["analysis/palette.py"]


def test_figures_use_the_category_palette() -> None:
    assert plots.CATEGORY_COLORS is CATEGORY_COLORS and invasion.CATEGORY_COLORS is CATEGORY_COLORS
    assert set(CATEGORY_COLORS) == set(CATEGORY_ORDER)


def test_evaluation_ring_draws_each_target_in_its_category_colour(tmp_path, monkeypatch) -> None:
    from matplotlib.colors import to_hex

    targets = {"altruistic": 90.0, "prosocial": 45.0, "individualistic": 0.0, "competitive": -45.0}
    repeats = pd.DataFrame(
        [{"agent": "oracle", "model": "oracle", "value_angle": angle, "angle": angle, "goal_prompting": None}
         for angle in targets.values()]
    )
    captured = []
    original = evaluation._save

    def keep(fig, out_dir, name):
        captured.append(fig)
        return original(fig, out_dir, name)

    monkeypatch.setattr(evaluation, "_save", keep)
    evaluation.ring_plot(repeats, tmp_path)
    [fig] = captured
    spokes = [line for line in fig.axes[0].get_lines() if line.get_linestyle() == "--" and len(line.get_xdata()) == 2]
    assert sorted(to_hex(line.get_color()) for line in spokes) == sorted(category_color(a) for a in targets.values())


def test_groups_of_one_category_each_wear_its_colour_else_the_qualitative_palette() -> None:
    from hvae.analysis.palette import group_colors, series_colors

    one_each = {"altruists": [90.0, 70.0], "prosocials": [45.0], "selfish": [0.0, 5.0], "rivals": [-45.0]}
    assert group_colors(one_each) == {
        "altruists": CATEGORY_COLORS["altruistic"], "prosocials": CATEGORY_COLORS["prosocial"],
        "selfish": CATEGORY_COLORS["individualistic"], "rivals": CATEGORY_COLORS["competitive"],
    }
    shared = {"llm_altruistic": [90.0], "oracle_altruistic": [90.0], "rivals": [-45.0]}  # two groups, one category
    mixed = {"spread": [90.0, 0.0], "rivals": [-45.0]}  # one group over two categories
    for groups in (shared, mixed):
        assert group_colors(groups) == series_colors(list(groups))


def test_report_and_dashboard_colour_oracle_population_groups_by_category(tmp_path) -> None:
    from conftest import make_scenario

    from hvae.analysis.dataset import Analysis
    from hvae.dashboard.session import DashboardSession
    from hvae.simulation.runner import play_scenario

    population = [{"name": f"{v}s", "count": 3, "value": v, "decider": "oracle"} for v in CATEGORY_ORDER]
    scenario = make_scenario(population=population, rounds=2, dynamics={"rule": "imitation", "every": 1, "strength": 50.0})
    expected = {f"{v}s": CATEGORY_COLORS[v] for v in CATEGORY_ORDER}
    analysis = Analysis.of(play_scenario(scenario, tmp_path / "run").path)
    assert analysis.colors([f"{v}s" for v in CATEGORY_ORDER]) == expected
    assert DashboardSession(scenario).advance(2).group_colors == expected  # by initial values, after imitation too
