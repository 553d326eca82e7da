"""One value share (issue 19 item 6): the terminal, the report and the figure show the same quantity.

The expectation is computed here from the decisions themselves: in a round, the share of each SVO
category among the agents that act on their value (not random or fixed deciders), by the value
each decision was made under.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hvae.agents.svo import categories
from hvae.analysis.population import per_round, value_shares
from hvae.analysis.runfolder import RunFolder


def shares_in_round(run: RunFolder, round_: int) -> dict[str, float]:
    """Categories of the values in force in ``round_`` (a change logged at round k holds from k + 1),
    among the agents that act on their value; checked against the decisions made that round."""
    agents = run.agents()
    agents = agents[~agents["decider"].astype(str).isin(["random", "fixed"])]
    held = dict(zip(agents["agent_id"], agents["initial_value_angle"].astype(float)))
    for change in run.frame("value_changes").sort_values("round").itertuples():
        if change.round < round_ and change.agent_id in held:
            held[change.agent_id] = float(change.new_angle)
    decided = run.decisions()
    decided = decided[decided["round"] == round_].groupby("agent_id")["value_angle"].first()
    assert all(held[a] == angle for a, angle in decided.items() if a in held)  # what they decided under
    counts = pd.Series(categories(np.array(list(held.values())))).value_counts(normalize=True)
    return counts.to_dict()


@pytest.mark.slow
def test_terminal_figure_and_report_show_the_value_shares_of_rounds_played(tmp_path, cli) -> None:
    out = tmp_path / "run"
    # donation under imitation every 4 rounds, 8 rounds: the update after round 8 changes values
    # that no round plays; random agents labelled altruistic are not counted
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "name: shares\nseed: 5\nrounds: 8\nsize: 30\nnetwork: {kind: watts_strogatz, k: 4, p: 0.1}\n"
        "matching: random\nmenus: {kind: donation, b: 3, c: 1}\nhistory: {length: 3}\n"
        "dynamics: {rule: imitation, every: 4}\npopulation:\n"
        "  - {name: prosocials, share: 0.4, value: prosocial, decider: oracle}\n"
        "  - {name: individualists, share: 0.4, value: individualistic, decider: oracle}\n"
        "  - {name: noise, share: 0.2, value: altruistic, decider: random}\n"
    )
    result = cli("run", str(scenario), "--out", str(out), env={"COLUMNS": "400"})
    assert result.returncode == 0, result.stderr
    run = RunFolder(out)
    last = int(run.rounds()["round"].max())
    first_expected, last_expected = shares_in_round(run, 0), shares_in_round(run, last)
    assert "altruistic" not in first_expected  # the random agents' label is not a value share
    figure = value_shares(run)
    for name, share in last_expected.items():
        assert figure.loc[last, name] == pytest.approx(share)
        assert figure.loc[0, name] == pytest.approx(first_expected.get(name, 0.0))
    by_category = per_round(run, "value_category").set_index(["round", "group"])["share"]
    for name, share in last_expected.items():
        assert by_category.loc[(last, name)] == pytest.approx(share)
    text = " ".join(result.stdout.split())
    printed = re.search(r"round 1 → round (\d+): (.*?)\.", text)
    assert printed and int(printed.group(1)) == last + 1
    for name, share in last_expected.items():
        assert f"{name} {first_expected.get(name, 0.0):.0%} → {share:.0%}" in printed.group(2)
    html = (out / "report.html").read_text()
    headings = re.findall(r"<h2>([^<]*)</h2>", html)
    assert headings[0] == "Population result" and headings[1] == "What this run shows"
    population = html[html.index("<h2>Population result</h2>"):html.index("<h2>What this run shows</h2>")]
    assert 'id="fig-value_shares"' in population and html.count('id="fig-value_shares"') == 1
    assert printed.group(2) in " ".join(population.split())
    assert np.isclose(sum(last_expected.values()), 1.0)
