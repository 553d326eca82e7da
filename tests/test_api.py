"""The Python API (``import hvae``): version, names, building, running in memory or to a folder, stepping.

Checked against computations of their own: the version against pyproject.toml, a Python-built
scenario against the YAML it mirrors, Mesa's DataCollector against the run's own ``rounds`` table,
memory against the folder, and the README's example by running it.
"""

from __future__ import annotations

import doctest
import re
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import hvae
import hvae.api
from hvae.scenarios.loader import ScenarioError, load_scenario

ROOT = Path(__file__).resolve().parents[1]


def small(**settings):
    return hvae.Simulation.from_yaml("oracle_population", [f"population.{i}.count=2" for i in range(4)], **settings)


def test_version_comes_from_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project.get("dynamic", [])
    assert hvae.__version__ == project["version"]


def test_public_names_exist_and_are_documented() -> None:
    assert "__version__" in hvae.__all__ and "Simulation" in hvae.__all__
    for name in hvae.__all__:
        value = getattr(hvae, name)
        if name != "__version__":
            assert value.__doc__ and value.__doc__.strip(), name


def test_from_yaml_applies_settings_and_overrides() -> None:
    sim = small(rounds=5, seed=11, network={"kind": "complete"})
    assert (sim.scenario.rounds, sim.scenario.seed, sim.scenario.network.kind) == (5, 11, "complete")
    assert sim.scenario.group_counts() == {"altruists": 2, "prosocials": 2, "individualists": 2, "competitors": 2}
    with pytest.raises(ScenarioError, match="rounds"):
        small(rounds="many")


def test_build_from_objects_equals_the_yaml_it_mirrors(tmp_path) -> None:
    (tmp_path / "s.yaml").write_text(
        "name: mirror\nseed: 4\nrounds: 6\npopulation:\n"
        "  - {name: a, count: 3, value: altruistic, decider: oracle}\n"
        "  - {name: c, count: 3, value: -45, decider: random}\n"
        "network: {kind: ring_lattice, k: 2}\nmenus: {kind: ring, items: 8}\n"
        "dynamics: {rule: imitation, every: 2}\n"
    )
    from_file = hvae.Simulation.from_yaml(tmp_path / "s.yaml")
    from hvae.scenarios.schema import ImitationConfig, RingLatticeNetwork

    built = hvae.Simulation.build(
        name="mirror", seed=4, rounds=6,
        population=[hvae.Group(name="a", count=3, value="altruistic", decider="oracle"),
                    {"name": "c", "count": 3, "value": -45, "decider": "random"}],
        network=RingLatticeNetwork(kind="ring_lattice", k=2), menus={"kind": "ring", "items": 8},
        dynamics=ImitationConfig(rule="imitation", every=2),  # each rule has its own config class
    )
    assert built.scenario.model_dump() == from_file.scenario.model_dump()
    pd.testing.assert_frame_equal(built.run().decisions, from_file.run().decisions, check_exact=True)
    with pytest.raises(ScenarioError, match=r"<python>.*population"):
        hvae.Simulation.build(name="bad", rounds=1, population=[])


def test_run_in_memory_equals_run_to_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    sim = small(rounds=6)
    in_memory = sim.run()
    assert list(tmp_path.iterdir()) == []  # in memory: no folder at all
    on_disk = sim.run(out=tmp_path / "run")
    assert (tmp_path / "run" / "summary.json").is_file() and on_disk.status == "complete"
    for name in ("decisions", "rounds", "agents"):
        a, b = getattr(in_memory, name), getattr(on_disk, name)
        pd.testing.assert_frame_equal(a.drop(columns=["latency_s"], errors="ignore"), b.drop(columns=["latency_s"], errors="ignore"))
    pd.testing.assert_frame_equal(in_memory.groups(), pd.read_parquet(tmp_path / "run" / "groups.parquet"))
    pd.testing.assert_frame_equal(in_memory.value_shares(), on_disk.value_shares())
    loaded = hvae.load_run(tmp_path / "run")
    pd.testing.assert_frame_equal(loaded.groups(), on_disk.groups())


def test_value_shares_match_a_count_of_the_agents() -> None:
    res = small(rounds=2).run()
    shares = res.value_shares()
    agents = res.agents  # no dynamics: every agent holds its value all run
    expected = agents["value_category"].astype(str).value_counts(normalize=True)
    for category, share in expected.items():
        assert np.allclose(shares[category].to_numpy(), share)


