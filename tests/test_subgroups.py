"""Tests for subgroup enumeration and profile-ordered chains (docs/theory.md §4, §9)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxsym import groups
from jaxsym.constants import BoundConstants, squared_loss_constants
from jaxsym.subgroups import all_subgroups, subgroup_chain

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
