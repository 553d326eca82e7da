"""Population metrics (hand-computed), figures and the HTML report for finished, interrupted,
killed and multi-seed runs, and the ``hvae report`` command."""

from __future__ import annotations

import json
import math
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import make_scenario

from hvae.agents.deciders import Decider, Decisions
from hvae.analysis import games as game_metrics
from hvae.analysis import population as pop
from hvae.analysis.dataset import ScenarioMismatch
from hvae.analysis.plots import FIGURES, make_figures
from hvae.analysis.report import default_report_path, value_blind_groups, write_report
from hvae.analysis.runfolder import RunFolder
from hvae.simulation.model import HvaeModel
from hvae.simulation.runner import RunInterrupted, play_scenario

DICTATOR = {"kind": "dictator", "endowment": 10, "step": 5}  # options (10,0) (5,5) (0,10)
SMALL = {"rounds": 6, "network": {"kind": "watts_strogatz", "k": 4, "p": 0.2}}


class Page(HTMLParser):
    """Collects what the tests look for; ``html.parser`` raises on nothing, so we also check nesting."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.images: list[str] = []
        self.headers: list[str] = []
        self.text: list[str] = []
        self._in_th = False

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs).get("src", ""))
        if tag not in self.VOID:
            self.stack.append(tag)
        self._in_th = tag == "th"

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> (open: {self.stack[-3:]})")
        else:
            self.stack.pop()
        self._in_th = False

    def handle_data(self, data):
        self.text.append(data)
        if self._in_th:
            self.headers.append(data.strip())


def parse(path: Path) -> tuple[Page, str]:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    assert not page.errors, page.errors
    assert page.stack == [], page.stack
    return page, " ".join(" ".join(page.text).split())


def assert_figures(folder: Path, stems: list[str]) -> None:
    for stem in stems:
        png, svg = folder / f"{stem}.png", folder / f"{stem}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5_000, stem
        assert "<svg" in svg.read_text(encoding="utf-8")[:2000] and svg.stat().st_size > 5_000, stem


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    return play_scenario(make_scenario(**SMALL), tmp_path_factory.mktemp("finished") / "run").path


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[Path]:
    base = tmp_path_factory.mktemp("seeds")
    return [play_scenario(make_scenario(seed=s, **SMALL), base / f"s{s}").path for s in (1, 2, 3)]


class Cycle(Decider):
    """Options 0, 1, 2, 0, 1, … by round (a partner whose generosity varies)."""

    name = "cycle"

    def decide(self, request, rng):
        return Decisions.from_choices(np.full(request.n, request.round % 3))


def pair_run(tmp_path: Path, first: dict, second: dict, rounds: int = 3, deciders=None, **changes) -> RunFolder:
    scenario = make_scenario(
        rounds=rounds,
        population=[{"name": "a", "count": 1, **first}, {"name": "b", "count": 1, **second}],
        network={"kind": "complete"}, menus=DICTATOR, **changes,
    )
    model = HvaeModel(scenario, deciders=deciders) if deciders else None
    return RunFolder(play_scenario(scenario, tmp_path / "run", model=model).path)


# ---------------------------------------------------------------------------------- metrics by hand
def test_pair_payoffs_random_matching_by_hand(tmp_path) -> None:
    run = pair_run(tmp_path, {"value": 0, "decider": {"kind": "fixed", "option": 0}},  # keeps 10, gives 0
                   {"value": 0, "decider": {"kind": "fixed", "option": 2}})  # keeps 0, gives 10
    matrix = game_metrics.pair_matrix(game_metrics.pair_payoffs(run), ["a", "b"])
    assert matrix.loc["a", "b"] == 10 + 10  # a keeps 10 and receives b's 10
    assert matrix.loc["b", "a"] == 0 + 0
    assert np.isnan(matrix.loc["a", "a"]) and np.isnan(matrix.loc["b", "b"])
    assert game_metrics.pair_payoffs(run).set_index("group").loc["a", "games"] == 3
    # fixed deciders never vary their generosity: reciprocity is undefined, not zero
    assert game_metrics.reciprocity(run)["r"].isna().all()


def test_pair_payoffs_all_edges_rebuilt_from_the_network(tmp_path) -> None:
    scenario = make_scenario(
        rounds=2,
        population=[{"name": "giver", "count": 1, "value": 90, "decider": {"kind": "fixed", "option": 2}},
                    {"name": "keeper", "count": 2, "value": 0, "decider": {"kind": "fixed", "option": 0}}],
        network={"kind": "complete"}, matching="all_edges", menus=DICTATOR,
    )
    run = RunFolder(play_scenario(scenario, tmp_path / "run").path)
    matrix = game_metrics.pair_matrix(game_metrics.pair_payoffs(run), ["giver", "keeper"])
    assert matrix.loc["keeper", "giver"] == 10 + 10  # keeps 10, receives the giver's 10
    assert matrix.loc["keeper", "keeper"] == 10 + 0
    assert matrix.loc["giver", "keeper"] == 0 + 0
    games = game_metrics.games(run)
    assert len(games) == 2 * 3 * 2  # rounds × edges × both directions
    # per-game payoffs add up to each decision's payoff
    per_agent = games.groupby(["round", "agent_id"])["game_payoff"].sum()
    decisions = run.decisions().set_index(["round", "agent_id"])["payoff"]
    pd.testing.assert_series_equal(per_agent.sort_index(), decisions.sort_index(), check_names=False)


def test_reciprocity_by_hand(tmp_path) -> None:
    # a gives options 0,1,2,0,1,2 (generosity 0, .5, 1, ...); b (reciprocal, memory 1) gives back what a gave
    run = pair_run(tmp_path, {"value": 0, "decider": {"kind": "fixed", "option": 0}},
                   {"value": 0, "decider": {"kind": "reciprocal", "memory": 1}}, rounds=6, deciders={"a": Cycle()})
    choices = run.decisions().pivot(index="round", columns="group", values="choice")
    assert choices["a"].tolist() == [0, 1, 2, 0, 1, 2]
    assert choices["b"].tolist() == [0, 0, 1, 2, 0, 1]  # round 0: no history -> individualistic oracle
    pairs = game_metrics.reciprocity_pairs(run)
    b = pairs[pairs["group"] == "b"]
    # one dictator menu: centring subtracts a constant, so differences are the raw generosities
    assert np.allclose(np.diff(b["received"]), np.diff([0, 0.5, 1, 0, 0.5]))
    # what b gives is what it got, up to the centring constants (menu mean vs b's own mean)
    np.testing.assert_allclose(b["received"] - b["received"].mean(), b["given"] - b["given"].mean())
    table = game_metrics.reciprocity(run).set_index("group")
    assert table.loc["b", "r"] == pytest.approx(1.0)
    assert table.loc["b", "pairs"] == 5
    # a: received g_b(t) = 0, 0, .5, 1, 0 then gives g_a(t+1) = .5, 1, 0, .5, 1
    x, y = np.array([0, 0, 0.5, 1, 0]), np.array([0.5, 1, 0, 0.5, 1])
    by_hand = ((x - x.mean()) * (y - y.mean())).sum() / math.sqrt(((x - x.mean()) ** 2).sum() * ((y - y.mean()) ** 2).sum())
    # deviations: x − 0.3, y − 0.6 -> Σdxdy = −0.4, Σdx² = 0.8, Σdy² = 0.7 -> r = −0.4/√0.56 = −√(2/7)
    assert table.loc["a", "r"] == pytest.approx(by_hand) == pytest.approx(-math.sqrt(2 / 7))
    # one agent per group: too few clusters for a bootstrap interval
    assert np.isnan(table.loc["b", "ci_low"]) and np.isnan(table.loc["b", "ci_high"])


def test_t_interval_by_hand() -> None:
    frames = [pd.DataFrame({"round": [0], "group": ["x"], "v": [value]}) for value in (1.0, 2.0, 4.0)]
    row = pop.across_seeds(frames, ["round", "group"], ["v"]).iloc[0]
    mean, sd = 7 / 3, math.sqrt(7 / 3)  # sample sd of 1, 2, 4
    half = 4.302652729749464 * sd / math.sqrt(3)  # t(0.975, df=2)
    assert row["v"] == pytest.approx(mean)
    assert row["v_low"] == pytest.approx(mean - half) and row["v_high"] == pytest.approx(mean + half)
    assert row["n_seeds"] == 3
    assert np.isnan(pop.t_interval(np.array([5.0]))[1])  # one seed: no interval


def test_per_round_across_seeds_matches_the_runs(seeds) -> None:
    table = pop.per_round_across_seeds(seeds, "group").set_index(["round", "group"])
    values = [pop.per_round(s, "group").set_index(["round", "group"]).loc[(3, "pro"), "mean_payoff"] for s in seeds]
    mean, low, high = pop.t_interval(np.array(values))
    assert table.loc[(3, "pro"), "mean_payoff"] == pytest.approx(np.mean(values)) == pytest.approx(mean)
    assert (table.loc[(3, "pro"), "mean_payoff_low"], table.loc[(3, "pro"), "mean_payoff_high"]) == pytest.approx((low, high))


def test_per_round_and_drift_of_a_run(finished) -> None:
    rounds = pop.per_round(finished, "group")
    assert set(rounds["group"]) == {"alt", "pro", "ind", "com"} and rounds["round"].nunique() == 6
    assert pop.value_shares(finished).iloc[0].sum() == pytest.approx(1.0)
    short = pop.revealed_drift(finished, "group", window=3, step=1)
    assert set(short["group"]) == {"alt", "pro", "ind", "com"}
    assert (short["round_end"] - short["round_start"] == 2).all()
    assert sorted(short["round_start"].unique()) == [0, 1, 2, 3]
    drift = pop.revealed_drift(finished, "group")  # default: one menu cycle = the 6 slider items
    assert drift["round_start"].tolist() == [0] * 4 and (drift["round_end"] == 5).all()
    pro = drift.set_index("group").loc["pro"]
    assert pro["target"] == 45 and pro["theta"] == pytest.approx(45, abs=1)  # oracles reveal their value


# ---------------------------------------------------------------------------------- figures and report
def invoke(*args: str):
    """Run ``hvae ARGS`` in-process (click's runner: same output and exit code as the console script)."""
    from click.testing import CliRunner

    from hvae.cli.main import cli

    return CliRunner().invoke(cli, list(args))


@pytest.mark.slow
def test_cli_report_of_a_finished_run(finished) -> None:
    result = invoke("report", str(finished))
    assert result.exit_code == 0, result.output
    out = finished / "report.html"
    assert result.output.strip() == f"report: {out.resolve()}"
    page, text = parse(out)
    assert "decision VR" in page.headers and "chance" in page.headers and "ceiling" in page.headers
    assert "slider VR" in page.headers and "revealed θ̂" in page.headers
    assert "complete" in text and "Not every run is complete" not in text
    assert "value-blind" not in text
    pngs = [src for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == len(page.images) == len(FIGURES)
    assert not any(src.startswith(("http", "file:")) for src in page.images)
    assert_figures(finished / "report_figures", [stem for stem, _, _ in FIGURES])


@pytest.mark.slow
def test_make_figures_of_seeds_returns_png_and_svg(seeds, tmp_path) -> None:
    paths = make_figures(seeds, tmp_path / "figs")
    assert sorted(p.name for p in paths) == sorted(f"{stem}{ext}" for stem, _, _ in FIGURES for ext in (".png", ".svg"))
    assert_figures(tmp_path / "figs", ["payoff_by_group", "gini", "revealed_drift", "value_rationality"])


@pytest.mark.slow
def test_report_of_an_interrupted_run(tmp_path) -> None:
    def stop(model):
        if model.round >= 3:
            raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(make_scenario(**SMALL), tmp_path / "run", on_round=stop)
    page, text = parse(write_report([tmp_path / "run"], tmp_path / "run" / "report.html"))
    assert "Not every run is complete" in text and "interrupted (Ctrl-C) after 3 of 6 rounds" in text
    assert "decision VR" in page.headers and len(page.images) >= 5


@pytest.mark.slow
def test_report_of_a_killed_run_reads_part_files(finished, tmp_path) -> None:
    killed = tmp_path / "killed"
    shutil.copytree(finished, killed, ignore=shutil.ignore_patterns("report*"))
    for name in ("decisions", "rounds"):  # as if SIGKILL struck before consolidation
        table = pq.read_table(killed / f"{name}.parquet")
        (killed / f"{name}.parquet").unlink()
        parts = killed / "parts" / name
        parts.mkdir(parents=True)
        rounds = table.column("round").to_numpy()
        for i, r in enumerate(sorted(set(rounds[rounds < 4]))):
            pq.write_table(table.filter(rounds == r), parts / f"part-{i + 1:06d}.parquet")
    summary = json.loads((killed / "summary.json").read_text())
    summary.update(status="running", rounds_completed=4, finished_at=None)
    (killed / "summary.json").write_text(json.dumps(summary))
    assert RunFolder(killed).decisions()["round"].max() == 3
    page, text = parse(write_report([killed], killed / "report.html"))
    assert "still says 'running'" in text and "4 of 6 rounds" in text
    assert "decision VR" in page.headers and len(page.images) >= 5


@pytest.mark.slow
def test_multi_seed_report(seeds, tmp_path) -> None:
    out = write_report(seeds, tmp_path / "seeds.html")
    page, text = parse(out)
    assert "seeds 1, 2, 3" in text and "t-interval over seeds" in text
    assert "decision VR" in page.headers and len(page.images) == len(FIGURES)
    assert (tmp_path / "seeds_figures" / "revealed_drift.svg").is_file()
    assert default_report_path(seeds) == seeds[0].parent.resolve() / "report.html"


def test_multi_seed_report_refuses_different_scenarios(finished, tmp_path) -> None:
    other = play_scenario(make_scenario(**{**SMALL, "rounds": 4}), tmp_path / "other").path
    with pytest.raises(ScenarioMismatch, match="differ in: rounds"):
        write_report([finished, other], tmp_path / "r.html")


def test_value_blind_caveat() -> None:
    llm = {"kind": "llm", "backend": "local"}
    scenario = {"population": [{"name": "smol", "decider": llm}, {"name": "o", "decider": {"kind": "oracle"}}]}
    assert value_blind_groups({**scenario, "backends": {"local": {"kind": "embedded"}}}) == ["smol"]
    assert value_blind_groups({"population": [{"name": "d", "decider": {"kind": "llm"}}]}) == ["d"]  # built-in default
    assert value_blind_groups({**scenario, "backends": {"local": {"kind": "embedded", "model_path": "/m.gguf"}}}) == []
    assert value_blind_groups({**scenario, "backends": {"local": {"kind": "openai", "model": "x"}}}) == []


@pytest.mark.slow
@pytest.mark.llm
def test_replay_llm_run_has_accounting_and_no_caveat(tmp_path) -> None:
    scenario = make_scenario(
        rounds=6,
        population=[{"name": "llm", "count": 1, "value": "altruistic", "decider": {"kind": "llm", "backend": "script"}},
                    {"name": "partner", "count": 1, "value": "prosocial", "decider": "oracle"}],
        network={"kind": "complete"}, matching="all_edges",
        backends={"script": {"kind": "replay", "replies": ["I care.", "Give much.", *["B"] * 6]}},
        cache={"enabled": False},
    )
    run = play_scenario(scenario, tmp_path / "run").path
    page, text = parse(write_report([run], run / "report.html"))
    assert "value-blind" not in text
    assert "LLM accounting" in text and "LLM calls" in page.headers


# ---------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(("make", "fragment"), [
    (lambda tmp: tmp / "missing", "no such run folder"),
    (lambda tmp: tmp, "is not an hvae run folder"),
])
def test_cli_report_bad_input(tmp_path, make, fragment) -> None:
    result = invoke("report", str(make(tmp_path)))
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvae: error: ") and fragment in lines[0]


