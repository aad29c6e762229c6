"""Tests for subgroup enumeration, chains and the bound-optimal subgroup (docs/theory.md §5)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsym
from jaxsym import groups
from jaxsym.bounds import generalization_bound
from jaxsym.losses import BoundConstants, squared_loss_constants
from jaxsym.subgroups import all_subgroups, optimal_subset, subgroup_chain

C8 = groups.cyclic_rotations(8)
CONSTANTS = BoundConstants(1.0, 1.0, squared_loss_constants(1.0, 1, 1.0))
RADII = np.geomspace(1e-3, 1.0, 20)


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda: groups.cyclic_rotations(8), 4),  # one subgroup per divisor of 8
        (lambda: groups.cyclic_rotations(12), 6),  # divisors of 12
        (lambda: groups.dihedral(4), 10),  # D4 (order 8): known count
        (lambda: groups.permutations(3), 6),  # S3
        (lambda: groups.permutations(4), 30),  # S4
    ],
)
def test_all_subgroups_counts_match_known_values(make, expected):
    group = make()
    found = all_subgroups(group)
    assert len(found) == expected
    table = groups.cayley_table(group)
    for members in found:  # each is closed under products, and they are distinct
        closed = set(table[np.ix_(members, members)].ravel().tolist())
        assert closed == set(members.tolist())
    assert len({tuple(h) for h in found}) == expected


def test_chain_members_are_subgroups():
    group = groups.dihedral(4)
    profile = np.random.default_rng(0).uniform(size=8)
    chain = subgroup_chain(group, profile)
    known = {tuple(h) for h in all_subgroups(group)}
    assert all(tuple(h) in known for h in chain)
    assert chain[0].tolist() == [0] and len(chain[-1]) == 8
    assert all(set(a) < set(b) for a, b in itertools.pairwise(chain))


@pytest.mark.parametrize("eta, keep", [(0.01, range(8)), (1.5, [0, 2, 4, 6])])
def test_optimal_subset_finds_the_data_symmetry(eta, keep):
    """f* invariant under C4 ⊂ C8 (a cos 4θ term) but not C8."""

    def f(x):
        r = jnp.linalg.norm(x, axis=-1)
        theta = jnp.arctan2(x[:, 1], x[:, 0])
        return (jnp.tanh(r) + eta * r * jnp.cos(4 * theta))[:, None]

    x_big = jax.random.normal(jax.random.key(1), (20000, 2))
    profile = jaxsym.defect_profile(f, x_big, C8, reduce="rms")
    x = 0.3 * np.random.default_rng(7).normal(size=(3000, 2)).astype(np.float32)
    choice = optimal_subset(x, C8, profile, CONSTANTS, noise=0.1, radii=RADII)
    assert choice.num_levels == 4  # all subgroups of C8, not just the chain
    assert choice.candidates.shape[1] == 8 and choice.candidates[0].sum() == 1
    assert np.all(choice.candidates[-1])
    # The approximation error as ‖f − Q_H f‖² by Monte Carlo with the actual subgroup
    # average (the generalization term is checked on its own below).
    independent = []
    for k, members in enumerate(choice.candidates):
        q_h = jaxsym.symmetrize(f, C8.subset(np.flatnonzero(members)))
        mc = float(jnp.mean((f(x_big) - q_h(x_big)) ** 2))
        assert float(choice.approximation[k]) == pytest.approx(mc, rel=0.03, abs=1e-4)
        independent.append(0.01 + mc + float(choice.generalization[k]))
    assert np.all(np.diff(np.asarray(choice.generalization)) <= 1e-5)
    assert choice.index == int(np.argmin(independent))
    expected = np.zeros(8, bool)
    expected[list(keep)] = True
    np.testing.assert_array_equal(choice.mask, expected)


@pytest.mark.slow
def test_generalization_terms_are_the_bounds_of_each_subgroup():
    """Each candidate's term is the §4 bound of that subset computed on its own."""
    x = 0.3 * np.random.default_rng(3).normal(size=(300, 2)).astype(np.float32)
    profile = np.array([0.0, 0.9, 0.5, 0.8, 0.1, 0.7, 0.4, 0.6])  # C4 = {0, 2, 4, 6} first
    choice = optimal_subset(x, C8, profile, CONSTANTS, radii=RADII)
    assert choice.num_levels == 4
    for k, members in enumerate(choice.candidates):
        subgroup = C8.subset(np.flatnonzero(members))
        gen = generalization_bound(x, subgroup, CONSTANTS, num_levels=4, radii=RADII).total
        assert float(choice.generalization[k]) == pytest.approx(float(gen), rel=1e-4)


@pytest.mark.slow
def test_honest_union_bound_costs_more_than_the_chain():
    """S4 has 30 subgroups; a chain has at most 5: the honest bound is larger."""
    group = groups.permutations(4)
    x = np.random.default_rng(0).normal(size=(200, 4, 1)).astype(np.float32)
    profile = np.linspace(0, 1, 24)
    honest = optimal_subset(x, group, profile, CONSTANTS, radii=RADII)
    chain = optimal_subset(x, group, profile, CONSTANTS, radii=RADII, union="chain")
    assert honest.num_levels == 30 and chain.num_levels == len(chain.candidates)
    assert np.all(np.asarray(honest.generalization) > np.asarray(chain.generalization))


def test_errors():
    with pytest.raises(ValueError, match="not a group"):
        subgroup_chain(groups.rotation_range(0.3, 3), np.zeros(3))
    with pytest.raises(ValueError, match="data_profile"):
        subgroup_chain(C8, np.zeros(5))
    with pytest.raises(ValueError, match="union"):
        optimal_subset(np.zeros((5, 2), np.float32), C8, np.zeros(8), CONSTANTS, union="all")
    with pytest.raises(ValueError, match="more than"):
        all_subgroups(groups.permutations(4), limit=10)
