"""Folder or memory, the same numbers: every shipped scenario played into a run folder and into memory.

The analysis reads a run through :mod:`hvae.analysis.rundata`. Here each shipped scenario (small
sizes, as in ``tests/test_scenarios.py``) is played twice with its seed — once into a run folder as
``hvae run`` writes it, once into memory — and every table, the scenario, the summary's counts and
the analysis built on them (group summary, per-round figures, value shares, the report's data) must
be identical. LLM groups answer from the scripted ``replay`` backend (as
``benchmarks/compare_outputs.py`` does); scenarios that point at the oracle server get one on a
free port.
"""

from __future__ import annotations

import json
import re
from contextlib import ExitStack

import pandas as pd
import pytest
import yaml

from hvae.analysis import population
from hvae.analysis.dataset import Analysis
from hvae.analysis.rundata import MemoryRun, MissingTable, as_run, is_run
from hvae.analysis.runfolder import NotARunFolder, RunFolder
from hvae.analysis.summary import group_summary
from hvae.experiments.runs import run_in_memory, run_to_folder
from hvae.scenarios.loader import load_scenario, shipped_scenarios
from test_scenarios import SHIPPED, small_overrides

#: Scripted replies for LLM agents (two setup answers, then letters), as in benchmarks/compare_outputs.py.
REPLAY = {"kind": "replay", "replies": ["I value what my value says.", "Choose by my value."] + list("ACBADEBICFGH" * 5)}

#: Columns that measure the machine (wall-clock), not the run.
VOLATILE = ["latency_s"]

#: Summary keys that are clocks.
CLOCKS = ("started_at", "finished_at", "elapsed_s", "llm_traffic")  # llm_traffic: latency percentiles and rates


def _backends(data: dict, oracle_url: str | None) -> dict:
    """The scenario's backends with ``embedded`` scripted and the oracle server at ``oracle_url``."""
    backends = dict(data.get("backends") or {})
    for name, config in backends.items():
        if name == "oracle_server":
            backends[name] = {**config, "base_url": oracle_url}
    backends["embedded"] = REPLAY
    return backends


def _both(name: str, tmp_path) -> tuple[RunFolder, MemoryRun]:
    from hvae.agents.llm.oracle_server import OracleServer

    path = shipped_scenarios()[name]
    data = yaml.safe_load(path.read_text())
    overrides = [*small_overrides(path), "cache.enabled=false"]
    with ExitStack() as stack:
        url = None
        if "oracle_server" in (data.get("backends") or {}):
            url = stack.enter_context(OracleServer()).base_url
        if any(isinstance(g.get("decider"), dict) and g["decider"].get("kind") == "llm" for g in data["population"]):
            overrides.append(f"backends={json.dumps(_backends(data, url))}")
        scenario = load_scenario(path, overrides)
        folder = RunFolder(run_to_folder(scenario, tmp_path / name).path)
        memory = run_in_memory(scenario)
    return folder, memory


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    drop = [c for c in VOLATILE if c in a]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), check_exact=True)


@pytest.mark.slow
@pytest.mark.parametrize("name", SHIPPED)
def test_folder_and_memory_give_identical_numbers(name: str, tmp_path) -> None:
    folder, memory = _both(name, tmp_path)
    assert folder.status == memory.status == "complete"
    assert folder.scenario == memory.scenario
    without_clocks = [{k: v for k, v in run.summary.items() if k not in CLOCKS} for run in (folder, memory)]
    assert without_clocks[0] == without_clocks[1]
    # every table the folder holds (but the per-group table, an analysis product) is in memory, equal
    on_disk = sorted(p.stem for p in folder.path.glob("*.parquet") if p.stem != "groups")
    assert on_disk == sorted(memory.tables)
    for table in on_disk:
        _frames_equal(folder.frame(table), memory.frame(table))
        assert memory.has_table(table) and folder.has_table(table)
    # the analysis: the folder's own groups.parquet, recomputed from memory
    groups = group_summary(memory)
    pd.testing.assert_frame_equal(pd.read_parquet(folder.path / "groups.parquet"), groups, check_exact=True)
    pd.testing.assert_frame_equal(group_summary(folder), groups, check_exact=True)
    for by in ("group", "value_category"):
        _frames_equal(population.per_round(folder, by), population.per_round(memory, by))
        _frames_equal(population.value_shares(folder, by), population.value_shares(memory, by))
    on_folder, in_memory = Analysis.of(folder), Analysis.of(memory)
    _frames_equal(on_folder.group_vr, in_memory.group_vr)
    _frames_equal(on_folder.reciprocity, in_memory.reciprocity)
    _frames_equal(on_folder.revealed_agents, in_memory.revealed_agents)


@pytest.mark.slow
def test_report_and_figures_from_memory(tmp_path) -> None:
    from hvae.analysis.plots import make_figures
    from hvae.analysis.report import write_report

    folder, memory = _both("oracle_population", tmp_path)
    from_memory = write_report([memory], tmp_path / "memory.html").read_text()
    from_folder = write_report([folder], tmp_path / "folder.html").read_text()
    assert "in memory: oracle_population" in from_memory
    # the same tables: the documents differ only where they name the run and the clock
    def body(html: str, label: str) -> str:
        html = html.split("<h2>Figures</h2>")[0].split("<footer>")[0].replace(label, "RUN")
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", "TIME", html)
    assert body(from_memory, memory.label) == body(from_folder, folder.label)
    assert {p.name for p in make_figures(memory, tmp_path / "fm")} == {p.name for p in make_figures(folder, tmp_path / "ff")}


def test_memory_run_reads_like_a_folder_without_one(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scenario = load_scenario("oracle_population", ["rounds=3", *[f"population.{i}.count=2" for i in range(4)]])
    run = run_in_memory(scenario)
    assert list(tmp_path.iterdir()) == []  # nothing written anywhere we can see
    assert run.status == "complete" and run.summary["rounds_completed"] == 3
    decisions = run.decisions()
    assert sorted(decisions["round"].unique()) == [0, 1, 2]
    assert run.summary["n_decisions"] == len(decisions)
    assert not run.has_table("messages")
    with pytest.raises(MissingTable, match="has no messages table"):
        run.table("messages")
    with pytest.raises(NotARunFolder):  # callers that catch the folder's error catch this one too
        run.table("messages")


def test_as_run_takes_run_data_or_paths(tmp_path) -> None:
    memory = MemoryRun({"summary.json": '{"status": "running", "seed": 1}', "scenario.yaml": "name: x"}, {})
    assert as_run(memory) is memory and is_run(memory)
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "summary.json").write_text('{"status": "complete"}')
    assert isinstance(as_run(folder), RunFolder) and isinstance(as_run(str(folder)), RunFolder)
    assert as_run(folder).label == str(folder) and as_run(folder).has_table("decisions") is False
    with pytest.raises(NotARunFolder):
        as_run(tmp_path / "missing")
    with pytest.raises(TypeError, match="expected run data"):
        as_run(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs summary.json"):
        MemoryRun({"scenario.yaml": "name: x"}, {})
