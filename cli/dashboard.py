"""``hvae dashboard SCENARIO``: watch a population play in the browser (see :mod:`hvae.dashboard`).

The scenario is checked first, as ``hvae validate`` does, so a bad file or ``--set`` is one
``hvae: error:`` line before any server starts. Then the page is served on the loopback address
(``--host`` to change it) until Ctrl-C.
"""

from __future__ import annotations

import click

from hvae.cli.errors import UserError, friendly_errors
from hvae.cli.options import SET_HELP
from hvae.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, DashboardConfig, serve, solara_available
from hvae.scenarios.loader import load_scenario


@click.command()
@click.argument("scenario")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port to serve the page on.")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on (the loopback address by default: the page can run any scenario).")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE", help=SET_HELP)
@click.option("--seed", type=int, help="Override the scenario's seed.")
@friendly_errors
def dashboard(scenario: str, port: int, host: str, overrides: tuple[str, ...], seed: int | None) -> None:
    """Watch SCENARIO play in the browser: network, value shares, payoffs, decision VR, latest decisions."""
    from hvae.simulation.model import HvaeModel

    if not solara_available():
        raise UserError('the dashboard needs its optional dependencies: pip install "hvae[dashboard]" '
                        '(in a checkout: pip install -e ".[dashboard]")')
    config = load_scenario(scenario, overrides, seed=seed)
    HvaeModel(config).close()  # network and menus are checked when the model is built
    click.echo(f"hvae dashboard: {config.name} ({config.n_agents} agents); Ctrl-C stops the server", err=True)
    serve(
        DashboardConfig(scenario, tuple(overrides), seed), host=host, port=port,
        on_ready=lambda url: click.echo(f"dashboard: {url}"),
    )
