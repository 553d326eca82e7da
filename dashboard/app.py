"""The dashboard page: a Solara app laid out the way Mesa's ``SolaraViz`` lays out a model.

A left column with the scenario's name, the **Controls** card (reset, play/pause,
step, how often to redraw) and the **Model parameters** card (population shares and size,
network family, update rule and strength, menus, seed — applied with one button, which rebuilds
the model); the main area with the network coloured by value, the value shares over time, the
mean payoff by group, decision VR by group beside chance and ceiling, and the latest decisions.

Why not ``SolaraViz`` itself: its Step button plays the round inside the browser event's handler,
so a round of LLM calls (seconds to minutes) freezes the page, and its Reset passes the
parameters to the model's constructor, where a bad value is an uncaught exception. Here every
round runs in a worker thread (:func:`play_rounds`, a ``solara.lab.task``): the page keeps
answering — pause, parameter edits — and shows a "thinking" bar while a round is in flight; a bad
parameter is the same one-line message ``hvae run`` prints, shown on the page, and the model
running before stays as it was. Typed fields are text read by
:func:`~hvae.dashboard.session.parse_control` (``abc``, ``nan``, ``1e400`` get a message, never a
value) and checked as a scenario as soon as they are entered; the population is at most
:data:`~hvae.dashboard.session.DASHBOARD_MAX_AGENTS` agents.

Every browser tab has its own model (Solara keeps module-level reactive values per tab).
Served by :mod:`hvae.dashboard.server`; the run is not written to disk.
"""

from __future__ import annotations

import io
import time
from dataclasses import replace

import solara
import solara.lab

from hvae.agents.llm.secrets import redact_text
from hvae.dashboard import figures
from hvae.dashboard.server import DashboardConfig
from hvae.dashboard.session import (
    MENU_DEFAULTS,
    NETWORK_DEFAULTS,
    NUMBER_FIELDS,
    UPDATE_RULES,
    Controls,
    DashboardSession,
    View,
    build_scenario,
    parse_control,
)
from hvae.scenarios.errors import ScenarioError
from hvae.scenarios.loader import load_scenario

#: Seconds between redraws while playing, so a fast model does not flood the browser.
PLAY_PAUSE_S = 0.15

session: solara.Reactive[DashboardSession | None] = solara.reactive(None)
view: solara.Reactive[View | None] = solara.reactive(None)
controls: solara.Reactive[Controls | None] = solara.reactive(None)
message: solara.Reactive[str | None] = solara.reactive(None)  # a bad parameter or a failed round
playing = solara.reactive(False)
redraw_every = solara.reactive(1)
in_flight = solara.reactive("")  # what the worker thread is doing now ("" = idle)


def _describe(error: BaseException) -> str:
    """One line for the page: a scenario error as it is, anything else by its kind and first line, capped."""
    text = str(error) if isinstance(error, ScenarioError) else f"{type(error).__name__}: {error}"
    lines = text.strip().splitlines() or [type(error).__name__]
    return redact_text(lines[0][:300])


def start(scenario) -> None:
    """Replace the tab's model by one built from ``scenario`` (the old one is closed)."""
    old = session.value
    new = DashboardSession(scenario)
    message.value = None
    controls.value = Controls.of(scenario)
    redraw_every.value = new.redraw_every
    view.value = new.view
    session.value = new
    if old is not None:
        old.close()


@solara.lab.task(prefer_threaded=True)
def play_rounds(rounds: int | None) -> None:
    """Play ``rounds`` rounds, or (``None``) play until paused or the scenario's rounds are done.

    Runs in a worker thread; the view is replaced every ``redraw_every`` rounds.
    """
    current = session.value
    if current is None:
        return
    try:
        while not current.finished:
            block = rounds if rounds is not None else max(1, redraw_every.value)
            in_flight.value = f"thinking: playing round {current.round + 1}"

            def announce(done: int) -> None:
                in_flight.value = f"thinking: playing round {done + 1}"

            view.value = current.advance(block, keep_going=lambda: rounds is not None or playing.value, on_round=announce)
            if rounds is not None or not playing.value:
                break
            time.sleep(PLAY_PAUSE_S)
    except Exception as error:  # noqa: BLE001 - shown on the page; the tab stays usable
        message.value = f"round {current.round + 1} failed: {_describe(error)}"
        view.value = current.view
    finally:
        playing.value = False
        in_flight.value = ""


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def Alert(kind: str, text: str, css_class: str):
    """A coloured message box (vuetify's alert; ``solara.Error`` 1.58 fails with the installed ipyvuetify)."""
    return solara.v.Alert(type=kind, outlined=True, children=[text], class_=css_class)


@solara.component
def Plot(draw, current: View, layout=None):
    """One figure as a PNG, redrawn only when the view changes."""
    png = solara.use_memo(lambda: _png(draw(current) if layout is None else draw(current, layout)), [current])
    solara.Image(png, width="100%", classes=["hvae-plot"])


@solara.component
def Figures(current: View):
    layout = solara.use_memo(lambda: figures.network_layout(current.n_agents, current.edges), [current.model_key])
    with solara.Columns([1, 1]):
        with solara.Column():
            Plot(figures.network_figure, current, layout)
            Plot(figures.payoff_figure, current)
        with solara.Column():
            Plot(figures.shares_figure, current)
            Plot(figures.vr_figure, current)
    solara.Text(f"Latest decisions (round {current.round}, first {len(current.latest)} rows; "
                "the round column counts from 0, as in decisions.parquet)", style={"font-weight": "bold"})
    if len(current.latest):
        # built from numbers and group names (validated: letters, digits, _.-); escaped all the same
        html = current.latest.to_html(index=False, float_format=lambda x: f"{x:.1f}", classes="hvae-latest", border=0)
        solara.HTML(tag="div", unsafe_innerHTML=html, style={"font-size": "0.8em", "overflow-x": "auto"})
    else:
        solara.Text("no round played yet")


