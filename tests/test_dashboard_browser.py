"""The dashboard in a real headless browser: ``hvae dashboard`` as a user starts it, Chromium drives the page.

The browser is the system's Chromium (``$HVAE_CHROMIUM`` or ``/usr/bin/chromium``, installed by
``.ci/install-browser``, which the README's test command and ``.ci/run`` call), driven by
playwright. A missing browser is a test **failure** with the command that installs it, never a
skip. Set ``HVAE_DASHBOARD_SCREENSHOT=FILE.png`` to save the page after a few rounds (the
README's screenshot is made that way).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import expect, sync_playwright

from llm_stub_server import StubServer

pytestmark = pytest.mark.slow

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 60_000


def chromium_path() -> str:
    path = os.environ.get("HVAE_CHROMIUM", "/usr/bin/chromium")
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"no Chromium at {path}: the dashboard's browser test needs it. Run `bash .ci/install-browser` "
            "(Debian/Ubuntu: apt-get install chromium) or set HVAE_CHROMIUM=/path/to/chromium",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dashboard_server(*args: str) -> Iterator[str]:
    """``hvae dashboard ARGS --port P`` in a subprocess; yields the page's URL once it answers."""
    port = free_port()
    executable = Path(sys.executable).with_name("hvae")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m", "hvae.cli.main"]
    env = {key: value for key, value in os.environ.items() if key != "HVAE_DEBUG"}
    process = subprocess.Popen([*command, "dashboard", *args, "--port", str(port)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"hvae dashboard exited with {process.returncode}: {process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("hvae dashboard did not listen within 60 s")
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser():

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    yield page
    context.close()


def plot_sources(page) -> list[str]:
    plots = page.locator(".hvae-plot")
    plots.first.wait_for()
    return [plots.nth(i).get_attribute("src") for i in range(plots.count())]


def round_text(page) -> str:
    return page.locator(".hvae-round").inner_text()


def test_page_loads_steps_and_shows_a_bad_parameter(page) -> None:
    # --set reaches the page: imitation after every round, so the value shares move as it plays
    with dashboard_server("oracle_population", "--set", "dynamics.rule=imitation", "--set", "dynamics.every=1") as url:
        page.goto(url)
        page.get_by_text("round 0 of 24").wait_for()
        before = plot_sources(page)
        assert len(before) == 4  # network, value shares, payoff by group, decision VR

        page.locator(".hvae-step").click()
        page.get_by_text("round 1 of 24").wait_for()
        page.wait_for_function("(old) => document.querySelectorAll('.hvae-plot')[1].src !== old", arg=before[1])
        after = plot_sources(page)
        assert after[1:] != before[1:]  # shares, payoff and VR plots were redrawn for round 1
        page.get_by_text("Latest decisions (round 1").wait_for()
        rows = page.locator("table.hvae-latest tbody tr")
        assert rows.count() == 12 and "altruists" in page.locator("table.hvae-latest").inner_text()

        page.locator(".hvae-play").click()  # play to round 12, then pause
        page.get_by_text("round 12 of 24").wait_for()
        page.locator(".hvae-play").click()
        page.locator(".hvae-thinking").wait_for(state="detached")
        played = int(round_text(page).split()[1])
        assert 12 <= played < 24
        if os.environ.get("HVAE_DASHBOARD_SCREENSHOT"):
            page.screenshot(path=os.environ["HVAE_DASHBOARD_SCREENSHOT"])

        size = page.get_by_label("population size")
        size.fill("3")
        size.press("Enter")
        page.locator(".hvae-apply").click()
        error = page.locator(".hvae-error")
        error.wait_for()
        assert "group 'competitors' gets 0 agents at size 3" in error.inner_text()
        assert round_text(page) == f"round {played} of 24"  # the model that ran before is still there

        size.fill("16")
        size.press("Enter")
        page.locator(".hvae-apply").click()
        page.get_by_text("round 0 of 24").wait_for()  # a good parameter rebuilds the model
        expect(page.locator(".hvae-error")).to_have_count(0)


def test_page_stays_responsive_while_llm_calls_are_in_flight(page, tmp_path) -> None:
    """Each LLM call takes 1.5 s: while a round waits, the page shows "thinking" and still answers Pause."""
    scenario = {
        "name": "slow_llm", "seed": 1, "rounds": 6,
        "population": [
            {"name": "llm", "count": 2, "value": "prosocial", "decider": {"kind": "llm", "backend": "srv"}},
            {"name": "orc", "count": 2, "value": "competitive", "decider": "oracle"},
        ],
        "network": {"kind": "complete"},
        "cache": {"enabled": False},
    }
    with StubServer(latency_s=1.5) as stub:
        scenario["backends"] = {"srv": {"kind": "openai", "base_url": stub.base_url, "model": "m", "timeout_s": 30}}
        path = tmp_path / "slow_llm.yaml"
        path.write_text(yaml.safe_dump(scenario))
        with dashboard_server(str(path)) as url:
            page.goto(url)
            page.get_by_text("round 0 of 6").wait_for()
            page.locator(".hvae-play").click()
            thinking = page.locator(".hvae-thinking")
            thinking.wait_for()
            assert "thinking: playing round 1" in thinking.inner_text()
            page.locator(".hvae-play").click()  # Pause, while round 1's calls are in flight
            page.locator(".hvae-play", has_text="Play").wait_for()
            assert thinking.is_visible(), "the round should still be waiting for its LLM calls"
            thinking.wait_for(state="detached", timeout=TIMEOUT_MS)
            assert round_text(page) == "round 1 of 6"  # paused after the round in flight
            assert page.get_by_text("LLM calls so far").inner_text().startswith("LLM groups present")
        assert stub.counts["ok"] >= 2  # the two LLM agents decided through the backend


def test_missing_browser_is_a_failure_not_a_skip(monkeypatch) -> None:
    monkeypatch.setenv("HVAE_CHROMIUM", "/nonexistent/chromium")
    with pytest.raises(pytest.fail.Exception, match="bash .ci/install-browser"):
        chromium_path()
