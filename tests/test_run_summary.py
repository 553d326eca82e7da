"""What ``hvae run`` prints at the end, and the LLM setup progress before the first round."""

from __future__ import annotations

import pytest
import yaml

from hvae.scenarios.loader import validate_data
from hvae.simulation.model import HvaeModel


def _scenario(rounds: int = 6) -> dict:
    llm = {"kind": "llm", "goal_prompting": False, "reasks": 0}
    return {
        "name": "summary_test",
        "seed": 4,
        "rounds": rounds,
        "population": [
            {"name": "llm_individualistic_scripted", "count": 3, "value": "individualistic", "decider": {**llm, "backend": "script"}},
            {"name": "oracle_individualistic", "count": 2, "value": "individualistic", "decider": "oracle"},
            {"name": "random_baseline", "count": 3, "value": "competitive", "decider": "random"},
        ],
        "network": {"kind": "complete"},
        "matching": "all_edges",
        "menus": {"kind": "slider"},
        # Always "A": a value-blind, position-biased "model".
        "backends": {"script": {"kind": "replay", "replies": ["I value myself.", "A"] + ["A"] * 40}},
        "cache": {"enabled": False},
    }


@pytest.mark.slow
def test_summary_fits_100_columns_and_leads_with_the_baselines(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario()))
    result = cli("run", str(path), "--out", str(tmp_path / "run"), "--no-report")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 100, "\n".join(lines)
    assert "…" not in result.stdout  # nothing cut
    assert "llm_individualistic_scripted" in result.stdout and "oracle_individualistic" in result.stdout
    assert any(line.startswith("Ceiling: value-rational oracles reach decision VR 1.000") for line in lines)
    assert any(line.startswith("Chance: uniform random choosers") for line in lines)
    text = " ".join(result.stdout.split())
    assert "chose the option shown first in 100% of 18 valid decisions" in text
    assert "drives many of their choices" in text
    for header in ("decision VR", "slider VR", "revealed θ", "1st"):
        assert header in result.stdout


@pytest.mark.slow
def test_wide_summary_adds_payoff_and_slider_angles(cli, tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_scenario()))
    result = cli("run", str(path), "--out", str(tmp_path / "run"), "--no-report", "--wide")
    assert result.returncode == 0, result.stderr
    for header in ("payoff", "ceiling", "target", "decider"):
        assert header in result.stdout


def test_llm_setup_reports_progress_agent_by_agent():
    model = HvaeModel(validate_data(_scenario(rounds=1), "summary_test"))
    seen: list[tuple[int, int]] = []
    try:
        model.setup_llm_agents(lambda done, total: seen.append((done, total)))
        assert seen == [(1, 3), (2, 3), (3, 3)]
        model.setup_llm_agents(lambda done, total: seen.append((done, total)))  # nothing left to set up
        assert len(seen) == 3
        model.step()
        assert model.log.totals["decisions"] == 8
    finally:
        model.close()


@pytest.mark.slow
def test_report_leads_with_the_baselines_and_the_position_bias(tmp_path):
    from hvae.analysis.report import write_report
    from hvae.simulation.runner import play_scenario

    result = play_scenario(validate_data(_scenario(), "summary_test"), tmp_path / "run")
    page = write_report([result.path], tmp_path / "report.html").read_text()
    start = page.index("<h2>What this run shows</h2>")
    assert start < page.index("<h2>Status</h2>") < page.index('<h2 id="vr">')
    section = page[start:page.index("<h2>Status</h2>")]
    assert "Ceiling: value-rational oracles reach decision VR 1.000" in section
    assert "100.0%" in section and "11.1%" in section  # always first vs 1/9 without a preference
    assert "llm_individualistic_scripted" in section
