"""A game, a rule and a decider defined outside hvae, registered and played from YAML and from Python.

The game is a separable symmetric 2×2 game ("trust": T, R, P, S = 6, 5, 2, 1), the rule is
conformity (an agent takes the value a strict majority of its neighbours holds) with a state of its
own (how often each agent conformed). Each check computes what it expects itself: payoffs from
T, R, P, S per pair, the conformity update from the network's neighbour lists.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from hvae.agents.deciders import Decider, DecisionRequest, Decisions, KeepsAccounts, KeepsState, register_decider
from hvae.agents.games import GameConfig, decompose_symmetric_2x2
from hvae.agents.plugins import DECIDERS, GAMES, RULES, PluginError, Registry
from hvae.analysis.runfolder import RunFolder
from hvae.scenarios.loader import load_scenario, validate_data
from hvae.scenarios.schema import DynamicsConfig
from hvae.simulation import checkpoint
from hvae.simulation.dynamics import Rule, register_rule
from hvae.simulation.games import PairwiseGame, register_game
from hvae.simulation.menus import Menu
from hvae.simulation.model import HvaeModel
from hvae.simulation.runner import RunInterrupted, resume_run, play_scenario

TRUST = {"T": 6.0, "R": 5.0, "P": 2.0, "S": 1.0}


class TrustConfig(GameConfig):
    kind: Literal["trust"]
    T: float = 6.0
    R: float = 5.0
    P: float = 2.0
    S: float = 1.0


class Trust(PairwiseGame):
    Config = TrustConfig

    def menus(self) -> tuple[Menu, ...]:
        c: Any = self.config
        return (Menu("trust", decompose_symmetric_2x2(c.T, c.R, c.P, c.S)),)


class ConformityConfig(DynamicsConfig):
    rule: Literal["conformity"]


class Conformity(Rule):
    """Take the value a strict majority of one's neighbours holds."""

    Config = ConformityConfig

    def __init__(self, config: DynamicsConfig, n_agents: int) -> None:
        super().__init__(config, n_agents)
        self.conformed = np.zeros(n_agents, dtype=np.int64)  # its own state: how often each agent conformed

    def propose(self, model: HvaeModel) -> tuple[np.ndarray, np.ndarray]:
        theta = model.state.theta
        new, source = theta.copy(), np.full(theta.size, -1)
        for agent in range(theta.size):
            others = model.neighbours.of(agent)
            values, counts = np.unique(theta[others], return_counts=True)
            top = counts.argmax()
            if counts[top] * 2 > others.size and values[top] != theta[agent]:
                new[agent] = values[top]
                source[agent] = int(others[theta[others] == values[top]][0])
        self.conformed += new != theta
        return new, source

    def snapshot(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super().snapshot()
        return meta, {**arrays, "conformed": self.conformed.copy()}

    def restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        super().restore(meta, arrays)
        self.conformed = arrays["conformed"].copy()


class AlwaysFirstConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["always_first"]


class AlwaysFirst(Decider):
    name = kind = "always_first"
    Config = AlwaysFirstConfig

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        return Decisions.from_choices(np.zeros(request.n, dtype=np.int64))


register_game(Trust)
register_rule(Conformity)
register_decider(AlwaysFirst)

SCENARIO_YAML = """
name: outside
seed: 3
rounds: 12
population:
  - {name: givers, count: 10, value: 60, decider: oracle}
  - {name: keepers, count: 10, value: -20, decider: {kind: oracle, beta: 1}}
  - {name: firsts, count: 4, value: 0, decider: always_first}
network: {kind: watts_strogatz, k: 4, p: 0.2}
menus: {kind: trust}
dynamics: {rule: conformity, every: 3}
"""


def scenario_from_yaml(tmp_path, text: str = SCENARIO_YAML):
    path = tmp_path / "outside.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return load_scenario(path)


def test_registered_kinds_are_in_every_registry_listing() -> None:
    assert "trust" in GAMES.kinds() and "conformity" in RULES.kinds() and "always_first" in DECIDERS.kinds()
    # the shipped kinds come first, in their documented order
    assert GAMES.kinds()[:7] == ["slider", "ring", "dictator", "custom", "donation", "prisoners_dilemma", "public_goods"]


def test_a_game_from_outside_pays_what_its_2x2_matrix_says(tmp_path) -> None:
    scenario = scenario_from_yaml(tmp_path, SCENARIO_YAML.replace("dynamics: {rule: conformity, every: 3}", ""))
    model = HvaeModel(scenario)
    matrix = {(0, 0): TRUST["R"], (0, 1): TRUST["S"], (1, 0): TRUST["T"], (1, 1): TRUST["P"]}
    pairs: list[np.ndarray] = []
    original_match = model.match

    def recording_match() -> np.ndarray:
        chosen = original_match()
        pairs.append(chosen.copy())
        return chosen

    model.match = recording_match  # type: ignore[method-assign]
    for _ in range(4):
        before = model.state.cumulative_payoff.copy()
        model.step()
        choice = model.log.decision_rows().to_pandas().query("round == @model.round - 1").set_index("agent_id")["choice"]
        expected = np.zeros(model.n_agents)
        for u, v in pairs[-1].tolist():
            expected[u] += matrix[(int(choice[u]), int(choice[v]))]
            expected[v] += matrix[(int(choice[v]), int(choice[u]))]
        np.testing.assert_allclose(model.state.cumulative_payoff - before, expected)


def test_conformity_takes_the_strict_majority_of_neighbours(tmp_path) -> None:
    model = HvaeModel(scenario_from_yaml(tmp_path))
    for _ in range(2):
        model.step()
    theta = model.state.theta.copy()
    graph = model.graph
    expected = theta.copy()
    for agent in graph.nodes:
        seen = Counter(float(theta[other]) for other in graph.neighbors(agent))
        value, count = seen.most_common(1)[0]
        if count * 2 > graph.degree(agent) and value != theta[agent]:
            expected[agent] = value
    model.step()  # round 3: the rule runs
    np.testing.assert_array_equal(model.state.theta, expected)
    np.testing.assert_array_equal(model.dynamics.conformed, (expected != theta).astype(int))
    assert (expected != theta).any()  # the check saw a change


def test_python_and_yaml_give_the_same_run(tmp_path) -> None:
    import yaml

    from_yaml = scenario_from_yaml(tmp_path)
    from_python = validate_data(yaml.safe_load(SCENARIO_YAML), "python")
    a, b = HvaeModel(from_yaml), HvaeModel(from_python)
    a.run()
    b.run()
    assert a.log.decision_rows().equals(b.log.decision_rows())
    np.testing.assert_array_equal(a.state.theta, b.state.theta)


def test_resumed_run_with_outside_game_and_rule_equals_an_uninterrupted_one(tmp_path) -> None:
    scenario = scenario_from_yaml(tmp_path)
    full = play_scenario(scenario, tmp_path / "full").path

    def stop(model):
        if model.round == 7:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(scenario, tmp_path / "run", on_round=stop)
    state = checkpoint.load(tmp_path / "run")
    assert state is not None and state.meta["dynamics"]["rule"] == "conformity"
    assert "dynamics.conformed" in state.arrays and state.arrays["dynamics.conformed"].sum() > 0
    resume_run(tmp_path / "run")
    for name in ("decisions", "rounds", "agents", "value_changes"):
        pd.testing.assert_frame_equal(RunFolder(full).frame(name), RunFolder(tmp_path / "run").frame(name), obj=name)


def test_unknown_and_clashing_kinds_are_refused(tmp_path) -> None:
    from hvae.scenarios.errors import ScenarioError

    with pytest.raises(ScenarioError, match=r"menus: .*'nope'"):
        scenario_from_yaml(tmp_path, SCENARIO_YAML.replace("kind: trust", "kind: nope"))

    class OtherTrust(Trust):
        Config = type("OtherTrustConfig", (TrustConfig,), {})

    with pytest.raises(PluginError, match="already registered"):
        register_game(OtherTrust)


def test_keeps_state_protocol_is_structural() -> None:
    assert not isinstance(AlwaysFirst(), KeepsState)

    class Counting(AlwaysFirst):
        def snapshot(self) -> Any:
            return {}

        def restore(self, snapshot: Any) -> None:
            pass

    assert isinstance(Counting(), KeepsState)


def test_accounting_is_a_protocol_the_llm_decider_keeps() -> None:
    from hvae.agents.llm.decider import LLMDecider

    assert issubclass(LLMDecider, KeepsAccounts) and not isinstance(AlwaysFirst(), KeepsAccounts)

    class Counting(AlwaysFirst):
        def accounting(self) -> dict[str, int]:
            return {"llm_calls": 1}

    assert isinstance(Counting(), KeepsAccounts)


def fake_distribution(site, module: str, source: str, entry_points: str):
    """A package ``module`` with its dist-info (declaring ``entry_points``) in the folder ``site``."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")
    return site


def test_entry_points_register_a_game_of_another_package(tmp_path, monkeypatch) -> None:
    package = fake_distribution(
        tmp_path / "site",
        "outside_games",
        """
            from typing import Literal
            from hvae.agents.games import GameConfig

            class EchoConfig(GameConfig):
                kind: Literal["echo"]

            class Echo:
                kind = "echo"
                Config = EchoConfig
            """,
        "[hvae.test_games]\necho = outside_games:Echo\n",
    )
    monkeypatch.syspath_prepend(str(package))
    registry = Registry("game", "kind", "hvae.test_games")
    assert registry.kinds() == ["echo"]
    assert registry.plugin("echo").__module__ == "outside_games"


class _Plain:
    kind: ClassVar[str] = "plain"


def test_a_plugin_without_config_is_refused() -> None:
    with pytest.raises(PluginError, match="Config"):
        Registry("game", "kind", "hvae.none").register(_Plain)


def test_a_version_2_checkpoint_resumes_like_a_version_3_one(tmp_path) -> None:
    # version 2 kept the fitness baseline and the recent choices on the model; build one from a
    # version 3 checkpoint by hand (the layout of hvae 0.1) and restore both into fresh models
    scenario = load_scenario("ring_continuous", ["rounds=8", "size=20", "dynamics={rule: influence, every: 3}"])
    model = HvaeModel(scenario)
    for _ in range(4):
        model.step()
    state = checkpoint.capture(model, {})
    v2_meta = {key: value for key, value in state.meta.items() if key != "dynamics"}
    v2_meta.update(version=2, recent_menus=state.meta["dynamics"]["recent_menus"])
    v2_arrays = {key.removeprefix("dynamics."): value for key, value in state.arrays.items()}
    assert "payoff_at_last_update" in v2_arrays and "recent.0.ids" in v2_arrays
    models = []
    for snapshot in (state, checkpoint.Checkpoint(v2_meta, v2_arrays)):
        fresh = HvaeModel(scenario)
        checkpoint.restore(fresh, snapshot)
        fresh.run(4)
        models.append(fresh)
    assert models[0].log.decision_rows().equals(models[1].log.decision_rows())
    np.testing.assert_array_equal(models[0].state.theta, models[1].state.theta)


def test_docs_list_every_shipped_kind_as_the_registries_do() -> None:
    import subprocess
    import sys
    from pathlib import Path

    # a fresh interpreter: this module's own registrations must not appear in the shipped reference
    generated = subprocess.run(
        [sys.executable, "-c", "import sys; from hvae.scenarios.schema import plugin_reference; sys.stdout.write(plugin_reference())"],
        capture_output=True, text=True, check=True,
    ).stdout
    docs = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert docs == generated
    for kind in ("public_goods", "moran", "reciprocal", "llm"):
        assert f"### `{kind}`" in docs


def test_a_package_s_entry_point_game_runs_from_yaml_without_registering(tmp_path) -> None:
    import os
    import subprocess
    import sys

    site = fake_distribution(
        tmp_path / "site",
        "stag_games",
        """
            from typing import Literal
            import numpy as np
            from hvae.agents.games import GameConfig
            from hvae.simulation.games import PairwiseGame
            from hvae.simulation.menus import Menu

            class GiftConfig(GameConfig):
                kind: Literal["gift"]
                gift: float = 7.0

            class Gift(PairwiseGame):
                Config = GiftConfig

                def menus(self):
                    return (Menu("gift", np.array([[0.0, self.config.gift], [1.0, 0.0]])),)
            """,
        "[hvae.games]\ngift = stag_games:Gift\n",
    )
    scenario = tmp_path / "gift.yaml"
    scenario.write_text(SCENARIO_YAML.replace("kind: trust", "kind: gift, gift: 9").replace(
        "dynamics: {rule: conformity, every: 3}", "").replace("always_first", "random"), encoding="utf-8")
    code = (
        "import sys; from hvae.scenarios.loader import load_scenario; from hvae.simulation.model import HvaeModel\n"
        f"m = HvaeModel(load_scenario({str(scenario)!r})); m.run(2)\n"
        "print(m.schedule.kind, m.schedule.menus[0].options.tolist())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "gift" and "[[0.0, 9.0], [1.0, 0.0]]" in done.stdout


def test_the_loader_s_union_tags_come_from_the_schema_and_registries() -> None:
    from hvae.scenarios.schema import union_tags

    # the set scenarios/loader.py kept by hand before the registries (it missed the dynamics rules)
    hand_kept = {
        "oracle", "random", "reciprocal", "fixed", "llm", "complete", "ring_lattice", "watts_strogatz", "barabasi_albert",
        "erdos_renyi", "grid", "file", "slider", "ring", "dictator", "custom", "donation", "prisoners_dilemma",
        "public_goods", "float", "str", "int", "embedded", "openai", "replay",
    }
    tags = union_tags()
    assert hand_kept <= tags and {"trust", "conformity", "always_first", "moran"} <= tags
