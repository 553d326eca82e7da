"""The oracle server: a model with values behind the OpenAI API, and the LLM path recovering them.

The end-to-end tests run the whole LLM pipeline (value prompting, counterbalanced menus, JSON
decisions, parsing, the run folder, VR and revealed angle) against the server and check that the
measurement recovers what was injected: the value (VR near 1, the revealed interval covering the
assigned angle), the position bias (the first-position share matches what the logit model predicts
for the orders actually shown) and the invalid rate.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import numpy as np
import pytest

from hvae.agents import svo
from hvae.agents.llm import prompts
from hvae.agents.llm.oracle_server import (
    INVALID_TEXT,
    OracleModel,
    OracleRequestError,
    OracleServer,
    find_menu,
    find_value,
    start_hint,
    talk_reply,
)
from hvae.agents.llm.parsing import parse_reply
from hvae.agents.llm.wordings import N_WORDINGS, PARAPHRASES, category_wording

MENU = [(85.0, 85.0), (85.0, 76.0), (85.0, 68.0)]


def _decision_body(value_text: str, options=MENU, **extra) -> dict:
    return {
        "model": "hvae-oracle",
        "seed": 7,
        "messages": [
            {"role": "user", "content": value_text},
            {"role": "assistant", "content": "I hold a value."},
            {"role": "user", "content": prompts.decision_prompt(0, list(options), "my goal", [], False)},
        ],
        **extra,
    }


@pytest.mark.parametrize("name", list(svo.CATEGORY_ANGLES))
@pytest.mark.parametrize("variant", range(N_WORDINGS))
def test_every_shipped_category_wording_is_read(name: str, variant: int) -> None:
    text = f"You hold the following social value orientation — {category_wording(name, variant)}. Describe..."
    assert find_value([{"role": "user", "content": text}]) == svo.CATEGORY_ANGLES[name]


@pytest.mark.parametrize("theta", [-90.0, -30.0, 0.0, 10.0, 30.0, 70.0, 90.0])
def test_angle_wordings_are_read(theta: float) -> None:
    assert find_value([{"role": "system", "content": prompts.value_prompt(theta)}]) == theta


def test_paraphrases_are_distinct_and_name_no_other_category() -> None:
    texts = [t for texts in PARAPHRASES.values() for t in texts]
    assert len(set(texts)) == len(texts) == 12
    for name, variants in PARAPHRASES.items():
        for text in variants:
            others = [other for other in svo.CATEGORY_ANGLES if other != name]
            assert not any(other in text for other in others), text


def test_no_value_or_two_values_is_an_error_never_a_guess() -> None:
    with pytest.raises(OracleRequestError, match="no value found"):
        find_value([{"role": "user", "content": "Pick one: A: 1, 2"}])
    with pytest.raises(OracleRequestError, match="several values"):
        find_value([{"role": "system", "content": prompts.value_prompt(90.0)}, {"role": "user", "content": prompts.value_prompt(0.0)}])
    # a later user turn may quote another agent's value (talk, visible values): not the model's own
    later = [{"role": "user", "content": prompts.value_prompt(90.0)}, {"role": "user", "content": prompts.value_prompt(0.0)}]
    assert find_value(later) == 90.0
    # the assistant's own words are not where a value is read
    with pytest.raises(OracleRequestError, match="no value found"):
        find_value([{"role": "assistant", "content": prompts.value_prompt(90.0)}])


def test_menu_is_read_in_display_order_and_history_lines_are_not_options() -> None:
    history = [{"round": 0, "given": 50.0, "kept": 85.0}]
    text = prompts.decision_prompt(3, [(50.0, 100.0), (54.5, 98.0), (59.0, 96.0)], "g", history, True)
    assert find_menu([text]).tolist() == [[50.0, 100.0], [54.5, 98.0], [59.0, 96.0]]
    with pytest.raises(OracleRequestError, match="no user message shows a menu"):
        find_menu(["Your reply could not be used: it named no option letter."])


def test_choice_probabilities_are_the_logit_model() -> None:
    options = np.array(MENU)
    # beta 0: only the position bonus matters; P(first) = e^b / (e^b + k - 1)
    p = OracleModel(beta=0.0, position_bias=math.log(4)).choice_probabilities(0.0, options)
    assert p[0] == pytest.approx(4 / 6) and p[1] == pytest.approx(1 / 6)
    # altruist (90°): utilities are the other's amounts
    p = OracleModel(beta=0.5).choice_probabilities(90.0, options)
    expected = np.exp(0.5 * options[:, 1]) / np.exp(0.5 * options[:, 1]).sum()
    np.testing.assert_allclose(p, expected)


def test_replies_are_reproducible_and_vary_between_calls() -> None:
    model = OracleModel(beta=0.0)  # uniform chooser: replies vary with the call
    text = prompts.value_prompt(45.0)
    body = _decision_body(text, [(float(i), 0.0) for i in range(9)])
    assert model.reply(body) == model.reply(json.loads(json.dumps(body)))
    replies = {model.reply({**body, "seed": seed}) for seed in range(40)}
    assert len(replies) > 4  # different per-call seeds draw different options
    assert OracleModel(beta=0.0, seed=1).reply(body) in {chr(65 + i) for i in range(9)}


def test_decision_reply_formats_and_invalid_replies_parse_as_hvae_expects() -> None:
    text = prompts.value_prompt(-45.0)
    schema_format = {"type": "json_schema", "json_schema": {"name": "decision", "schema": {"properties": {"choice": {}}}}}
    reply = OracleModel(beta=5.0).reply(_decision_body(text, response_format=schema_format))
    parsed = parse_reply(reply, 3)
    assert parsed.valid and parsed.position == 2  # competitive: the largest lead (85 vs 68)
    assert OracleModel(beta=5.0).reply(_decision_body(text)) == "C"
    invalid = OracleModel(invalid_rate=1.0).reply(_decision_body(text))
    assert invalid == INVALID_TEXT and not parse_reply(invalid, 3).valid


def test_talk_turns_restate_the_value_in_one_function() -> None:
    body = {"messages": [{"role": "user", "content": prompts.value_prompt(90.0)}]}
    description = OracleModel().reply(body)
    assert description == talk_reply(90.0, prompts.value_prompt(90.0)) and "altruistic" in description
    body["messages"] += [{"role": "assistant", "content": description}, {"role": "user", "content": prompts.goal_prompt()}]
    assert OracleModel().reply(body).startswith("My goal is")


def _post(url: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_http_server_speaks_the_openai_api_on_loopback() -> None:
    with OracleServer(OracleModel(beta=5.0)) as server:
        assert server.base_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert json.loads(response.read())["data"][0]["id"] == "hvae-oracle"
        status, reply = _post(f"{server.base_url}/chat/completions", _decision_body(prompts.value_prompt(90.0)))
        assert status == 200 and reply["choices"][0]["message"]["content"] == "A"
        assert reply["usage"]["total_tokens"] > 0
        status, error = _post(f"{server.base_url}/chat/completions", {"messages": [{"role": "user", "content": "A: 1, 2\nB: 2, 1"}]})
        assert status == 400 and "no value found" in error["error"]["message"]
        assert server.counts == {"ok": 1, "error": 1}


def test_start_hint_names_the_port_of_a_local_oracle_backend() -> None:
    from hvae.agents.llm.backends import OpenAIBackend

    local = OpenAIBackend(kind="openai", base_url="http://127.0.0.1:9123/v1", model="hvae-oracle")
    assert start_hint({"o": local}) == "start the oracle server first: hvae serve-oracle --port 9123"
    other = OpenAIBackend(kind="openai", base_url="http://127.0.0.1:9123/v1", model="qwen")
    assert start_hint({"o": other}) is None


# ------------------------------------------------------------------------------ end to end


def _run_against(server: OracleServer, tmp_path, name: str):
    from conftest import make_scenario

    from hvae.analysis.runfolder import RunFolder
    from hvae.analysis.summary import group_summary
    from hvae.simulation.runner import play_scenario

    llm = {"kind": "llm", "backend": "oracle_server", "reasks": 0}
    scenario = make_scenario(
        rounds=12, seed=5,
        population=[{"name": n, "count": 3, "value": n, "decider": llm} for n in svo.CATEGORY_ANGLES],
        network={"kind": "complete"}, matching="random", menus={"kind": "slider"},
        backends={"oracle_server": {"kind": "openai", "base_url": server.base_url, "model": "hvae-oracle",
                                    "structured": "json_schema", "temperature": 0}},
        cache={"enabled": False},
    )
    run = RunFolder(play_scenario(scenario, tmp_path / name).path)
    assert run.status == "complete"
    return run.decisions(), group_summary(run).set_index("group")


def _predicted_first_share(model: OracleModel, decisions) -> tuple[float, float]:
    """Expected count of first-position choices (and its sd) under the logit model, for the orders shown."""
    p = []
    for _, row in decisions.iterrows():
        shown = np.array([[float(x) for x in pair.split(",")] for pair in row["options_shown"].split("|")])
        p.append(model.choice_probabilities(float(row["value_angle"]), shown)[0])
    p = np.array(p)
    return float(p.sum()), float(np.sqrt((p * (1 - p)).sum()))


@pytest.mark.slow
def test_llm_path_recovers_values_position_bias_and_invalid_rate(tmp_path) -> None:
    sharp = OracleModel(beta=10.0)  # high beta: near-ties (1 coin of joint payoff) still decided
    with OracleServer(sharp) as server:
        decisions, groups = _run_against(server, tmp_path, "sharp")
    for name, theta in svo.CATEGORY_ANGLES.items():
        row = groups.loc[name]
        assert row["decision_vr"] > 0.95, (name, row["decision_vr"])
        assert row["invalid_rate"] == 0
        assert row["revealed_ci_low"] <= theta <= row["revealed_ci_high"], (name, row["revealed_ci_low"], row["revealed_ci_high"])
        assert row["revealed_identification"] in ("point", "set")

    biased = OracleModel(beta=0.3, position_bias=2.0, invalid_rate=0.2, seed=3)
    with OracleServer(biased) as server:
        decisions_b, groups_b = _run_against(server, tmp_path, "biased")
    # the invalid rate shows up as injected (reasks: 0, so every invalid reply is an invalid decision)
    n = len(decisions_b)
    invalid = 1 - decisions_b["valid"].mean()
    assert abs(invalid - 0.2) < 4 * math.sqrt(0.2 * 0.8 / n), invalid
    # the first-position share is what the logit model with the bonus predicts for the orders shown,
    # and clearly above what the same model without the bonus predicts
    valid = decisions_b[decisions_b["valid"]]
    observed = int((valid["chosen_position"] == 0).sum())
    expected, sd = _predicted_first_share(biased, valid)
    assert abs(observed - expected) < 4 * sd, (observed, expected, sd)
    unbiased, sd0 = _predicted_first_share(OracleModel(beta=0.3), valid)
    assert observed > unbiased + 4 * sd0, (observed, unbiased)
    # and the value is still recovered at a lower beta: point-identified intervals cover the angle
    for name, theta in svo.CATEGORY_ANGLES.items():
        row = groups_b.loc[name]
        assert row["revealed_ci_low"] <= theta <= row["revealed_ci_high"], (name, row["revealed_ci_low"], row["revealed_ci_high"])


# ------------------------------------------------------------------------------ the command line


def test_serve_oracle_command_serves_until_terminated() -> None:
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "hvae.cli.main", "serve-oracle", "--port", "0", "--beta", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("oracle server: http://127.0.0.1:"), first + process.stderr.read()
        base_url = first.split()[2]
        status, reply = _post(f"{base_url}/chat/completions", _decision_body(prompts.value_prompt(90.0)))
        assert status == 200 and reply["choices"][0]["message"]["content"] == "A"
    finally:
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert "stopped after 1 replies" in out


def test_serve_oracle_bad_arguments_are_one_line(cli) -> None:
    from conftest import assert_user_error

    assert_user_error(cli("serve-oracle", "--beta", "-1"), "beta must be")
    assert_user_error(cli("serve-oracle", "--invalid-rate", "2"), "--invalid-rate")


def test_run_against_a_stopped_oracle_server_says_how_to_start_it(cli, tmp_path) -> None:
    with OracleServer() as server:  # a port that was just free and is closed again
        port = server.port
    result = cli(
        "run", "validity_demo", "--out", str(tmp_path / "run"), "--no-cache", "--quiet", "--no-report",
        "--set", f"backends.oracle_server.base_url=http://127.0.0.1:{port}/v1", "--set", "backends.oracle_server.retries=0",
        "--set", "rounds=1",
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].endswith(f"start the oracle server first: hvae serve-oracle --port {port}"), lines[0]


@pytest.mark.parametrize("theta", [90.0, 45.0, 0.0, -45.0])
def test_in_talk_the_oracle_states_the_option_its_value_ranks_first(theta: float) -> None:
    """Its message is a promise the promise-keeping measure can read: the best option's amounts."""
    from hvae.agents.llm.talk import TalkContext, talk_prompt
    from hvae.analysis.talk import stated_option

    shown = [(85.0, 15.0), (50.0, 100.0), (85.0, 85.0), (100.0, 50.0)]
    context = TalkContext(round=0, partner_id=1, options_shown=shown, turns=2, partner_value=prompts.value_wording(-90.0))
    body = {"messages": [
        {"role": "user", "content": prompts.value_prompt(theta)},
        {"role": "user", "content": talk_prompt(context, "my goal", [], me=0)},  # names the partner's value too
    ]}
    utilities = [math.cos(math.radians(theta)) * own + math.sin(math.radians(theta)) * other for own, other in shown]
    best = int(np.argmax(utilities))
    said = OracleModel(seed=3).reply(body)
    assert said == f"I will take {shown[best][0]:g}, {shown[best][1]:g}."
    assert stated_option(said, np.array(shown)) == best  # the promise-keeping measure reads it
