"""``hvae serve-oracle``: the value-rational OpenAI-compatible server (see :mod:`hvae.agents.llm.oracle_server`).

::

    hvae serve-oracle --port 8765 --beta 2 --position-bias 1 --invalid-rate 0.05
    hvae run validity_demo            # in another terminal: its backend 'oracle_server' points here

It listens on 127.0.0.1 only (there is no option to listen elsewhere) until Ctrl-C or SIGTERM. Requests are
read by :mod:`hvae.agents.llm.loopback`: bodies up to 1 MiB, every field of a chat request checked, HTTP 400
(or 411/413/431) with a one-line message for anything else, thousands of keep-alive clients at once.
"""

from __future__ import annotations

import signal
import threading

import click

from hvae.cli.errors import UserError, friendly_errors


@click.command("serve-oracle")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option("--beta", type=float, default=1.0, show_default=True, help="Inverse temperature in 1/coin (0: uniform random chooser).")
@click.option("--position-bias", type=float, default=0.0, show_default=True, help="Logit bonus of the option shown first.")
@click.option("--invalid-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Probability of a reply that names no option.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed mixed into every reply's random draws.")
@friendly_errors
def serve_oracle(port: int, beta: float, position_bias: float, invalid_rate: float, seed: int) -> None:
    """Serve a model that follows the value in its prompt (logit chooser) at http://127.0.0.1:PORT/v1."""
    from hvae.agents.llm.loopback import raise_open_file_limit
    from hvae.agents.llm.oracle_server import OracleModel, OracleServer

    try:
        model = OracleModel(beta=beta, position_bias=position_bias, invalid_rate=invalid_rate, seed=seed)
    except ValueError as error:
        raise UserError(str(error)) from None
    raise_open_file_limit()  # thousands of concurrent clients need as many sockets
    server = OracleServer(model, port)
    try:
        server.start()
    except OSError as error:
        raise UserError(f"--port {port}: cannot listen on 127.0.0.1:{port} ({error.strerror or error})") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(
        f"oracle server: {server.base_url} (model {model.model}, beta {beta:g}, position bias {position_bias:g}, "
        f"invalid rate {invalid_rate:g}, seed {seed}); Ctrl-C stops it",
    )
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        click.echo(f"oracle server stopped after {server.counts['ok']} replies and {server.counts['error']} refused requests")
