"""Value specifications: which SVO angle each agent of a group holds.

A scenario gives every population group a ``value``. It can be

* a category name — ``altruistic`` (90°), ``prosocial`` (45°), ``individualistic`` (0°),
  ``competitive`` (−45°);
* a number — any angle in [−90°, 90°];
* a distribution over angles, so that a group is truly heterogeneous::

      value: {distribution: normal, mean: 30, sd: 20}        # clipped to [-90, 90]
      value: {distribution: uniform, low: -45, high: 90}
      value: {distribution: mixture, components: [{weight: 3, value: prosocial},
                                                   {weight: 1, value: {distribution: normal, mean: -30, sd: 10}}]}

:func:`parse_value` turns any of these into a :class:`ValueSpec` whose ``sample(n, rng)`` draws
``n`` angles (degrees). Fixed values sample without touching the rng, so adding a fixed-value group
never shifts the draws of another group.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hvae.agents.svo import CATEGORY_ANGLES

ANGLE_MIN, ANGLE_MAX = -90.0, 90.0


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_angle(value: float) -> float:
    if not ANGLE_MIN <= value <= ANGLE_MAX:
        raise ValueError(f"angle {value:g} is outside [-90, 90] degrees")
    return value


class FixedAngle(_Spec):
    """Every agent holds the same angle (a category name resolves to its canonical angle)."""

    angle: float
    name: str | None = None

    _check = field_validator("angle")(_check_angle)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(n, self.angle, dtype=float)

    def label(self) -> str:
        return self.name if self.name else f"{self.angle:g}°"


class NormalAngles(_Spec):
    """Normal(mean, sd) angles clipped to [−90°, 90°]."""

    distribution: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)

    _check = field_validator("mean")(_check_angle)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.clip(rng.normal(self.mean, self.sd, size=n), ANGLE_MIN, ANGLE_MAX)

    def label(self) -> str:
        return f"normal({self.mean:g}°, {self.sd:g}°)"


class UniformAngles(_Spec):
    """Uniform angles on [low, high]."""

    distribution: Literal["uniform"]
    low: float = ANGLE_MIN
    high: float = ANGLE_MAX

    _check = field_validator("low", "high")(_check_angle)

    @model_validator(mode="after")
    def _ordered(self) -> UniformAngles:
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) must not exceed high ({self.high:g})")
        return self

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.uniform(self.low, self.high, size=n)

    def label(self) -> str:
        return f"uniform({self.low:g}°, {self.high:g}°)"


class MixtureComponent(BaseModel):
    """One component of a mixture: a relative weight and a value of any kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(gt=0)
    value: ValueInput


class MixtureAngles(_Spec):
    """Each agent draws a component by weight, then an angle from that component."""

    distribution: Literal["mixture"]
    components: list[MixtureComponent] = Field(min_length=1)

    def specs(self) -> list[ValueSpec]:
        return [parse_value(c.value) for c in self.components]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        weights = np.array([c.weight for c in self.components], dtype=float)
        which = rng.choice(len(weights), size=n, p=weights / weights.sum())
        out = np.empty(n, dtype=float)
        for index, spec in enumerate(self.specs()):
            mask = which == index
            out[mask] = spec.sample(int(mask.sum()), rng)
        return out

    def label(self) -> str:
        return "mixture(" + ", ".join(s.label() for s in self.specs()) + ")"


Distribution = Annotated[
    Union[NormalAngles, UniformAngles, MixtureAngles], Field(discriminator="distribution")
]
ValueInput = Union[float, str, Distribution]
MixtureComponent.model_rebuild()
ValueSpec = Union[FixedAngle, NormalAngles, UniformAngles, MixtureAngles]


def parse_value(value: Any) -> ValueSpec:
    """Turn a scenario's ``value`` field (name, number or distribution) into a :data:`ValueSpec`.

    Raises:
        ValueError: an unknown category name, an angle outside [−90, 90], or a bad distribution.
    """
    if isinstance(value, _Spec):
        return value  # type: ignore[return-value]
    if isinstance(value, bool):
        raise ValueError(f"value must be a category name, an angle or a distribution, got {value!r}")
    if isinstance(value, (int, float)):
        _check_angle(float(value))
        return FixedAngle(angle=float(value))
    if isinstance(value, str):
        key = value.strip().lower()
        if key in CATEGORY_ANGLES:
            return FixedAngle(angle=CATEGORY_ANGLES[key], name=key)
        try:
            angle = float(key)
        except ValueError:
            angle = None
        if angle is not None:
            _check_angle(angle)
            return FixedAngle(angle=angle)
        known = ", ".join(CATEGORY_ANGLES)
        raise ValueError(f"unknown value {value!r}; use one of {known}, an angle, or a distribution")
    if isinstance(value, dict):
        kind = value.get("distribution")
        classes = {"normal": NormalAngles, "uniform": UniformAngles, "mixture": MixtureAngles}
        if kind not in classes:
            raise ValueError(
                f"unknown distribution {kind!r}; use one of normal, uniform, mixture"
            )
        try:
            spec = classes[kind].model_validate(value)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{kind} distribution: {where}: {message}") from None
        if isinstance(spec, MixtureAngles):
            spec.specs()  # validate nested values now, not at sampling time
        return spec
    raise ValueError(f"value must be a category name, an angle or a distribution, got {value!r}")
