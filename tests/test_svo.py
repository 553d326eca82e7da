"""SVO maths against published reference profiles, plus properties that must hold for any answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hvae.agents import slider_checks, svo

# Reference profiles (answers to primary items 1..6) and their published angles.
REFERENCE_ANGLES = [
    ("AIAAII", 61.39, "altruistic"),
    ("IAIIAA", -16.26, "competitive"),
    ("AIIIAA", 7.82, "individualistic"),
    ("AIIDEI", 37.48, "prosocial"),
    ("EEEEEE", 22.93, "prosocial"),
]


@pytest.mark.parametrize(("choices", "angle", "category"), REFERENCE_ANGLES)
def test_reference_profiles(choices: str, angle: float, category: str) -> None:
    measured = svo.slider_angle(svo.parse_choices(choices))
    assert measured == pytest.approx(angle, abs=0.005)
    assert svo.category(measured) == category


def test_vectorised_angles_match_scalar() -> None:
    matrix = np.array([svo.parse_choices(c) for c, _, _ in REFERENCE_ANGLES])
    expected = [svo.slider_angle(row) for row in matrix]
    assert svo.slider_angles(matrix) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("angle", "expected"),
    [
        (57.15, "altruistic"),  # boundary goes to the upper category (official scoring script)
        (57.149, "prosocial"),
        (22.45, "prosocial"),
        (22.449, "individualistic"),
        (-12.04, "individualistic"),
        (-12.041, "competitive"),
        (90.0, "altruistic"),
        (-90.0, "competitive"),
    ],
)
def test_category_boundaries(angle: float, expected: str) -> None:
    assert svo.category(angle) == expected
    assert svo.categories(np.array([angle]))[0] == expected


def test_endpoint_tables_are_consistent() -> None:
    # Each primary item runs from its first endpoint (option A) to its second (option I).
    for item, (first, second) in enumerate(svo.PRIMARY_ITEM_ENDPOINTS):
        assert tuple(svo.PRIMARY_ITEMS[item, 0]) == svo.ENDPOINTS[first]
        assert tuple(svo.PRIMARY_ITEMS[item, 8]) == svo.ENDPOINTS[second]


def test_transitive_profiles() -> None:
    # A pure prosocial (item answers nearest the prosocial endpoint) is transitive.
    assert slider_checks.is_transitive(svo.parse_choices("AIIIAI"))
    assert slider_checks.is_transitive(svo.parse_choices("AIAAII"))


def test_cyclic_profile_is_intransitive() -> None:
    # Item 1: prosocial > competitive (A); item 2: competitive > individualistic (A);
    # item 6: individualistic > prosocial (A) -> cycle pro > comp > ind > pro.
    choices = svo.parse_choices("AAAAAA")
    edges = set(slider_checks.preference_edges(choices))
    assert {("prosocial", "competitive"), ("competitive", "individualistic"), ("individualistic", "prosocial")} <= edges
    assert not slider_checks.is_transitive(choices)


def test_middle_answers_reveal_no_preference_where_equidistant() -> None:
    # Item 5 option E (75,75) is equidistant from (100,50) and (50,100).
    edges = slider_checks.preference_edges(svo.parse_choices("AAAAEA"))
    assert ("individualistic", "altruistic") not in edges and ("altruistic", "individualistic") not in edges


def test_secondary_typology_pure_types() -> None:
    inequality_averse = [i - 1 for i in svo.SECONDARY_IDEALS["inequality_averse"]]
    assert slider_checks.prosocial_subtype(inequality_averse) == "inequality_averse"
    assert slider_checks.secondary_distances(inequality_averse)["inequality_averse"] == 0.0
    joint = [9, 5, 1, 9, 5, 9, 5, 1, 1]  # '-' items answered in the middle
    joint = [i - 1 for i in joint]
    assert slider_checks.secondary_distances(joint)["joint_gain_max"] == 0.0
    assert slider_checks.prosocial_subtype(joint) == "joint_gain_max"
    individualist = [i - 1 for i in svo.SECONDARY_IDEALS["individualistic"]]
    assert slider_checks.prosocial_subtype(individualist) is None


@pytest.mark.parametrize(("theta", "expected"), [(90, 61.39), (45, 45.00), (0, 0.02), (-45, -16.26)])
def test_attainable_targets(theta: float, expected: float) -> None:
    assert svo.attainable_angle(theta) == pytest.approx(expected, abs=0.005)


def test_parse_choices_rejects_bad_input() -> None:
    for bad in ("AIAAI", "AIAAIIX", "AIAAIJ", "123456"):
        with pytest.raises(ValueError):
            svo.parse_choices(bad)


def test_chance_slider_vr_matches_brute_force() -> None:
    angles = svo.random_slider_angles()
    target = svo.attainable_angle(45.0)
    brute = 1 - np.abs(angles - target).mean() / svo.SLIDER_RANGE
    assert svo.chance_slider_vr(45.0) == pytest.approx(brute, rel=1e-12)
    assert angles.min() == pytest.approx(svo.SLIDER_MIN_ANGLE, abs=0.005)
    assert angles.max() == pytest.approx(svo.SLIDER_MAX_ANGLE, abs=0.005)


answers = st.lists(st.integers(0, 8), min_size=6, max_size=6)
angles = st.floats(-90, 90, allow_nan=False)
menus = st.lists(
    st.tuples(st.integers(-100, 100), st.integers(-100, 100)), min_size=1, max_size=12
).map(lambda rows: np.array(rows, dtype=float))


@given(answers)
def test_angle_within_slider_range(choices: list[int]) -> None:
    angle = svo.slider_angle(choices)
    assert svo.SLIDER_MIN_ANGLE - 0.005 <= angle <= svo.SLIDER_MAX_ANGLE + 0.005


@given(angles, menus)
def test_best_options_have_maximal_utility(theta: float, menu: np.ndarray) -> None:
    best = svo.best_options(theta, menu)
    utilities = svo.menu_utilities(theta, menu)
    assert best.size >= 1
    assert np.all(utilities[best] >= utilities.max() - 1e-6)
    others = np.setdiff1d(np.arange(len(menu)), best)
    assert np.all(utilities[others] < utilities.max())


@given(angles)
@settings(max_examples=50)
def test_utility_is_the_ring_formula(theta: float) -> None:
    s, o = 37.0, -12.0
    assert svo.utility(theta, s, o) == pytest.approx(math.cos(math.radians(theta)) * s + math.sin(math.radians(theta)) * o)


def test_vectorised_transitivity_matches_the_graph_check() -> None:
    rng = np.random.default_rng(12)
    profiles = np.vstack([rng.integers(0, 9, size=(3000, 6)), [[0, 8, 0, 0, 8, 8], [8, 0, 8, 8, 0, 0], [0] * 6, [4] * 6]])
    assert slider_checks.transitivity(profiles).tolist() == [slider_checks.is_transitive(p) for p in profiles]


def test_vectorised_prosocial_subtypes_match_the_scoring_rule() -> None:
    rng = np.random.default_rng(13)
    answers = np.vstack([rng.integers(0, 9, size=(3000, 9)), [[5, 4, 3, 6, 4, 7, 4, 2, 1], [8, 4, 0, 8, 4, 8, 4, 0, 0]]])
    assert slider_checks.prosocial_subtypes(answers).tolist() == [slider_checks.prosocial_subtype(a) for a in answers]


def test_memoised_transitivity_of_profiles_equals_the_direct_check() -> None:
    # slider profiles check transitivity once per distinct answer profile; the result must be the
    # direct check row by row (True/False for scored profiles, None for the others)
    from hvae.analysis.rationality import _transitive

    rng = np.random.default_rng(11)
    pool = rng.integers(0, 9, size=(40, 6))
    choices = np.concatenate([pool[rng.integers(0, len(pool), 500)], rng.integers(0, 9, size=(300, 6))])
    scored = rng.random(len(choices)) < 0.7
    direct = [slider_checks.is_transitive(row) if ok else None for row, ok in zip(choices, scored)]
    memoised = _transitive(choices, scored).tolist()
    assert memoised == direct and [type(v) for v in memoised] == [type(v) for v in direct]
    assert False in direct and True in direct  # both outcomes occur, so the comparison means something
    assert _transitive(choices, np.zeros(len(choices), dtype=bool)).tolist() == [None] * len(choices)
