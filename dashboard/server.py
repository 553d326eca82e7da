"""Serve the dashboard page (:mod:`hvae.dashboard.app`) with Solara's server on a local port.

``hvae dashboard SCENARIO`` calls :func:`serve`. What to show is handed to the page through one
environment variable (:data:`CONFIG_ENV`, JSON: scenario, ``--set`` overrides, seed), because
Solara builds the page in its own server; every browser tab gets its own model. The server
listens on the loopback address unless told otherwise: the page can run any scenario, LLM
backends included, so it is not for an open network.

Solara's usage telemetry and its web-font download are switched off (hvae runs offline): the
page works without any connection beyond the browser's to this server.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

#: Environment variable carrying the dashboard's configuration from the CLI to the page.
CONFIG_ENV = "HVAE_DASHBOARD_CONFIG"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8521  # Mesa's classic visualisation port; 8765 is the oracle server's (validity_demo)


@dataclass(frozen=True)
class DashboardConfig:
    """What the page opens: a scenario (file or shipped name), ``--set`` overrides and a seed."""

    scenario: str
    overrides: tuple[str, ...] = ()
    seed: int | None = None

    def to_env(self) -> str:
        return json.dumps({"scenario": self.scenario, "overrides": list(self.overrides), "seed": self.seed})

    @classmethod
    def from_env(cls) -> DashboardConfig:
        """The configuration :func:`serve` set (``oracle_population`` when the page is served otherwise)."""
        raw = os.environ.get(CONFIG_ENV)
        if not raw:
            return cls("oracle_population")
        data = json.loads(raw)
        return cls(str(data["scenario"]), tuple(data.get("overrides") or ()), data.get("seed"))


def solara_available() -> bool:
    """Whether the optional dashboard dependencies are installed."""
    import importlib.util

    return importlib.util.find_spec("solara") is not None


def serve(config: DashboardConfig, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, on_ready=None) -> None:
    """Run the dashboard server until interrupted (Ctrl-C).

    ``on_ready(url)`` is called once the server accepts connections.
    """
    os.environ[CONFIG_ENV] = config.to_env()
    os.environ["SOLARA_APP"] = "hvae.dashboard.app"
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    os.environ.setdefault("SOLARA_ASSETS_FONTAWESOME_ENABLED", "False")
    import solara.server.settings as settings
    import uvicorn

    settings.main.mode = "production"
    settings.telemetry.mixpanel_enable = False

    server = uvicorn.Server(
        uvicorn.Config("solara.server.starlette:app", host=host, port=port, log_level="warning", access_log=False)
    )
    if on_ready is not None:
        import threading
        import time

        def announce() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                on_ready(f"http://{host}:{port}/")

        threading.Thread(target=announce, daemon=True).start()
    server.run()
