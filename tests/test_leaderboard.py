"""The leaderboard: the position-free score with bootstrap intervals, the display-adjusted position test, and ``hvae evaluate`` over
several backends in one call (a model with values, the oracle server, against a value-blind one)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hvae.analysis.leaderboard import model_slug, overall_score
from hvae.analysis.position import display_adjusted_bias


def test_overall_score_by_hand() -> None:
    table = pd.DataFrame({"decision_vr": [1.0, 0.75, np.nan], "chance_vr": [0.5, 0.5, 0.5], "invalid_rate": [0.0, 0.5, 1.0]})
    # cells: 1 × 1; 0.5 × 0.5; no valid answer = chance (0) → mean 0.4166…
    assert overall_score(table) == pytest.approx((1.0 + 0.25 + 0.0) / 3)


def test_display_adjusted_bias_separates_position_from_value() -> None:
    rng = np.random.default_rng(0)
    n = 400
    items = rng.integers(0, 6, n)
    first = np.where(rng.random(n) < 0.5, 0, 8)  # counterbalanced: option 0 or option 8 shown first
    # a value-rational chooser: its option depends on the item, not on the display
    best = np.where(items % 2 == 0, 0, 8)
    rational = display_adjusted_bias(items, best, first)
    assert rational["first_share"] == pytest.approx(rational["first_expected"]) and rational["p_value"] > 0.5
    # a value-blind chooser: always the option shown first
    blind = display_adjusted_bias(items, first, first)
    assert blind["first_share"] == 1.0 and blind["first_expected"] < 0.6 and blind["p_value"] < 1e-10
    assert np.isnan(display_adjusted_bias([], [], [])["p_value"])


def test_model_slug() -> None:
    assert model_slug("oracle_server:hvae-oracle") == "oracle_server_hvae-oracle"
    assert model_slug("a/b c") == "a_b_c"


@pytest.mark.slow
def test_evaluate_several_backends_writes_the_leaderboard(cli, tmp_path) -> None:
    from hvae.agents.llm.oracle_server import OracleModel, OracleServer

    with OracleServer(OracleModel(beta=5.0)) as server:
        scenario = tmp_path / "models.yaml"
        scenario.write_text(
            "name: models\npopulation:\n  - {name: a, count: 1, value: 0, decider: oracle}\nbackends:\n"
            f"  oracle_server: {{kind: openai, base_url: '{server.base_url}', model: hvae-oracle, structured: json_schema}}\n"
            "  always_a: {kind: replay, replies: ['I hold it.', A, A, A, A, A, A, A, A]}\n"
        )
        out = tmp_path / "eval"
        result = cli("evaluate", "--scenario", str(scenario), "--backend", "oracle_server,always_a", "--repeats", "4",
                     "--goal-prompting", "off", "--no-cache", "--out", str(out), env={"COLUMNS": "100"})
    assert result.returncode == 0, result.stderr
    printed = [line for line in result.stdout.splitlines() if str(out) not in line]  # folder paths can be long
    assert max(len(line) for line in printed) <= 100, "\n".join(line for line in printed if len(line) > 100)
    for name in ("leaderboard.csv", "leaderboard.parquet", "leaderboard.md", "leaderboard.html",
                 "models/oracle_server_hvae-oracle.csv", "models/always_a_replay.csv",
                 "figures/model_oracle_server_hvae-oracle.png", "figures/model_always_a_replay.png"):
        assert (out / name).is_file(), name
    board = pd.read_parquet(out / "leaderboard.parquet").set_index("model")
    assert list(board.index[:2]) == ["oracle_server:hvae-oracle", "always_a:replay"]  # ranked by score
    assert board.loc["oracle_server:hvae-oracle", "score"] > 0.9
    assert abs(board.loc["always_a:replay", "score"] - board.loc["first option", "score"]) < 0.2
    assert board.loc["always_a:replay", "first_share"] == 1.0 and board.loc["always_a:replay", "position_p_min"] < 0.01
    assert board.loc["ceiling", "score"] == 1.0 and board.loc["chance", "score"] == 0.0
    per_model = pd.read_csv(out / "models" / "oracle_server_hvae-oracle.csv").set_index("value")
    for value, theta in (("altruistic", 90.0), ("prosocial", 45.0), ("individualistic", 0.0), ("competitive", -45.0)):
        assert per_model.loc[value, "revealed_ci_low"] <= theta <= per_model.loc[value, "revealed_ci_high"]
    assert "| 1 | oracle_server:hvae-oracle |" in (out / "leaderboard.md").read_text()


def test_evaluate_unknown_backend_in_list_is_one_line(cli) -> None:
    from conftest import assert_user_error

    assert_user_error(cli("evaluate", "--backend", "embedded,nope", "--repeats", "1"), "--backend 'nope' is not defined")


SLIDER_MENUS = {f"slider{i + 1}": m for i, m in enumerate(
    np.array(__import__("hvae.agents.svo", fromlist=["PRIMARY_ITEMS"]).PRIMARY_ITEMS, dtype=float))}
VALUES = {"altruistic": 90.0, "prosocial": 45.0, "individualistic": 0.0, "competitive": -45.0}


def simulated_model(name: str, beta: float, bias: float, repeats: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Answers and summary rows of a logit chooser with a first-position bonus, displays reversed every other repeat."""
    rng = np.random.default_rng(seed)
    rows, cells = [], []
    for value, theta in VALUES.items():
        vrs, chances = [], []
        for r in range(repeats):
            for menu_id, menu in SLIDER_MENUS.items():
                first = 0 if r % 2 == 0 else 8
                u = np.cos(np.radians(theta)) * menu[:, 0] + np.sin(np.radians(theta)) * menu[:, 1]
                logits = beta * u
                logits[first] += bias
                p = np.exp(logits - logits.max())
                choice = int(rng.choice(9, p=p / p.sum()))
                order = list(range(9)) if first == 0 else list(range(8, -1, -1))
                rows.append({"model": name, "agent": "llm", "value": value, "value_angle": theta, "goal_prompting": False,
                             "repeat": r, "menu_id": menu_id, "choice": choice, "valid": True,
                             "shown_order": ",".join(map(str, order))})
                if np.ptp(u) > 1e-9:  # decision VR is undefined where every option is equal
                    normalised = (u - u.min()) / np.ptp(u)
                    vrs.append(normalised[choice])
                    chances.append(normalised.mean())
        cells.append({"model": name, "agent": "llm", "value": value, "value_angle": theta, "goal_prompting": False,
                      "repeats": repeats, "decision_vr": np.mean(vrs), "chance_vr": np.mean(chances), "invalid_rate": 0.0,
                      "slider_vr": np.nan, "chance_slider_vr": np.nan, "ceiling_slider_vr": np.nan, "angle_mean": np.nan,
                      "attainable_angle": np.nan})
    return pd.DataFrame(cells), pd.DataFrame(rows)


