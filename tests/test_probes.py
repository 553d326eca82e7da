"""The validity probes: disguised items keep the trade-offs, the wording and placement reach the model,
and a model that follows its value (the oracle server) shows no wording, placement or contamination
effect while its dictator choices follow its value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hvae.agents import svo
from hvae.analysis.rationality import normalised_utilities
from hvae.analysis.validity import dictator_reference
from hvae.experiments.probes import DISGUISED_ORDER, disguised_schedule


def test_disguised_items_keep_every_values_trade_off_but_not_the_numbers() -> None:
    schedule = disguised_schedule()
    assert [m.slider_item for m in schedule.menus] == list(DISGUISED_ORDER) != sorted(DISGUISED_ORDER)
    thetas = np.linspace(-90, 90, 37)
    for menu in schedule.menus:
        original = svo.PRIMARY_ITEMS[menu.slider_item - 1].astype(float)
        assert not np.isin(menu.options, original).all()  # the published numbers are not shown
        a = normalised_utilities(thetas, menu.options)
        b = normalised_utilities(thetas, original)
        defined = ~np.isnan(b).any(axis=1)
        np.testing.assert_allclose(a[defined], b[defined], atol=0.02)  # rounding to cents only
        assert (np.nanargmax(np.nan_to_num(a[defined], nan=-1), axis=1) == np.nanargmax(np.nan_to_num(b[defined], nan=-1), axis=1)).all()


def test_human_dictator_reference_is_shipped_with_sources() -> None:
    ref = dictator_reference().set_index("source")
    engel, mei = ref.loc["Engel 2011"], ref.loc["Mei et al. 2024 (MobLab)"]
    assert (engel["n"], engel["mean_given_share"], engel["share_give_nothing"], engel["share_give_half"]) == (21193, 0.271, 0.366, 0.169)
    assert (mei["n"], mei["mean_given_share"], mei["share_give_nothing"], mei["share_give_half"]) == (13232, 0.2586, 0.261, 0.194)
    assert "doi:" in engel["citation"] and "doi:" in mei["citation"]


@pytest.mark.slow
def test_validity_probes_against_a_model_that_follows_its_value(tmp_path) -> None:
    from hvae.agents.llm.backends import OpenAIBackend
    from hvae.agents.llm.oracle_server import OracleModel, OracleServer
    from hvae.agents.llm.wordings import PARAPHRASES
    from hvae.experiments.questionnaire import Evaluation, EvaluationPlan

    with OracleServer(OracleModel(beta=10.0)) as server:
        backend = OpenAIBackend(kind="openai", base_url=server.base_url, model="hvae-oracle", structured="json_schema")
        plan = EvaluationPlan(agents=["llm"], values=["altruistic", "individualistic", "competitive"], goal_prompting=[True],
                              repeats=4, backend="o", backends={"o": backend}, cache_enabled=False,
                              probes=["paraphrases", "placement", "disguised", "dictator"])
        path = Evaluation(plan).run(tmp_path / "eval", figures=False)
    validity = pd.read_csv(path / "validity.csv").set_index("value")
    overall = validity.loc["all"]
    assert overall["n_wordings"] == 4
    assert abs(overall["wording_spread"]) < 0.02 and abs(overall["placement_effect"]) < 0.02
    assert abs(overall["contamination"]) < 0.02 and abs(overall["contamination_slider"]) < 0.05
    assert overall["vr_disguised"] > 0.97
    dictator = pd.read_csv(path / "dictator.csv")
    given = dictator[dictator["kind"] == "model"].set_index("value")["mean_given_share"]
    assert given["altruistic"] == 1.0 and given["individualistic"] == 0.0 and given["competitive"] == 0.0
    assert (dictator["kind"] == "human reference").sum() == 2
    # what the model was sent: each paraphrase, and the value in the system message for the 'system' cells
    transcripts = [json.loads(line) for line in (path / "transcripts.jsonl").read_text().splitlines()]
    sent = "\n".join(m["content"] for t in transcripts for m in t["messages"] if isinstance(m["content"], str))
    for text in PARAPHRASES["competitive"]:
        assert text in sent
    system_first = [t for t in transcripts if t["phase"] == "value" and t["messages"][0]["role"] == "system"]
    assert len(system_first) == 3 * 4 and all("social value orientation" in t["messages"][0]["content"] for t in system_first)
    # the standard tables and the leaderboard hold the standard cells only
    summary = pd.read_parquet(path / "evaluation_summary.parquet")
    assert set(summary["probe"]) == {"standard", "wording1", "wording2", "wording3", "system", "disguised"}
    assert len(pd.read_csv(next((path / "models").glob("*.csv")))) == 3