def test_stepping_by_hand_collects_mesa_data_that_match_the_run() -> None:
    sim = small(rounds=4)
    model = sim.model
    assert model is sim.model  # kept between calls
    for _ in range(4):
        model.step()
    frame = model.datacollector.get_model_vars_dataframe()
    assert frame["round"].tolist() == [1, 2, 3, 4]
    res = sim.run()  # a fresh model: the same seed plays the same rounds
    welfare = res.rounds.query("grouping == 'all'").sort_values("round")["welfare"].to_numpy()
    assert np.allclose(frame["total_payoff"].to_numpy(), np.cumsum(welfare))
    agents = model.datacollector.get_agent_vars_dataframe()
    assert len(agents) == 4 * model.n_agents
    last = agents.xs(agents.index.get_level_values(0).max(), level=0).set_index("agent_id")
    final = res.agents.set_index("agent_id")
    assert np.allclose(last["cumulative_payoff"].sort_index(), final["cumulative_payoff"].sort_index())
    assert {a.value_category for a in model.agents} == {"altruistic", "prosocial", "individualistic", "competitive"}
    shares = frame.filter(like="share_").iloc[-1]
    assert np.isclose(shares.sum(), 1.0) and np.isclose(shares["share_prosocial"], 0.25)
    assert res.model is not None and len(res.model.datacollector.get_model_vars_dataframe()) == 4


def test_plots_return_figures_and_say_what_exists() -> None:
    res = small(rounds=6).run()
    fig = res.plot.value_shares()
    assert isinstance(fig, Figure) and fig.axes
    assert isinstance(res.plot.value_rationality(), Figure)
    assert "welfare" in dir(res.plot)
    with pytest.raises(AttributeError, match="no figure 'pie'.*value_shares"):
        res.plot.pie()


def test_several_seeds_give_means_with_intervals(tmp_path) -> None:
    res = small(rounds=3).run_seeds([1, 2, 3])
    assert [r.summary["seed"] for r in res.runs] == [1, 2, 3]
    assert sorted(res.decisions["seed"].unique()) == [1, 2, 3]
    table = res.per_round("all")
    per_seed = [r.rounds().query("grouping == 'all'").set_index("round")["welfare"] for r in res.runs]
    expected = pd.concat(per_seed, axis=1).mean(axis=1)
    assert np.allclose(table.set_index("round")["welfare"].sort_index(), expected.sort_index())
    assert (table["welfare_low"] <= table["welfare"]).all() and (table["welfare"] <= table["welfare_high"]).all()
    assert isinstance(res.plot.welfare(), Figure)
    on_disk = small(rounds=3).run_seeds([1, 2], out=tmp_path / "seeds")
    assert sorted(p.name for p in (tmp_path / "seeds").iterdir()) == ["seed-1", "seed-2"]
    assert len(on_disk.groups()) == 2 * 4


def test_report_from_memory(tmp_path) -> None:
    path = small(rounds=6).run().report(tmp_path / "r.html")
    html = path.read_text()
    assert "in memory: oracle_population" in html and "<h2>Figures</h2>" in html


def test_scenarios_lists_the_runnable_shipped_ones() -> None:
    from hvae.scenarios.loader import shipped_scenarios

    names = hvae.scenarios()
    assert "oracle_population" in names and names["oracle_population"]
    for name in names:
        assert load_scenario(shipped_scenarios()[name]).name  # each validates as a scenario
    assert "sweep_example" in shipped_scenarios() and "sweep_example" not in names


def test_each_run_function_has_a_name_that_says_what_it_does() -> None:
    from hvae.experiments import runs
    from hvae.simulation import runner

    assert not hasattr(runner, "run_scenario") and not hasattr(runs, "run_scenario")
    assert callable(runner.play_scenario) and callable(runs.run_to_folder) and callable(runs.run_in_memory)


@pytest.mark.parametrize("module", ["hvae.api", "hvae.analysis.rundata"])
def test_docstring_examples_run(module: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0, result


def test_readme_python_example_runs(tmp_path, monkeypatch) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md (Python API)", "exec"), namespace)  # noqa: S102 - the README's own example
    assert isinstance(namespace["res"], hvae.Results) and isinstance(namespace["fig"], Figure)