def test_cli_report_of_runs_without_common_parent_needs_out(finished) -> None:
    result = invoke("report", str(finished), "/")
    assert result.exit_code == 2 and result.output.startswith("hvae: error:") and "--out" in result.output


# ---------------------------------------------------------------------------------- no claim beyond the data
def test_history_blind_oracles_have_no_reciprocity(tmp_path) -> None:
    # Oracles ignore what they were given. Altruists and competitors never tie on the slider, so
    # they act the same on a menu every time: undefined. Oracles that break ties at random (0°, 45°)
    # vary only by chance: r near 0. Centring on the menu's population mean alone read the slider
    # cycle as reciprocity (r up to ±0.3).
    from hvae.scenarios.loader import load_scenario

    run = play_scenario(load_scenario("oracle_population"), tmp_path / "run").path
    table = game_metrics.reciprocity(run).set_index("group")
    assert np.isnan(table.loc["altruists", "r"]) and np.isnan(table.loc["competitors", "r"])
    assert abs(table.loc["prosocials", "r"]) < 0.1 and abs(table.loc["individualists", "r"]) < 0.1


def test_value_shares_do_not_count_value_blind_deciders(tmp_path) -> None:
    # four random agents labelled prosocial and four competitive oracles: only the oracles act on a value
    run = play_scenario(make_scenario(
        rounds=4,
        population=[{"name": "rnd", "count": 4, "value": "prosocial", "decider": "random"},
                    {"name": "com", "count": 4, "value": "competitive", "decider": "oracle"}],
        network={"kind": "complete"},
    ), tmp_path / "run").path
    shares = pop.value_shares(run)
    assert list(shares.columns) == ["competitive"] and (shares["competitive"] == 1.0).all()
    assert len(shares) == 4


