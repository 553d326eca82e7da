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
