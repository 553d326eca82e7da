"""Surrogate policies: an LLM group's behaviour distilled into a calibrated logit choice model.

A **surrogate policy** stands in for LLM agents when a population is too large (or too costly) to
play with the model itself. It is fitted from a run's decisions (:mod:`hvae.analysis.distil`,
``hvae distil``) and played by the ``surrogate`` decider (:class:`SurrogateDecider`). The model is
the revealed-angle choice model (:mod:`hvae.agents.revealed`) with one more term::

    P(i) ∝ exp(β · U_θ(i) + b · [i shown first] + ρ · g(i) · partner_gave)

* ``U_θ(i) = cos θ · s_i + sin θ · o_i`` — the SVO ring utility of option i (DESIGN.md §1.1);
* ``[i shown first]`` — 1 for the option displayed first (letter "A"), else 0; ``b`` is the
  first-position bonus in logit units (0 where the display order is unknown);
* ``g(i)`` — the generosity of option i: where its "other" amount sits in the menu's range of
  "other" amounts, 0 = least generous, 1 = most generous (:func:`hvae.agents.svo.option_generosity`,
  the definition behind ``History.generosity``; 0 for every option of a menu that gives the other
  the same whatever is chosen);
* ``partner_gave`` — the generosity the agent **received in its most recent game** (what its last
  partner gave it, on that game's menu, 0..1; the mean over partners when it played several; a round
  whose games were all void leaves no entry): ``History.generosity[:, 0]``; **0 when unknown**
  (before its first game, or on a menu that gives the other the same). Under fixed pairs this is
  what the current partner gave last time. ``ρ > 0`` is reciprocity: the more generous the last
  partner, the more generous options gain.

With ``ρ = 0`` the probabilities are exactly :meth:`hvae.agents.revealed.ChoiceModelFit.probabilities`.
An invalid-reply rate completes the model: the surrogate's agents give an unusable reply as often as
the LLM agents did, and the same fallback applies.

**Units.** A policy has one parameter set (:class:`PolicyUnit`) per *unit*: per population group
(``by: group``; key = group name), per value angle (``by: value``; key = the angle as text,
``"45"``, ``"-22.5"``; a surrogate agent follows its *current* value, so values spread by the
dynamics carry their own unit's behaviour) or per agent (``by: agent``; key = agent id as text).

**The policy file** (YAML, written by :meth:`SurrogatePolicy.save`, read by :func:`load_policy`)::

    format: hvae-surrogate-policy/1
    by: group                         # group | value | agent
    features: [utility, position, reciprocity]   # the terms the fit included
    units:
      llm:
        theta: 44.8                   # degrees
        beta: 0.31                    # 1/coin
        position: 0.52                # b; 0.0 when dropped
        reciprocity: 0.0              # ρ; 0.0 when dropped
        invalid_rate: 0.012
        n_decisions: 1440
        intervals: {theta: [42.1, 47.6], beta: [0.26, 0.37], position: [0.31, 0.74]}
        dropped: {reciprocity: "partners' gifts do not vary"}
        notes: {}                     # e.g. beta: "at its bound: choices perfectly separated"
    provenance: {run: runs/x, model: "openai:gpt-4o", decisions: 1440, log_likelihood: -2113.4, ...}

A term listed in a unit's ``dropped`` (the data could not identify it) or missing from ``features``
has the value 0.0 — it is *left out*, never guessed. Reading checks all of this and reports the
first problem as one :class:`PolicyError` line naming the file and the field.

    >>> import numpy as np
    >>> p = choice_probabilities(np.array([0.0]), np.array([1.0]), np.array([0.0]), np.array([0.0]),
    ...                          np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([-1]), np.array([0.0]))
    >>> np.round(p, 4)   # e^1 : e^0
    array([[0.7311, 0.2689]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hvae.agents.deciders import NO_CHOICE, CodedColumn, Decider, DecisionRequest, Decisions, register_decider
from hvae.agents.limits import MAX_YAML_DEPTH
from hvae.agents.svo import option_generosity
from hvae.files.atomic import write_bytes_atomic
from hvae.files.safe_yaml import YamlProblem, parse_yaml
from hvae.files.untrusted import UnsafeFile, one_line, read_regular

__all__ = [
    "FEATURES",
    "PolicyError",
    "PolicyUnit",
    "SurrogateConfig",
    "SurrogateDecider",
    "SurrogatePolicy",
    "choice_probabilities",
    "load_policy",
    "value_key",
]

#: The terms a policy can keep, in the order of the model.
FEATURES: tuple[str, ...] = ("utility", "position", "reciprocity")
#: The parameter of each term in a :class:`PolicyUnit`.
PARAMETER_OF = {"utility": "beta", "position": "position", "reciprocity": "reciprocity"}
FORMAT = "hvae-surrogate-policy/1"
#: Largest policy file read, in bytes (a per-agent policy of 100,000 agents is ~40 MB).
MAX_POLICY_BYTES = 64 << 20
#: Bound of any logit parameter in a policy (|β|, |b|, |ρ|): e^50 already means "always".
PARAMETER_MAX = 1e6


class PolicyError(ValueError):
    """A policy file (or a policy asked for something it has no unit for); the message is one line."""


def value_key(theta: float) -> str:
    """The text key of a value angle in a ``by: value`` policy: ``45.0`` → ``"45"``, ``-22.5`` → ``"-22.5"``."""
    text = f"{round(float(theta), 6):.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyUnit(_Strict):
    """One unit's fitted parameters (a group, a value or an agent; see the module docstring)."""

    theta: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)  # degrees
    beta: float = Field(ge=-PARAMETER_MAX, le=PARAMETER_MAX, allow_inf_nan=False)  # 1/coin
    position: float = Field(default=0.0, ge=-PARAMETER_MAX, le=PARAMETER_MAX, allow_inf_nan=False)  # b
    reciprocity: float = Field(default=0.0, ge=-PARAMETER_MAX, le=PARAMETER_MAX, allow_inf_nan=False)  # ρ
    invalid_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    n_decisions: int = Field(default=0, ge=0)
    #: 95% interval of each parameter that has one (``theta``, ``beta``, ``position``, ``reciprocity``,
    #: ``invalid_rate``), as ``[low, high]``.
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)
    #: Terms the data could not identify (term → why); their parameter is 0.0.
    dropped: dict[str, str] = Field(default_factory=dict)
    #: What a reader must know about a kept parameter (parameter → note), e.g. a β at its bound
    #: (perfectly separated choices: only a lower bound is known) or a θ that β ≈ 0 leaves unidentified.
    notes: dict[str, str] = Field(default_factory=dict)

    @field_validator("intervals")
    @classmethod
    def _known_intervals(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        known = ("theta", "beta", "position", "reciprocity", "invalid_rate")
        for name, (low, high) in value.items():
            if name not in known:
                raise ValueError(f"unknown parameter {name!r} (known: {', '.join(known)})")
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(f"interval of {name} must be two finite numbers, low <= high (got [{low}, {high}])")
        return value

    @model_validator(mode="after")
    def _dropped_is_zero(self) -> PolicyUnit:
        for term in self.dropped:
            if term not in FEATURES or term == "utility":
                raise ValueError(f"dropped: unknown term {term!r} (only position and reciprocity can be dropped)")
            if getattr(self, PARAMETER_OF[term]) != 0.0:
                raise ValueError(f"{term} is dropped but its parameter is {getattr(self, PARAMETER_OF[term])}, not 0")
        return self


class SurrogatePolicy(_Strict):
    """A fitted surrogate: its units, the terms it keeps and where it came from (module docstring)."""

    by: Literal["group", "value", "agent"] = "group"
    features: tuple[str, ...] = FEATURES
    units: dict[str, PolicyUnit]
    #: Where the policy comes from: run folder, model/backend, decisions used, fit log-likelihood,
    #: hvae version, creation time (plain data).
    provenance: dict[str, Any] = Field(default_factory=dict)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [f for f in value if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown term {unknown[0]!r} (known: {', '.join(FEATURES)})")
        if "utility" not in value:
            raise ValueError("a policy needs the utility term")
        if len(set(value)) != len(value):
            raise ValueError("a term is listed twice")
        return tuple(f for f in FEATURES if f in value)

    @model_validator(mode="after")
    def _consistent(self) -> SurrogatePolicy:
        if not self.units:
            raise ValueError("units: a policy needs at least one unit")
        for key, unit in self.units.items():
            for term in FEATURES:
                if term not in self.features and getattr(unit, PARAMETER_OF[term]) != 0.0:
                    raise ValueError(f"units.{key}: {term} is not among the features but its parameter is not 0")
            if self.by == "value":
                try:
                    angle = float(key)
                except ValueError:
                    raise ValueError(f"units.{key}: a by-value policy's keys are angles (like '45')") from None
                if value_key(angle) != key:
                    raise ValueError(f"units.{key}: write the angle as {value_key(angle)!r}")
                if not -90.0 <= angle <= 90.0:
                    raise ValueError(f"units.{key}: angle outside [-90, 90]")
            elif self.by == "agent" and not (key.isdigit() or (key.startswith("-") and key[1:].isdigit())):
                raise ValueError(f"units.{key}: a by-agent policy's keys are agent ids")
        return self

    def unit_for(self, *, group: str | None = None, theta: float | None = None, agent_id: int | None = None) -> PolicyUnit:
        """The unit that plays an agent of ``group`` / with value ``theta`` / with id ``agent_id`` (by ``by``).

        Raises:
            PolicyError: the policy has no unit for it (the message names what is missing).
        """
        what = {"group": group, "value": theta, "agent": agent_id}[self.by]
        if what is None:
            raise PolicyError(f"this policy is by {self.by}: unit_for needs the {self.by}")
        key = value_key(float(what)) if self.by == "value" else str(what)
        try:
            return self.units[key]
        except KeyError:
            have = ", ".join(sorted(self.units)[:10])
            raise PolicyError(f"the policy has no unit for {self.by} {key!r} (it has: {have})") from None

    def to_yaml(self) -> str:
        """The policy file's text (see the module docstring)."""
        data = {"format": FORMAT, **self.model_dump(mode="json")}
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)

    def save(self, path: str | Path) -> None:
        """Write the policy file (atomically: a reader never sees half of it)."""
        write_bytes_atomic(path, self.to_yaml().encode("utf-8"))


def _field_path(error: ValidationError) -> str:
    first = error.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    more = f" [and {error.error_count() - 1} more problem(s)]" if error.error_count() > 1 else ""
    return f"{where + ': ' if where else ''}{message}{more}"


def load_policy(path: str | Path) -> SurrogatePolicy:
    """Read and check a policy file (bounded read, safe YAML; see the module docstring).

    Raises:
        PolicyError: missing, unreadable, not YAML, not a policy, or a value out of range — one line
            naming the file (and the field).
    """
    path = Path(path)
    try:
        text = read_regular(path, "policy file", MAX_POLICY_BYTES).decode("utf-8")
        data, _ = parse_yaml(text, path, MAX_YAML_DEPTH)
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except (UnsafeFile, YamlProblem) as error:
        raise PolicyError(str(error)) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{path}: cannot read ({one_line(error, 120)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise PolicyError(f"{path}: not a surrogate policy file (it must start with 'format: {FORMAT}')")
    data = {key: value for key, value in data.items() if key != "format"}
    units = data.get("units")
    if isinstance(units, dict):  # YAML reads keys like 45 or 7 as numbers; the file's keys are text
        data["units"] = {(value_key(k) if isinstance(k, float) else str(k)): v for k, v in units.items()}
    try:
        return SurrogatePolicy.model_validate(data)
    except ValidationError as error:
        raise PolicyError(one_line(f"{path}: {_field_path(error)}", 400)) from None


# --------------------------------------------------------------------------- the model


def _logits(theta: np.ndarray, beta: np.ndarray, position: np.ndarray, reciprocity: np.ndarray,
            options: np.ndarray, first: np.ndarray, partner_gave: np.ndarray) -> np.ndarray:
    """``(n, k)`` logits β·U_θ(i) + b·[i first] + ρ·g(i)·partner_gave (``options`` ``(k, 2)`` or ``(n, k, 2)``)."""
    options = np.asarray(options, dtype=float)
    rad = np.radians(np.asarray(theta, dtype=float))
    if options.ndim == 2:
        selfs, others = options[None, :, 0], options[None, :, 1]
        gen = np.nan_to_num(option_generosity(options))[None, :]
    else:
        selfs, others = options[:, :, 0], options[:, :, 1]
        spread = others.max(axis=1, keepdims=True) - others.min(axis=1, keepdims=True)
        gen = np.where(spread > 0, (others - others.min(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0), 0.0)
    beta = np.asarray(beta, dtype=float)[:, None]
    logits = beta * (np.cos(rad)[:, None] * selfs + np.sin(rad)[:, None] * others)
    reciprocity = np.asarray(reciprocity, dtype=float)
    if np.any(reciprocity != 0):
        gave = np.nan_to_num(np.asarray(partner_gave, dtype=float))
        logits = logits + (reciprocity * gave)[:, None] * gen
    first = np.asarray(first, dtype=np.int64)
    shown = first >= 0
    if shown.any():
        rows = np.flatnonzero(shown)
        logits[rows, first[rows]] += np.asarray(position, dtype=float)[rows] if np.ndim(position) else float(position)
    return logits


def choice_probabilities(
    units_theta: np.ndarray,
    units_beta: np.ndarray,
    units_position: np.ndarray,
    units_reciprocity: np.ndarray,
    options: np.ndarray,
    first: np.ndarray,
    partner_gave: np.ndarray,
) -> np.ndarray:
    """P(option) for n decisions: ``(n, k)``, each row summing to 1.

    ``units_*`` are each decision's unit parameters (``(n,)``: θ in degrees, β, b, ρ); ``options``
    the menu, ``(k, 2)`` shared by every decision or ``(n, k, 2)``; ``first`` the canonical index of
    the option shown first (−1: unknown, no position term); ``partner_gave`` the generosity the agent
    received in its last game (0..1; 0 or NaN: unknown, no reciprocity term). See the module
    docstring for the model.
    """
    theta = np.atleast_1d(np.asarray(units_theta, dtype=float))
    n = theta.shape[0]
    arrays = [np.broadcast_to(np.asarray(a, dtype=float), (n,)) for a in (units_beta, units_position, units_reciprocity, partner_gave)]
    first_arr = np.broadcast_to(np.asarray(first, dtype=np.int64), (n,))
    logits = _logits(theta, arrays[0], arrays[1], arrays[2], options, first_arr, arrays[3])
    logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return weights / weights.sum(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the decider


class SurrogateConfig(_Strict):
    """``decider: {kind: surrogate, policy: policy.yaml, group: G}`` in a scenario.

    ``policy`` is the policy file (a path; in a scenario file, relative to that file, as network files are); ``group`` the unit
    of a ``by: group`` policy these agents play (default: the scenario group's own name); ``order``
    and ``fallback`` as for ``llm`` deciders (display counterbalancing; what an invalid reply becomes).
    """

    kind: Literal["surrogate"]
    policy: str = Field(min_length=1)
    group: str | None = None
    order: Literal["fixed", "reverse_half", "shuffle"] = "reverse_half"
    fallback: Literal["random", "skip"] = "random"


class SurrogateDecider(Decider):
    """Plays a distilled policy: logit choices with position bonus, reciprocity and invalid replies.

    Vectorised over a round's agents like the oracle. Each decision shows the options in a
    counterbalanced order (``order``, as for LLM deciders) and records it (``shown_order``), so the
    first-position figures exist for surrogate groups too. With probability ``invalid_rate`` (the
    agent's unit's) a decision is an invalid reply: ``valid`` False, and the ``fallback`` applies
    (``random``: a uniformly random option; ``skip``: no choice), as for LLM deciders. It keeps no
    state besides the model's random generator, so a checkpointed run resumes exactly.
    """

    name = kind = "surrogate"
    Config = SurrogateConfig
    description = "Plays a policy distilled from LLM decisions (hvae distil): logit choice model with position bonus and reciprocity."

    def __init__(self, policy: SurrogatePolicy, *, group: str | None = None, order: str = "reverse_half",
                 fallback: str = "random") -> None:
        if policy.by == "group" and group is None:
            raise PolicyError("a by-group policy needs the group whose unit these agents play")
        self.policy = policy
        self.group = group
        self.order = order
        self.fallback = fallback
        self._fixed: np.ndarray | None = _unit_row(policy.unit_for(group=group)) if policy.by == "group" else None
        keys = [] if policy.by == "group" else sorted(policy.units, key=float if policy.by == "value" else int)
        self._keys = np.array([float(k) for k in keys]) if policy.by == "value" else np.array([int(k) for k in keys], dtype=np.int64)
        self._table = np.array([_unit_row(policy.units[k]) for k in keys]).reshape(-1, 5)  # θ, β, b, ρ, invalid rate
        self._texts: dict[tuple[int, bool], str] = {}
        self.where = "surrogate policy"  #: names the group and policy file in errors (set by from_config)

    @classmethod
    def from_config(cls, config: BaseModel, context: Any = None) -> Decider:
        assert isinstance(config, SurrogateConfig)
        own = getattr(getattr(context, "group", None), "name", None)
        group = config.group or own
        policy = load_policy(config.policy)
        where = f"group {own!r} (policy {config.policy})" if own else f"policy {config.policy}"
        rule = getattr(getattr(getattr(context, "scenario", None), "dynamics", None), "rule", None)
        if policy.by == "value" and rule == "influence":
            raise PolicyError(f"{where}: a by-value policy cannot follow the influence dynamics, which move values "
                              "to angles the policy has no unit for (distil --by group)")
        try:
            decider = cls(policy, group=group if policy.by == "group" else None, order=config.order, fallback=config.fallback)
        except PolicyError as error:
            raise PolicyError(f"{where}: {error}") from None
        decider.where = where
        return decider

    def setup(self, agent_ids: np.ndarray, thetas: np.ndarray) -> None:
        """Check that the policy has a unit for every agent (raises :class:`PolicyError` naming the first missing)."""
        self._parameters(np.asarray(agent_ids), np.asarray(thetas, dtype=float))

    def _parameters(self, agent_ids: np.ndarray, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each agent's unit (an index ``(n,)``) into a table of unit parameters ``(units, 5)``: θ, β, b, ρ, invalid rate."""
        if self._fixed is not None:
            return np.zeros(agent_ids.shape[0], dtype=np.int64), self._fixed[None, :]
        if self.policy.by == "value":
            if thetas.size > 1 and thetas.min() == thetas.max():  # one value (a category group): look it up once
                at, table = self._parameters(agent_ids[:1], thetas[:1])
                return np.zeros(agent_ids.shape[0], dtype=np.int64), table[at]
            wanted = np.round(thetas, 6)
        else:
            wanted = agent_ids.astype(np.int64)
        at = np.clip(np.searchsorted(self._keys, wanted), 0, len(self._keys) - 1)
        missing = self._keys[at] != wanted
        if missing.any():
            bad = wanted[np.flatnonzero(missing)[0]]
            try:
                if self.policy.by == "value":
                    self.policy.unit_for(theta=float(bad))
                self.policy.unit_for(agent_id=int(bad))
            except PolicyError as error:
                raise PolicyError(f"{self.where}: {error}") from None
        return at, self._table

    def _order_text(self, k: int, reverse: bool) -> str:
        key = (k, reverse)
        if key not in self._texts:
            order = range(k - 1, -1, -1) if reverse else range(k)
            self._texts[key] = ",".join(map(str, order))
        return self._texts[key]

    def _display(self, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, CodedColumn]:
        """The option shown first per decision and the recorded display orders (coded: a round
        shows a few distinct orders, so no string is built per decision)."""
        if self.order == "fixed":
            return np.zeros(n, dtype=np.int64), CodedColumn(np.zeros(n, np.int64), [self._order_text(k, False)])
        if self.order == "reverse_half":
            flips = (rng.random(n) < 0.5).astype(np.int64)
            texts = [self._order_text(k, False), self._order_text(k, True)]
            return flips * (k - 1), CodedColumn(flips, texts)
        orders = rng.random((n, k)).argsort(axis=1)
        distinct, codes = np.unique(orders, axis=0, return_inverse=True)
        return orders[:, 0].astype(np.int64), CodedColumn(codes.ravel(), [",".join(map(str, row)) for row in distinct.tolist()])

    def decide(self, request: DecisionRequest, rng: np.random.Generator) -> Decisions:
        """One round's choices: the units' utilities once per unit, then one draw per decision.

        The arithmetic runs option by option over all decisions (arrays of shape ``(k, n)``), so
        every pass is over contiguous memory: a million decisions of a 9-option menu take a few
        tenths of a second.
        """
        options = np.asarray(request.options, dtype=float)
        n, k = request.n, len(options)
        unit, table = self._parameters(request.agent_ids, request.thetas)
        if table.shape[0] > 1 and n and unit.min() == unit.max():  # one unit for all (a by-value group of one value)
            table, unit = table[unit[:1]], np.zeros(n, dtype=np.int64)
        first, shown_order = self._display(n, k, rng)
        # β·U_θ of every option, per unit (a few rows), then per decision by indexing
        rad = np.radians(table[:, 0])
        base = table[:, 1:2] * (np.cos(rad)[:, None] * options[None, :, 0] + np.sin(rad)[:, None] * options[None, :, 1])
        single = table.shape[0] == 1
        logits = np.empty((k, n))
        logits[:] = base.T if single else base.T[:, unit]  # (k, n): option-major
        position = table[:, 2] if single else table[unit, 2]
        for j in np.flatnonzero(np.bincount(first, minlength=k)).tolist():  # the options shown first (two, reversing)
            shown_first = first == j
            logits[j] += np.where(shown_first, position, 0.0) if not single else shown_first * position[0]
        rho = table[:, 3] if single else table[unit, 3]
        if np.any(rho != 0) and request.history.length > 0:
            gave = rho * np.nan_to_num(request.history.generosity[:, 0])
            term = np.empty(n)
            for j, generosity in enumerate(np.nan_to_num(option_generosity(options)).tolist()):
                if generosity:
                    logits[j] += np.multiply(generosity, gave, out=term)
        # inverse-CDF draw: one uniform per decision (P(i) ∝ exp(logit i), the model of choice_probabilities)
        logits -= logits.max(axis=0)
        np.exp(logits, out=logits)
        for j in range(1, k):
            logits[j] += logits[j - 1]
        threshold = rng.random(n) * logits[k - 1]
        below = np.zeros(n, dtype=np.int16 if k < 2**15 else np.int64)  # options whose cumulative weight is below the draw
        for j in range(k - 1):
            np.add(below, logits[j] < threshold, out=below, casting="unsafe")
        choice = below.astype(np.int64)
        invalid = rng.random(n) < (table[:, 4] if single else table[unit, 4])
        fallback_options = rng.integers(0, k, size=n)
        metadata: dict[str, Sequence[Any]] = {"shown_order": shown_order}
        if invalid.any():
            choice = np.where(invalid, NO_CHOICE if self.fallback == "skip" else fallback_options, choice)
            metadata["fallback"] = CodedColumn(invalid.astype(np.int64), [None, self.fallback])
        return Decisions(choice=choice, valid=~invalid, metadata=metadata)


def _unit_row(unit: PolicyUnit) -> np.ndarray:
    return np.array([unit.theta, unit.beta, unit.position, unit.reciprocity, unit.invalid_rate])


register_decider(SurrogateDecider)