@pytest.mark.slow
def test_unidentified_angles_read_n_i_everywhere(tmp_path, cli) -> None:
    # random choosers between keeping all, the split (6, 6) and giving all: no angle makes all their
    # choices best, and the likelihood is flat (β̂ = 0). (An equal split on a dictator menu, where every
    # option ties at 45°, is no longer n/i: 45° is the one angle that explains it — issue 19.)
    scenario = tmp_path / "splitters.yaml"
    scenario.write_text(
        "name: splitters\nrounds: 6\nmenus: {kind: custom, items: [[[10, 0], [6, 6], [0, 10]]]}\n"
        "network: {kind: complete}\n"
        "population:\n  - {name: splitters, count: 4, value: 45, decider: random}\n"
        "  - {name: keepers, count: 4, value: individualistic, decider: oracle}\n"
    )
    out = tmp_path / "run"
    result = cli("run", str(scenario), "--out", str(out))
    assert result.returncode == 0, result.stderr
    line = table_row(result.stdout, "splitters")
    assert "n/i" in line and "-90" not in line and "0.0 (" not in line
    keepers = table_row(result.stdout, "keepers")
    assert "bounded [-90" in keepers  # keeping all on dictator menus fits every angle below 45°
    page, _ = parse(out / "report.html")
    revealed = page_table_rows(out / "report.html", "revealed")
    assert revealed["splitters"][2] == "n/i" and "-90.0" not in " ".join(revealed["splitters"])
    assert revealed["keepers"][2].startswith("bounded [-90.0, ")


