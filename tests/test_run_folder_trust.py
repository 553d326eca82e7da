"""A run folder from someone else (issue 20, items 1 and 2): it cannot steer credentials or the terminal."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from conftest import assert_user_error, llm_scenario_data
from llm_stub_server import StubServer

from hvae.agents.llm.secrets import redact_text, redact_url, scrub_scenario, strip_credentials
from hvae.experiments.sweep.spec import value_label
from hvae.files.untrusted import one_line
from hvae.scenarios.loader import validate_data
from hvae.simulation.runner import RunInterrupted, play_scenario

VICTIM_KEY = "sk-VICTIM-SECRET"
OTHER_SECRET = "ghp_TOPSECRET"
SECRET_ENV = {"HVAE_TEST_VICTIM_KEY": VICTIM_KEY, "HVAE_TEST_OTHER_SECRET": OTHER_SECRET}


class CaptureServer:
    """An HTTP server on 127.0.0.1 that records every request's path and Authorization header."""

    def __init__(self, status: int = 500, body: bytes = b'{"error": {"message": "capture"}}') -> None:
        self.requests: list[tuple[str, str | None]] = []
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self) -> None:
                capture.requests.append((self.path, self.headers.get("Authorization")))
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer  # noqa: N815 - the names http.server calls

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]

    def __enter__(self) -> CaptureServer:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def _llm_data(base_url: str, rounds: int = 3) -> dict:
    return llm_scenario_data("trust", base_url, rounds)


def _interrupted_llm_run(folder, base_url: str):
    def stop(model):
        raise KeyboardInterrupt

    with pytest.raises(RunInterrupted):
        play_scenario(validate_data(_llm_data(base_url), "trust"), folder, on_round=stop)
    return folder


def _plant_backend(folder, base_url: str, api_key_env: str) -> None:
    """The attack: edit the folder's scenario.yaml to send the victim's variables to another host."""
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    data["backends"]["srv"].update(base_url=base_url, api_key_env=api_key_env)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data))


# ---------------------------------------------------------------------------------- item 1: trust
@pytest.mark.slow
def test_edited_folder_cannot_send_credentials_to_its_host(tmp_path, cli) -> None:
    with StubServer() as stub:
        folder = _interrupted_llm_run(tmp_path / "run", stub.base_url)
    before = json.loads((folder / "summary.json").read_text())
    with CaptureServer() as capture:
        _plant_backend(folder, f"http://127.0.0.1:{capture.port}/${{HVAE_TEST_OTHER_SECRET}}/v1", "HVAE_TEST_VICTIM_KEY")
        result = cli("run", "--resume", str(folder), env=SECRET_ENV, timeout=120)
    assert capture.requests == []  # nothing reached the folder's host
    assert_user_error(result, "--trust-backends")
    line = result.stderr
    for shown in ("$HVAE_TEST_VICTIM_KEY", "$HVAE_TEST_OTHER_SECRET", f"127.0.0.1:{capture.port}"):
        assert shown in line, line
    assert VICTIM_KEY not in line + result.stdout and OTHER_SECRET not in line + result.stdout
    assert json.loads((folder / "summary.json").read_text()) == before  # the folder is untouched


@pytest.mark.slow
def test_trust_backends_is_the_users_consent(tmp_path, cli) -> None:
    with StubServer() as stub:
        folder = _interrupted_llm_run(tmp_path / "run", stub.base_url)
    with CaptureServer() as capture:
        _plant_backend(folder, f"http://127.0.0.1:{capture.port}/v1", "HVAE_TEST_VICTIM_KEY")
        result = cli("run", "--resume", str(folder), "--trust-backends", "--no-report", env=SECRET_ENV, timeout=120)
    assert capture.requests, result.stderr  # with consent the folder's backend is used as configured
    assert {auth for _, auth in capture.requests} == {f"Bearer {VICTIM_KEY}"}
    assert VICTIM_KEY not in result.stderr + result.stdout


def test_resume_of_a_folder_without_credentials_needs_no_consent(tmp_path) -> None:
    from hvae.simulation.credentials import check_backends_trusted

    scenario = validate_data(_llm_data("http://127.0.0.1:9/v1"), "trust")
    assert check_backends_trusted(scenario, tmp_path, trusted=False) == []
    keyed = validate_data({**_llm_data("http://h.example/v1"), "backends": {"srv": {
        "kind": "openai", "base_url": "http://h.example/${A_VAR}/v1", "model": "m", "api_key_env": "B_VAR"}}}, "trust")
    assert check_backends_trusted(keyed, tmp_path, trusted=True) == [
        "backend 'srv' would send $B_VAR, $A_VAR to h.example"
    ]