def test_position_bias_does_not_buy_score() -> None:
    # issue 19 item 2: with 120 repeats, β = 0.05 with a first-position bonus 2 had the higher raw
    # score (0.391 vs 0.355 without the bonus); ranked on the position-free fit they are level
    from hvae.analysis.leaderboard import leaderboard, model_table

    models = {"sharp": (2.0, 0.0), "biased": (0.05, 2.0), "plain": (0.05, 0.0), "blind": (0.0, 5.0)}
    tables = {}
    for seed, (name, (beta, bias)) in enumerate(models.items()):
        summary, answers = simulated_model(name, beta, bias, 120, seed)
        tables[name] = model_table(summary, answers, SLIDER_MENUS, resamples=60, seed=seed)
    board = leaderboard(tables).set_index("model")
    assert board.loc["biased", "raw_score"] > board.loc["plain", "raw_score"] + 0.01  # position buys raw score
    assert list(board.index[:2]) == ["sharp", board.index[1]] and board.index[3] == "blind"
    biased, plain = board.loc["biased"], board.loc["plain"]
    assert abs(biased["score"] - plain["score"]) < 0.05
    assert biased["score_low"] <= plain["score_high"] and plain["score_low"] <= biased["score_high"]
    # the two β = 0.05 models are adjacent and their intervals overlap: flagged
    assert bool(board.loc[board.index[1], "tied_with_next"])
    assert board.loc["sharp", "score"] > 0.9 and board.loc["sharp", "score_low"] <= board.loc["sharp", "score"]
    assert board.loc["blind", "score_low"] <= 0.02 and abs(board.loc["blind", "score"]) < 0.03
    assert board.loc["biased", "fit_position"] == pytest.approx(2.0, abs=0.3)
    assert board.loc["blind", "fit_position"] > 3


def test_position_free_vr_is_the_fit_prediction_at_no_bias() -> None:
    # computed here: the expected normalised utility under softmax(β̂·U) on the same answers
    from hvae.agents.revealed import fit_at_angle
    from hvae.analysis.leaderboard import position_free_scores

    summary, answers = simulated_model("m", 0.1, 1.0, 40, 3)
    part = answers[answers["value"] == "prosocial"].assign(
        first=lambda f: f["shown_order"].str.split(",").str[0].astype(int))
    scores, beta, b, pf_vr = position_free_scores(part, SLIDER_MENUS, 45.0, 20, np.random.default_rng(0))
    options = [SLIDER_MENUS[m] for m in part["menu_id"]]
    fit_beta, fit_b, _ = fit_at_angle(options, part["choice"].to_numpy(), part["first"].to_numpy(), 45.0)
    assert beta == pytest.approx(fit_beta[0]) and b == pytest.approx(fit_b[0])
    expected, chance = [], []
    for menu in options:
        u = (menu[:, 0] + menu[:, 1]) / np.sqrt(2)
        normalised = (u - u.min()) / (u.max() - u.min())
        normalised[u >= u.max() - 1e-9] = 1.0
        p = np.exp(beta * (u - u.max()))
        expected.append((p / p.sum()) @ normalised)
        chance.append(normalised.mean())
    assert pf_vr == pytest.approx(np.mean(expected))
    assert scores[0] == pytest.approx((np.mean(expected) - np.mean(chance)) / (1 - np.mean(chance)))
    assert scores.shape == (21,) and np.ptp(scores[1:]) > 0