def table_row(stdout: str, group: str) -> str:
    """A group's row of the terminal table, with the continuation lines of its wrapped cells."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [group])
    row = [lines[start]]
    for line in lines[start + 1:]:
        if not line.strip() or not line.startswith("  "):
            break
        row.append(line)
    # cells wrapped over lines: put each column's pieces back together
    return " ".join(" ".join(piece.split()) for piece in row)


def page_table_rows(path: Path, css_class: str) -> dict[str, list[str]]:
    """Rows of the HTML table with ``class=css_class``, keyed by their first cell."""
    text = path.read_text(encoding="utf-8")
    start = text.index(f'<table class="{css_class}">')
    body = text[start:text.index("</table>", start)]
    rows = {}
    for row in body.split("<tr>")[2:]:
        cells = [c.split("</td>")[0] for c in row.split("<td")[1:]]
        cells = [c.split(">", 1)[1] for c in cells]
        rows[cells[0]] = cells
    return rows


def test_svo_ring_draws_sets_without_points_and_says_so(tmp_path) -> None:
    from hvae.analysis.dataset import Analysis
    from hvae.analysis.plots import fig_svo_ring
    from hvae.scenarios.loader import load_scenario

    run = play_scenario(load_scenario("oracle_population", ["rounds=6"]), tmp_path / "run").path
    analysis = Analysis.of(run)
    agents = analysis.revealed_agents.set_index("agent_id")
    kinds = agents.groupby("group")["identification"].agg(set)
    assert kinds["altruists"] == {"set"} and kinds["competitors"] == {"set"}
    fig = fig_svo_ring(analysis)
    dots = [c for c in fig.axes[0].collections if c.get_offsets().shape[0] and c.get_facecolors().shape[0]
            and c.get_paths() and c.get_sizes().tolist() == [22]]
    drawn = sum(c.get_offsets().shape[0] for c in dots)
    assert drawn == int((agents["identification"] == "point").sum())  # a dot only for a point
    caption = dict((stem, text) for stem, _, text in FIGURES)["svo_ring"]
    assert "Long arcs are agents that do not act on their value" not in caption
    assert "only bounded" in caption


def test_groups_of_one_or_two_agents_get_the_stated_decision_level_interval(tmp_path, cli) -> None:
    # issue 19 item 3: the table and the figure use the same interval, and say which
    from hvae.analysis.dataset import Analysis
    from hvae.analysis.summary import SMALL_GROUP_METHOD

    scenario = tmp_path / "small.yaml"
    scenario.write_text(
        "name: small\nrounds: 12\nnetwork: {kind: complete}\npopulation:\n"
        "  - {name: one, count: 1, value: prosocial, decider: random}\n"
        "  - {name: two, count: 2, value: prosocial, decider: random}\n"
        "  - {name: three, count: 3, value: prosocial, decider: random}\n"
    )
    out = tmp_path / "run"
    assert cli("run", str(scenario), "--out", str(out)).returncode == 0
    vr = Analysis.of(out).group_vr.set_index("group")
    assert vr.loc["one", "interval_method"] == vr.loc["two", "interval_method"] == SMALL_GROUP_METHOD
    assert vr.loc["three", "interval_method"] == "t over agents"
    for group in ("one", "two"):
        low, high = vr.loc[group, "decision_vr_low"], vr.loc[group, "decision_vr_high"]
        assert 0 < low < vr.loc[group, "decision_vr"] < high < 1  # an interval, not [0, 1]
    html = (out / "report.html").read_text()
    assert f"groups of fewer than 3 agents (one, two): {SMALL_GROUP_METHOD}" in html.replace("&#x27;", "'")