def test_trust_backends_without_resume_is_a_user_error(cli) -> None:
    assert_user_error(cli("run", "quickstart", "--trust-backends"), "--trust-backends goes with --resume")


# ---------------------------------------------------------------------------------- item 1: redaction
@pytest.mark.parametrize(
    ("url", "shown", "written"),
    [
        ("http://user:hun@ter2@host/v1", "http://***@host/v1", "http://host/v1"),
        ("https://h/v1?key=abc&model=m", "https://h/v1?key=***&model=m", "https://h/v1?key=***&model=m"),
        ("https://h/v1?api_key=a&sig=b#f", "https://h/v1?api_key=***&sig=***#f", "https://h/v1?api_key=***&sig=***#f"),
        ("https://u:p@h:8080/v1?access_token=t", "https://***@h:8080/v1?access_token=***", "https://h:8080/v1?access_token=***"),
        ("https://${U}:${P}@h/v1?key=${K}", "https://${U}:${P}@h/v1?key=${K}", "https://${U}:${P}@h/v1?key=${K}"),
        ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1"),
    ],
)
def test_urls_are_redacted_by_their_parts(url, shown, written) -> None:
    assert redact_url(url) == shown
    assert strip_credentials(url) == written
    assert redact_text(f"error at {url} (x)") == f"error at {shown} (x)"


def test_redaction_maps_over_replica_lists_and_folder_names() -> None:
    data = {"backends": {"a": {"base_url": ["http://u:hun@ter2@h1/v1", "http://h2/v1?key=zzz"]}}}
    assert scrub_scenario(data)["backends"]["a"]["base_url"] == ["http://h1/v1", "http://h2/v1?key=***"]
    label = value_label("http://user:hun@ter2@host/v1?token=s3cr3t")
    assert "ter2" not in label and "s3cr3t" not in label and "host" in label


@pytest.mark.slow
def test_hostile_url_credentials_never_reach_any_file(tmp_path, cli) -> None:
    with StubServer() as stub:
        url = stub.base_url.replace("http://", "http://researcher:hun@ter2@")
        sweep_dir = tmp_path / "work"
        sweep_dir.mkdir()
        (sweep_dir / "base.yaml").write_text(yaml.safe_dump({**_llm_data(stub.base_url), "rounds": 1}))
        (sweep_dir / "sweep.yaml").write_text(yaml.safe_dump(
            {"name": "s", "scenario": "base.yaml", "seeds": [1], "grid": {"backends.srv.base_url": [url]}}
        ))
        result = cli("sweep", "sweep.yaml", "--workers", "1", "--out", "out", cwd=sweep_dir, timeout=240)
    assert result.returncode == 0, result.stderr
    for secret in ("ter2", "researcher"):
        assert secret not in result.stdout + result.stderr
        leaks = [str(p) for p in (sweep_dir / "out").rglob("*") if secret in p.name or (p.is_file() and secret.encode() in p.read_bytes())]
        assert leaks == [], leaks
    assert sorted(p.name for p in (sweep_dir / "out").iterdir() if p.is_dir())  # the run folder exists


# ---------------------------------------------------------------------------------- item 2: terminal
HOSTILE = "boom\nsecond line\x1b[31mRED\x1b[0m\x1b]0;title\x07\r" + "x" * 3400


def test_one_line_removes_escapes_and_caps_length() -> None:
    text = one_line(HOSTILE, limit=200)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\x07" not in text
    assert "title" not in text  # the OSC payload goes with its sequence
    assert text.startswith("boom second lineRED x") and len(text) == 200


@pytest.mark.slow
def test_backend_error_text_is_one_plain_line(tmp_path, cli) -> None:
    body = json.dumps({"error": {"message": HOSTILE, "type": "x"}}).encode()
    with CaptureServer(status=400, body=body) as capture:
        scenario = tmp_path / "s.yaml"
        scenario.write_text(yaml.safe_dump(_llm_data(f"http://127.0.0.1:{capture.port}/v1", rounds=1)))
        result = cli("run", str(scenario), "--out", str(tmp_path / "run"), "--no-report", timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hvae: error: "), result.stderr
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert len(result.stderr) < 1200, len(result.stderr)


@pytest.mark.slow
def test_summary_of_a_hostile_folder_prints_no_escape_sequences(tmp_path, cli) -> None:
    from test_checkpoint import interrupted_run

    folder = interrupted_run(tmp_path / "run")
    summary = json.loads((folder / "summary.json").read_text())
    summary.update(scenario="\x1b]0;pwned\x07\x1b[2J" + "n" * 5000, status="interrupted\n\x1b[31mcomplete")
    (folder / "summary.json").write_text(json.dumps(summary))
    result = cli("summary", str(folder))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout + result.stderr and "\x07" not in result.stdout
    assert "n" * 300 not in result.stdout
