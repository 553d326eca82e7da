"""Distilling decisions into a surrogate policy: recovery of known logit choosers, what is dropped, errors.

Decisions are drawn from the surrogate's own choice model (:func:`hvae.agents.surrogate.choice_probabilities`)
with known parameters, so the estimates and their intervals are checked against the truth; the
last test distils a real run against the ``hvae serve-oracle`` server (the whole LLM path).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hvae.agents.svo import PRIMARY_ITEMS
from hvae.agents.surrogate import choice_probabilities, load_policy
from hvae.analysis.distil import DistilError, distil_decisions, distil_run

TRUTH = {"theta": 30.0, "beta": 0.15, "position": 0.8, "reciprocity": 1.5}


def _describe(rows: np.ndarray) -> str:
    return "|".join(f"{int(s)},{int(o)}" for s, o in rows)


def logit_decisions(seed: int, *, agents: int = 30, rounds: int = 48, order: str = "reverse_half", gifts: str = "random",
                    invalid_rate: float = 0.0, truth: dict[str, float] = TRUTH, group: str = "g") -> pd.DataFrame:
    """A decisions table (``decisions.parquet`` columns) of logit choosers with parameters ``truth``.

    ``received`` is drawn so that what an agent got in round r is its ``partner_gave`` in round r+1;
    ``gifts="constant"`` makes every gift the same.
    """
    rng = np.random.default_rng(seed)
    rows = []
    gave = np.zeros(agents)
    for r in range(rounds):
        menu = PRIMARY_ITEMS[r % 6].astype(float)
        k = len(menu)
        flips = rng.random(agents) < 0.5 if order == "reverse_half" else np.zeros(agents, bool)
        first = np.where(flips, k - 1, 0) if order != "none" else np.full(agents, -1)
        p = choice_probabilities(np.full(agents, truth["theta"]), np.full(agents, truth["beta"]),
                                 np.full(agents, truth["position"] if order != "none" else 0.0),
                                 np.full(agents, truth["reciprocity"]), menu, first, gave)
        choice = (p.cumsum(axis=1) > rng.random((agents, 1))).argmax(axis=1)
        invalid = rng.random(agents) < invalid_rate
        choice = np.where(invalid, rng.integers(0, k, agents), choice)
        nxt = rng.random(agents) if gifts == "random" else np.full(agents, 0.5)
        others = menu[:, 1]
        for a in range(agents):
            shown = np.arange(k)[::-1] if flips[a] else np.arange(k)
            rows.append({
                "round": r, "agent_id": a, "partner_id": -1, "n_partners": 1, "group": group, "value_angle": 45.0,
                "menu_id": f"slider{r % 6 + 1}", "options_shown": _describe(menu[shown]),
                "shown_order": ",".join(map(str, shown)) if order != "none" else None,
                "choice": int(choice[a]), "valid": not invalid[a], "pair_skipped": False,
                "received": others.min() + nxt[a] * (others.max() - others.min()),
            })
        gave = nxt if gifts == "random" else np.full(agents, 0.5)
    return pd.DataFrame(rows)


def _covers(unit, truth: dict[str, float]) -> dict[str, bool]:
    return {name: unit.intervals[name][0] <= value <= unit.intervals[name][1] for name, value in truth.items()}


def test_recovers_every_parameter_of_a_known_logit_chooser_within_its_interval():
    decisions = logit_decisions(seed=12, invalid_rate=0.1)
    unit = distil_decisions(decisions).units["g"]
    assert unit.dropped == {}
    assert _covers(unit, {**TRUTH, "invalid_rate": 0.1}) == dict.fromkeys([*TRUTH, "invalid_rate"], True), (unit, TRUTH)
    assert unit.n_decisions == int(decisions["valid"].sum()) and unit.invalid_rate == pytest.approx(1 - decisions["valid"].mean())
    # the interval widths shrink with more data (an interval that ignored the data could not)
    small = distil_decisions(logit_decisions(seed=11, agents=12, rounds=24)).units["g"]
    for name in TRUTH:
        assert np.ptp(unit.intervals[name]) < np.ptp(small.intervals[name]), name


@pytest.mark.slow
def test_intervals_cover_the_truth_in_most_seeds():
    truth = {**TRUTH, "invalid_rate": 0.1}
    hits = np.array([
        list(_covers(distil_decisions(logit_decisions(seed=s, agents=20, rounds=30, invalid_rate=0.1)).units["g"], truth).values())
        for s in range(40)
    ])
    rate = hits.mean(axis=0)
    # 95% intervals: at 40 seeds a rate below 0.85 has probability < 1% under nominal coverage
    assert (rate >= 0.85).all(), dict(zip(truth, rate))


def test_terms_the_data_cannot_identify_are_dropped_and_reported():
    no_order = distil_decisions(logit_decisions(seed=1, order="none")).units["g"]
    assert no_order.position == 0.0 and "no display order" in no_order.dropped["position"]
    fixed = distil_decisions(logit_decisions(seed=1, order="fixed")).units["g"]
    assert fixed.position == 0.0 and "never varied" in fixed.dropped["position"]
    constant = distil_decisions(logit_decisions(seed=1, gifts="constant")).units["g"]
    assert constant.reciprocity == 0.0 and "does not vary" in constant.dropped["reciprocity"]
    for unit in (no_order, fixed, constant):
        assert set(unit.dropped).isdisjoint(unit.intervals)
    exact = logit_decisions(seed=1, truth={**TRUTH, "beta": 1e4, "position": 0.0, "reciprocity": 0.0})
    separated = distil_decisions(exact).units["g"]
    assert set(separated.dropped) == {"position", "reciprocity"}
    assert "perfectly separated" in separated.notes["beta"] and "beta" not in separated.intervals


def test_a_value_blind_chooser_has_no_angle_interval():
    blind = distil_decisions(logit_decisions(seed=2, truth={"theta": 0.0, "beta": 0.0, "position": 2.0, "reciprocity": 0.0})).units["g"]
    assert "theta" not in blind.intervals and "value-blind" in blind.notes["theta"]
    assert blind.intervals["position"][0] <= 2.0 <= blind.intervals["position"][1]


def test_units_by_value_and_by_agent_and_restricting_agents():
    a = logit_decisions(seed=3, agents=10, group="a")
    b = logit_decisions(seed=4, agents=10, group="b", truth={**TRUTH, "theta": -20.0}).assign(
        agent_id=lambda d: d["agent_id"] + 100, value_angle=-45.0)
    both = pd.concat([a, b], ignore_index=True)
    by_value = distil_decisions(both, by="value")
    assert sorted(by_value.units) == ["-45", "45"]
    assert by_value.units["-45"].intervals["theta"][0] <= -20.0 <= by_value.units["-45"].intervals["theta"][1]
    by_group = distil_decisions(both, groups=["b"])
    assert list(by_group.units) == ["b"] and by_group.units["b"].n_decisions == len(b)
    by_agent = distil_decisions(both, by="agent", agents=[0, 1, 100])
    assert sorted(by_agent.units, key=int) == ["0", "1", "100"]
    assert "model-based" in by_agent.units["0"].notes["intervals"]


def test_bad_inputs_are_one_line_errors():
    decisions = logit_decisions(seed=5, agents=2, rounds=6)
    with pytest.raises(DistilError, match="no decisions"):
        distil_decisions(decisions.iloc[:0])
    with pytest.raises(DistilError, match="no group 'x'.*groups: g"):
        distil_decisions(decisions, groups=["x"])
    with pytest.raises(DistilError, match="group 'g' has 12 valid decisions; distilling needs at least 20"):
        distil_decisions(decisions)
    with pytest.raises(DistilError, match="none of the given agents"):
        distil_decisions(decisions, agents=[99])


@pytest.mark.slow
@pytest.mark.llm
def test_distil_recovers_the_serve_oracle_model_from_a_real_run(tmp_path, cli):
    """The whole path: LLM agents on the real OpenAI-compatible oracle server, the run folder, ``hvae distil``."""
    from conftest import make_scenario

    from hvae.agents.llm.oracle_server import OracleModel, OracleServer
    from hvae.simulation.runner import play_scenario

    beta, bias = 0.3, 1.0
    with OracleServer(OracleModel(beta=beta, position_bias=bias, invalid_rate=0.1, seed=4)) as server:
        llm = {"kind": "llm", "backend": "srv", "reasks": 0}
        scenario = make_scenario(
            rounds=24, seed=5, population=[{"name": "llm", "count": 16, "value": "prosocial", "decider": llm}],
            network={"kind": "complete"}, matching="random", menus={"kind": "slider"},
            backends={"srv": {"kind": "openai", "base_url": server.base_url, "model": "hvae-oracle",
                              "structured": "json_schema", "temperature": 0}},
            cache={"enabled": False},
        )
        run_dir = play_scenario(scenario, tmp_path / "run").path
    result = cli("distil", str(run_dir), "--out", str(tmp_path / "policy.yaml"), "--no-reciprocity")
    assert result.returncode == 0, result.stderr
    policy = load_policy(tmp_path / "policy.yaml")
    unit = policy.units["llm"]
    assert _covers(unit, {"theta": 45.0, "beta": beta, "position": bias}) == {"theta": True, "beta": True, "position": True}, unit
    assert unit.intervals["invalid_rate"][0] <= 0.1 <= unit.intervals["invalid_rate"][1]
    assert policy.provenance["models"] == {"llm": "llm: srv hvae-oracle"} and policy.provenance["kind"] == "run"
    assert policy.units == distil_run(run_dir, features=("utility", "position")).units
    # the server has no reciprocity: fitted anyway (partners' gifts vary under random matching), ρ's interval holds 0
    with_rho = distil_run(run_dir).units["llm"]
    assert "reciprocity" not in with_rho.dropped
    assert with_rho.intervals["reciprocity"][0] <= 0.0 <= with_rho.intervals["reciprocity"][1]


@pytest.mark.slow
@pytest.mark.llm
def test_distil_reads_an_evaluate_folder(tmp_path, cli):
    """``hvae evaluate`` against the oracle server, then ``hvae distil --by value`` on its folder."""
    import yaml

    from hvae.agents.llm.oracle_server import OracleModel, OracleServer

    with OracleServer(OracleModel(beta=0.3, position_bias=1.0, seed=2)) as server:
        config = {"name": "ev", "rounds": 1, "population": [{"name": "x", "count": 1, "value": "prosocial", "decider": "oracle"}],
                  "backends": {"srv": {"kind": "openai", "base_url": server.base_url, "model": "hvae-oracle",
                                       "structured": "json_schema", "temperature": 0}},
                  "cache": {"enabled": False}}
        (tmp_path / "backends.yaml").write_text(yaml.safe_dump(config))
        result = cli("evaluate", "--scenario", str(tmp_path / "backends.yaml"), "--backend", "srv", "--repeats", "12",
                     "--values", "prosocial,individualistic", "--goal-prompting", "on", "--out", str(tmp_path / "ev"))
        assert result.returncode == 0, result.stderr
    result = cli("distil", str(tmp_path / "ev"), "--out", str(tmp_path / "p.yaml"), "--by", "value")
    assert result.returncode == 0, result.stderr
    policy = load_policy(tmp_path / "p.yaml")
    assert policy.provenance["kind"] == "evaluation" and sorted(policy.units) == ["0", "45"]
    for key, unit in policy.units.items():
        assert unit.dropped.keys() == {"reciprocity"}  # no partners in a questionnaire
        assert unit.n_decisions == 12 * 6
        assert unit.intervals["position"][0] <= 1.0 <= unit.intervals["position"][1], (key, unit)
        assert unit.intervals["beta"][0] <= 0.3 <= unit.intervals["beta"][1], (key, unit)


@pytest.mark.slow
def test_distil_command_errors(tmp_path, cli):
    from conftest import assert_user_error

    assert_user_error(cli("distil", str(tmp_path / "nope"), "--out", str(tmp_path / "p.yaml")), "no such run or evaluation folder")
    assert_user_error(cli("distil", str(tmp_path), "--out", str(tmp_path / "p.yaml")), "not an hvae run folder")
    assert_user_error(cli("distil", str(tmp_path), "--out", str(tmp_path / "no" / "p.yaml")), "no folder")
    assert not (tmp_path / "p.yaml").exists()


class _Recorder:
    """A uniform chooser (built on demand) that records ``History.generosity[:, 0]`` at every decision."""

    def __new__(cls, skip_every: int = 0):
        from hvae.agents.deciders import NO_CHOICE, Decider, Decisions

        class Recorder(Decider):
            name = "recorder"
            description = "uniform random; records the last generosity each agent received"

            def __init__(self) -> None:
                self.seen: dict[tuple[int, int], float] = {}

            def decide(self, request, rng):
                history = request.history
                for i, agent in enumerate(request.agent_ids.tolist()):
                    self.seen[(request.round, agent)] = float(history.generosity[i, 0]) if history.length else float("nan")
                choice = rng.integers(0, len(request.options), request.n)
                if skip_every:  # some agents give no choice now and then: their partners' games are void
                    choice = np.where((request.agent_ids + request.round) % skip_every == 0, NO_CHOICE, choice)
                return Decisions(choice=choice, valid=choice >= 0, metadata={})

        return Recorder()


@pytest.mark.parametrize(("matching", "skip_every"), [("random", 0), ("all_edges", 0), ("random", 5), ("all_edges", 7)])
def test_partner_gave_is_what_the_decider_saw_in_its_history(matching, skip_every):
    """distil's reciprocity input, rebuilt from the decisions table, equals the History the agents decided with."""
    import hvae
    from hvae.analysis.distil import partner_gave

    recorder = _Recorder(skip_every)
    network = {"kind": "ring_lattice", "k": 4} if matching == "all_edges" else {"kind": "complete"}
    result = hvae.Simulation.build(name="gave", rounds=10, seed=2, matching=matching, network=network,
                                   population=[{"name": "a", "count": 8, "value": 45, "decider": "random"}],
                                   deciders={"a": recorder}).run()
    decisions = result.decisions
    got = partner_gave(decisions, result.run.menus())
    seen = np.array([recorder.seen[(r, a)] for r, a in zip(decisions["round"], decisions["agent_id"])])
    np.testing.assert_allclose(got, np.nan_to_num(seen), atol=1e-12)  # unknown (no game yet): 0
    assert (got > 0).any() and (got[decisions["round"].to_numpy() == 0] == 0).all()