@solara.component
def ControlsCard():
    current = session.value
    busy = play_rounds.pending
    finished = current is not None and current.finished

    def reset() -> None:
        if current is not None:
            start(current.scenario)

    def play_pause() -> None:
        if playing.value:
            playing.value = False
        else:
            playing.value = True
            play_rounds(None)

    with solara.Card("Controls"):
        with solara.Row():
            solara.Button("Reset", color="primary", on_click=reset, disabled=busy, classes=["hvae-reset"])
            solara.Button("Pause" if playing.value else "Play", color="primary", on_click=play_pause,
                          disabled=finished or (busy and not playing.value), classes=["hvae-play"])
            solara.Button("Step", color="primary", on_click=lambda: play_rounds(1), disabled=busy or finished,
                          classes=["hvae-step"])
        solara.SliderInt("redraw every (rounds)", value=redraw_every, min=1, max=50)
        if current is not None:
            solara.Text(f"round {current.view.round} of {current.scenario.rounds}", classes=["hvae-round"])
            if finished:
                solara.Text(" — done (more rounds: --set rounds=N)")
        if busy:
            solara.ProgressLinear(True)
            solara.Text(in_flight.value or "thinking", classes=["hvae-thinking"])


@solara.component
def ParametersCard():
    current = session.value
    values = controls.value
    if current is None or values is None:
        return
    busy = play_rounds.pending

    def apply() -> None:
        try:
            scenario = build_scenario(current.scenario, controls.value)
            start(scenario)
        except Exception as error:  # noqa: BLE001 - every failure to build is shown as one line
            message.value = _describe(error)

    def set_share(name: str, share: float) -> None:
        controls.value = replace(controls.value, shares={**controls.value.shares, name: share})

    def enter(name: str, text: str) -> None:
        """A typed field: read it (one-line message if it is not a number), then check it as a scenario."""
        try:
            value = parse_control(name, text)
        except ScenarioError as error:
            message.value = _describe(error)
            return
        new = replace(controls.value, **{name: value})
        controls.value = new
        try:
            build_scenario(current.scenario, new)
            message.value = None
        except Exception as error:  # noqa: BLE001 - the same one line Apply would show
            message.value = _describe(error)

    def number_field(name: str, value: int | float) -> None:
        label = NUMBER_FIELDS[name][0]
        solara.InputText(label, value=f"{value:g}" if isinstance(value, float) else str(value), continuous_update=False,
                         on_value=lambda text, name=name: enter(name, text), classes=[f"hvae-{name}"])

    with solara.Card("Model parameters"):
        solara.Text("Population shares (0 leaves a group out)")
        for name, share in values.shares.items():
            solara.SliderFloat(f"{name} ({share:.2f})", value=share, min=0.0, max=1.0, step=0.05,
                               on_value=lambda v, name=name: set_share(name, v))
        number_field("size", values.size)
        networks = list(NETWORK_DEFAULTS) + ([values.network] if values.network not in NETWORK_DEFAULTS else [])
        solara.Select("network family", values=networks, value=values.network,
                      on_value=lambda v: controls.set(replace(controls.value, network=v)))
        solara.Select("update rule", values=list(UPDATE_RULES), value=values.rule,
                      on_value=lambda v: controls.set(controls.value.with_rule(v)))
        number_field("strength", values.strength)
        number_field("every", values.every)
        solara.Select("menus", values=list(MENU_DEFAULTS), value=values.menus,
                      on_value=lambda v: controls.set(replace(controls.value, menus=v)))
        number_field("seed", values.seed)
        solara.Button("Apply (rebuilds the model)", color="secondary", on_click=apply, disabled=busy,
                      classes=["hvae-apply"])


@solara.component
def Page():
    config = solara.use_memo(DashboardConfig.from_env, [])

    def first_model() -> None:
        if session.value is None:
            try:
                start(load_scenario(config.scenario, config.overrides, seed=config.seed))
            except Exception as error:  # noqa: BLE001 - shown on the page
                message.value = _describe(error)

    solara.use_memo(first_model, [])
    current = session.value
    # When the tab's session ends (the tab closed), release its model: LLM worker processes, clients.
    latest = solara.use_ref(None)
    latest.current = current

    def close_when_gone():
        def close() -> None:
            if latest.current is not None:
                latest.current.close()

        return close

    solara.use_effect(close_when_gone, [])
    title = current.scenario.name if current is not None else config.scenario
    solara.Title(f"hvae dashboard: {title}")
    with solara.Columns([1, 3], style={"align-items": "flex-start", "padding": "8px 16px"}):
        with solara.Column(style={"min-width": "300px"}):
            solara.Text(f"hvae dashboard — {title}", style={"font-size": "1.3em", "font-weight": "bold"})
            ControlsCard()
            ParametersCard()
        with solara.Column():
            if message.value:
                Alert("error", message.value, "hvae-error")
            if view.value is not None:
                if current is not None and current.scenario.uses_llm:
                    Alert("info", f"LLM groups present: a round waits for their replies ({view.value.llm_calls} LLM calls so far).",
                          "hvae-llm")
                Figures(view.value)
