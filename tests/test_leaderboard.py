"""The leaderboard: the overall score, the display-adjusted position test, and ``hvae evaluate`` over
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
    assert board.loc["oracle_server:hvae-oracle", "overall_score"] > 0.9
    assert abs(board.loc["always_a:replay", "overall_score"] - board.loc["first option", "overall_score"]) < 0.2
    assert board.loc["always_a:replay", "first_share"] == 1.0 and board.loc["always_a:replay", "position_p_min"] < 0.01
    assert board.loc["ceiling", "overall_score"] == 1.0 and board.loc["chance", "overall_score"] == 0.0
    per_model = pd.read_csv(out / "models" / "oracle_server_hvae-oracle.csv").set_index("value")
    for value, theta in (("altruistic", 90.0), ("prosocial", 45.0), ("individualistic", 0.0), ("competitive", -45.0)):
        assert per_model.loc[value, "revealed_ci_low"] <= theta <= per_model.loc[value, "revealed_ci_high"]
    assert "| 1 | oracle_server:hvae-oracle |" in (out / "leaderboard.md").read_text()


def test_evaluate_unknown_backend_in_list_is_one_line(cli) -> None:
    from conftest import assert_user_error

    assert_user_error(cli("evaluate", "--backend", "embedded,nope", "--repeats", "1"), "--backend 'nope' is not defined")
