"""Checkpoints: everything a run needs to continue exactly where it stopped.

A model is rebuilt from its resolved scenario (``scenario.yaml``) — graph, placement, values and
deciders come out identical because they are drawn from the seed — and then the checkpoint
restores what changed since: the round counter, every agent's state (payoffs, histories, counts,
current values), the state of **every** random stream (matching, decisions per group, dynamics,
Mesa's own generators), the LLM agents' setup conversations and accounting, and how many rows of
each table the store had written. The runner writes a checkpoint right after each flush of rows,
to a temporary name and renamed into place, so a run killed at any moment (even by SIGKILL)
resumes from the last flushed round: rows written after that checkpoint are cut away on resume,
so no round is lost or duplicated.

    state = capture(model, rows_written)      # a plain dict, pickled by :func:`save`
    restore(model, state)                      # on a freshly built model of the same scenario
"""

from __future__ import annotations

import copy
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvae.simulation.model import HvaeModel

CHECKPOINT_FILE = "checkpoint.pkl"
FORMAT_VERSION = 1


def capture(model: HvaeModel, rows_written: dict[str, int], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The model's mutable state as a picklable dict."""
    deciders = {}
    for name, decider in model.deciders.items():
        snapshot = getattr(decider, "snapshot", None)
        if callable(snapshot):
            deciders[name] = snapshot()
    return {
        "format": FORMAT_VERSION,
        "round": model.round,
        "state": copy.deepcopy(model.state.__dict__),
        "initial_theta": model.initial_theta.copy(),
        "n_value_changes": model.n_value_changes.copy(),
        "payoff_at_last_update": model.payoff_at_last_update.copy(),
        "recent": list(model._recent),
        "streams": {name: rng.bit_generator.state for name, rng in model.streams.items()},
        "decider_rngs": {name: rng.bit_generator.state for name, rng in model.decider_rngs.items()},
        "mesa_rng": model.rng.bit_generator.state,
        "mesa_random": model.random.getstate(),
        "log_totals": dict(model.log.totals),
        "deciders": deciders,
        "rows_written": dict(rows_written),
        "extra": extra or {},
    }


def restore(model: HvaeModel, state: dict[str, Any]) -> None:
    """Put a captured state back into a freshly built model of the same scenario."""
    if state.get("format") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format {state.get('format')} is not supported by this hvae")
    model.round = state["round"]
    model.state.__dict__.update(copy.deepcopy(state["state"]))
    model.initial_theta = state["initial_theta"].copy()
    model.n_value_changes = state["n_value_changes"].copy()
    model.payoff_at_last_update = state["payoff_at_last_update"].copy()
    model._recent.clear()
    model._recent.extend(state["recent"])
    for name, rng_state in state["streams"].items():
        model.streams[name].bit_generator.state = rng_state
    for name, rng_state in state["decider_rngs"].items():
        model.decider_rngs[name].bit_generator.state = rng_state
    model.rng.bit_generator.state = state["mesa_rng"]
    model.random.setstate(state["mesa_random"])
    model.log.totals.update(state["log_totals"])
    for name, snapshot in state["deciders"].items():
        model.deciders[name].restore(snapshot)


def save(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path/checkpoint.pkl`` atomically."""
    target = Path(path) / CHECKPOINT_FILE
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as handle:
        pickle.dump(state, handle, protocol=pickle.HIGHEST_PROTOCOL)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)


def load(path: Path) -> dict[str, Any] | None:
    """The checkpoint in run folder ``path``, or None when there is none."""
    target = Path(path) / CHECKPOINT_FILE
    if not target.is_file():
        return None
    with open(target, "rb") as handle:
        return pickle.load(handle)
