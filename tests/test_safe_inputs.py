"""Names, paths and credentials from scenario files (issue 11, item 5)."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import BASE_SCENARIO, assert_user_error, llm_scenario_data
from llm_stub_server import StubServer

from hvae.scenarios.loader import ScenarioError, validate_data
from hvae.simulation.runner import RunInterrupted, play_scenario


# ---------------------------------------------------------------------------------- names
@pytest.mark.parametrize("name", ["..", ".", "...", "a/b", "", "x y"])
def test_scenario_name_must_be_one_safe_path_component(name) -> None:
    with pytest.raises(ScenarioError, match="name"):
        validate_data({**BASE_SCENARIO, "name": name}, "names")


@pytest.mark.parametrize("name", ["run.v2", "a..b", "_x", "A-1"])
def test_ordinary_names_still_work(name) -> None:
    assert validate_data({**BASE_SCENARIO, "name": name}, "names").name == name


def test_sweep_named_dotdot_is_refused_and_writes_nothing(tmp_path, cli) -> None:
    work = tmp_path / "work"
    (work / "runs").mkdir(parents=True)
    (work / "base.yaml").write_text(yaml.safe_dump({**BASE_SCENARIO, "rounds": 2}))
    (work / "sweep.yaml").write_text("name: ..\nscenario: base.yaml\nseeds: [1]\n")
    result = cli("sweep", "sweep.yaml", "--workers", "1", cwd=work)
    assert_user_error(result, "name")
    assert sorted(p.name for p in work.iterdir()) == ["base.yaml", "runs", "sweep.yaml"]
    assert not any((work / "runs").iterdir())


# ---------------------------------------------------------------------------------- network files
def _network_scenario(tmp_path, edge_file) -> str:
    data = {**BASE_SCENARIO, "network": {"kind": "file", "path": str(edge_file)}}
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.mark.slow
def test_network_file_error_quotes_only_a_short_excerpt(tmp_path, cli) -> None:
    secret_line = "BEGIN-PRIVATE-" + "k" * 5000  # any file can be named; its lines must not be dumped
    edge_file = tmp_path / "not_edges.txt"
    edge_file.write_text(f"0 1\n{secret_line}\n")
    result = cli("validate", _network_scenario(tmp_path, edge_file))
    assert_user_error(result, f"{edge_file}:2:")
    assert len(result.stderr) < 400, len(result.stderr)
    assert "BEGIN-PRIVATE-" in result.stderr and "k" * 100 not in result.stderr


@pytest.mark.slow
def test_network_file_that_is_not_text_is_one_error_line(tmp_path, cli) -> None:
    edge_file = tmp_path / "blob.bin"
    edge_file.write_bytes(bytes(range(256)) * 40)
    result = cli("validate", _network_scenario(tmp_path, edge_file))
    assert_user_error(result, str(edge_file))
    assert len(result.stderr) < 400


# ---------------------------------------------------------------------------------- credentials
SECRET = "pw-5up3r-s3cret"


def _llm_data(base_url: str, rounds: int = 2) -> dict:
    return llm_scenario_data("creds", base_url, rounds)


def _files_containing(folder, text: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


@pytest.mark.slow
def test_base_url_credentials_are_never_written(tmp_path, cli) -> None:
    with StubServer() as stub:
        plain = stub.base_url
        url = plain.replace("http://", f"http://researcher:{SECRET}@")
        scenario = tmp_path / "creds.yaml"
        scenario.write_text(yaml.safe_dump(_llm_data(url)))
        out = tmp_path / "run"
        result = cli("run", str(scenario), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert _files_containing(out, SECRET) == []
    assert _files_containing(out, "researcher") == []
    written = yaml.safe_load((out / "scenario.yaml").read_text())
    assert written["backends"]["srv"]["base_url"] == plain
    assert json.loads((out / "summary.json").read_text())["redacted"] == ["backends.srv.base_url"]


@pytest.mark.slow
def test_credentials_are_masked_in_the_error_line(tmp_path, cli) -> None:
    scenario = tmp_path / "creds.yaml"
    scenario.write_text(yaml.safe_dump(_llm_data(f"http://researcher:{SECRET}@127.0.0.1:9/v1")))
    out = tmp_path / "run"
    result = cli("run", str(scenario), "--out", str(out))
    assert result.returncode == 1
    assert "http://***@127.0.0.1:9/v1" in result.stderr and SECRET not in result.stderr + result.stdout
    assert _files_containing(out, SECRET) == []


@pytest.mark.slow
def test_resume_without_the_removed_credentials_is_refused(tmp_path, cli) -> None:
    with StubServer() as stub:
        url = stub.base_url.replace("http://", f"http://researcher:{SECRET}@")

        def stop(model):
            raise KeyboardInterrupt

        with pytest.raises(RunInterrupted):
            play_scenario(validate_data(_llm_data(url, rounds=3), "creds"), tmp_path / "run", on_round=stop)
    assert_user_error(cli("run", "--resume", str(tmp_path / "run")), "backends.srv.base_url had credentials")


@pytest.mark.slow
def test_credentials_from_environment_references(tmp_path, cli) -> None:
    with StubServer() as stub:
        url = stub.base_url.replace("http://", "http://${HVAE_TEST_PROXY_USER}:${HVAE_TEST_PROXY_PASS}@")
        scenario = tmp_path / "refs.yaml"
        scenario.write_text(yaml.safe_dump(_llm_data(url)))
        out = tmp_path / "run"
        env = {"HVAE_TEST_PROXY_USER": "researcher", "HVAE_TEST_PROXY_PASS": SECRET}
        result = cli("run", str(scenario), "--out", str(out), "--no-report", env=env)
        assert result.returncode == 0, result.stderr
        assert stub.counts["ok"] > 0
    assert _files_containing(out, SECRET) == []
    written = yaml.safe_load((out / "scenario.yaml").read_text())
    assert written["backends"]["srv"]["base_url"] == url  # the references, resumable from the environment

    missing = cli("run", str(scenario), "--out", str(tmp_path / "other"))
    assert_user_error(missing, "${HVAE_TEST_PROXY_USER}")
    assert not (tmp_path / "other").exists()
