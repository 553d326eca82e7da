"""Invasion analysis: initial vs final shares and time to fixation across runs."""

from __future__ import annotations

import pytest
from test_dynamics import keeper_at_hub, star_scenario

from hvae.analysis.invasion import invasion_plot, invasion_table
from hvae.scenarios.loader import load_scenario
from hvae.simulation.runner import play_scenario


def test_fixation_on_a_star_is_found(tmp_path) -> None:
    seed = keeper_at_hub(tmp_path, "imitation", 1000.0).seed
    scenario = star_scenario(tmp_path, "imitation", 1000.0).model_copy(update={"seed": seed, "rounds": 3})
    run = play_scenario(scenario, tmp_path / "run").path
    table = invasion_table([run]).set_index("category")
    assert table.loc["competitive", "initial_share"] == pytest.approx(1 / 6)
    assert table.loc["competitive", "final_share"] == 1.0
    assert table.loc["altruistic", "final_share"] == 0.0
    assert (table["fixed_category"] == "competitive").all() and (table["fixation_round"] == 1).all()


def test_shares_and_figure_across_seeds(tmp_path) -> None:
    runs = []
    for seed in (1, 2, 3):
        scenario = load_scenario("sweep_base", ["rounds=12", "dynamics={rule: moran, every: 3, strength: 0.5}"], seed=seed)
        runs.append(play_scenario(scenario, tmp_path / f"s{seed}").path)
    table = invasion_table(runs)
    assert table["run"].nunique() == 3
    for _, part in table.groupby("run"):
        assert part["initial_share"].sum() == pytest.approx(1.0)
        assert part["final_share"].sum() == pytest.approx(1.0)
    paths = invasion_plot(table, tmp_path / "figures")
    assert all(p.stat().st_size > 5_000 for p in paths)


@pytest.mark.slow
def test_a_sweep_with_dynamics_writes_the_invasion_table(cli, tmp_path) -> None:
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(
        "name: dyn\nscenario: sweep_base\nseeds: [1, 2]\n"
        "overrides: {rounds: 9, dynamics: {rule: imitation, every: 3, strength: 5.0}}\n"
    )
    result = cli("sweep", str(sweep), "--workers", "1", "--out", str(tmp_path / "out"), timeout=240)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_parquet(tmp_path / "out" / "invasion.parquet")
    assert table["run"].nunique() == 2
    assert (tmp_path / "out" / "figures" / "invasion.png").stat().st_size > 5_000
