"""The exact budget search, checked against brute force over every assignment."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nncf_explore.compression.precision.budget import MAX_FRONT, Option, best_under_budget, pareto_front

_option = st.builds(
    Option,
    bits=st.sampled_from([2, 4, 6, 8]),
    cost=st.integers(0, 50).map(float),
    loss=st.floats(0, 10, allow_nan=False, width=32),
)
_groups = st.dictionaries(
    st.text("abcdef", min_size=1, max_size=3),
    st.lists(_option, min_size=1, max_size=3, unique_by=lambda o: o.bits),
    min_size=1,
    max_size=5,
)


def _all_assignments(groups):
    names = list(groups)
    for combo in itertools.product(*(groups[n] for n in names)):
        yield (
            sum(o.cost for o in combo),
            sum(o.loss for o in combo),
            dict(zip(names, (o.bits for o in combo))),
        )


@settings(max_examples=150, deadline=None)
@given(_groups, st.floats(0, 250))
def test_best_under_budget_equals_brute_force(groups, budget) -> None:
    front = pareto_front(groups)
    feasible = [(c, loss) for c, loss, _ in _all_assignments(groups) if c <= budget]
    if not feasible:
        with pytest.raises(ValueError, match="cheapest costs"):
            best_under_budget(front, budget)
        return
    best = best_under_budget(front, budget)
    assert best.cost <= budget
    assert best.loss == pytest.approx(min(loss for _, loss in feasible), abs=1e-6)
    chosen = {n: next(o for o in groups[n] if o.bits == best.bits[n]) for n in groups}
    assert sum(o.cost for o in chosen.values()) <= budget + 1e-9


@settings(max_examples=100, deadline=None)
@given(_groups)
def test_front_is_monotone_and_dominates_every_assignment(groups) -> None:
    front = pareto_front(groups)
    assert all(a.cost <= b.cost and a.loss > b.loss for a, b in itertools.pairwise(front))
    for cost, loss, _ in _all_assignments(groups):
        assert any(p.cost <= cost and p.loss <= loss + 1e-6 for p in front)
    for p in front:
        assert set(p.bits) == set(groups)


def test_a_group_without_options_is_named() -> None:
    with pytest.raises(ValueError, match="group 'conv' has no candidate"):
        pareto_front({"conv": []})


def test_front_growth_is_bounded_with_a_fix_in_the_message(monkeypatch) -> None:
    monkeypatch.setattr("nncf_explore.compression.precision.budget.MAX_FRONT", 3)
    groups = {f"g{i}": [Option(4, 2**i, 1.0 / (i + 1)), Option(8, 2 ** (i + 1), 0.0)] for i in range(4)}
    with pytest.raises(ValueError, match="round the costs"):
        pareto_front(groups)
    assert MAX_FRONT == 200_000
