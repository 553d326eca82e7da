"""Value specs: names, angles and distributions turn into legal angles."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hvae.agents.values import FixedAngle, parse_value


@pytest.mark.parametrize(
    ("value", "angle"),
    [("altruistic", 90), ("Prosocial", 45), ("individualistic", 0), ("competitive", -45), (30, 30), ("-12.5", -12.5)],
)
def test_fixed_values(value, angle) -> None:
    spec = parse_value(value)
    assert isinstance(spec, FixedAngle)
    assert spec.sample(3, np.random.default_rng(0)).tolist() == [angle] * 3


@pytest.mark.parametrize("bad", ["altruist", 91, -90.5, {"distribution": "beta"}, True, [1, 2], {"distribution": "normal", "mean": 0, "sd": -1}])
def test_bad_values_are_rejected(bad) -> None:
    with pytest.raises(ValueError):
        parse_value(bad)


def test_mixture_respects_weights() -> None:
    spec = parse_value(
        {"distribution": "mixture", "components": [{"weight": 3, "value": "prosocial"}, {"weight": 1, "value": "competitive"}]}
    )
    draws = spec.sample(20_000, np.random.default_rng(1))
    share = (draws == 45).mean()
    assert abs(share - 0.75) < 4 * np.sqrt(0.75 * 0.25 / 20_000)
    assert set(np.unique(draws)) == {45.0, -45.0}


def test_mixture_validates_nested_values() -> None:
    with pytest.raises(ValueError):
        parse_value({"distribution": "mixture", "components": [{"weight": 1, "value": "nonsense"}]})


@given(st.floats(-90, 90), st.floats(0.1, 500), st.integers(0, 2**32 - 1))
def test_normal_values_stay_legal(mean: float, sd: float, seed: int) -> None:
    draws = parse_value({"distribution": "normal", "mean": mean, "sd": sd}).sample(200, np.random.default_rng(seed))
    assert np.all((draws >= -90) & (draws <= 90))


@given(st.floats(-90, 90), st.floats(-90, 90), st.integers(0, 2**32 - 1))
def test_uniform_values_stay_in_their_interval(a: float, b: float, seed: int) -> None:
    low, high = min(a, b), max(a, b)
    draws = parse_value({"distribution": "uniform", "low": low, "high": high}).sample(100, np.random.default_rng(seed))
    assert np.all((draws >= low) & (draws <= high))
