"""Tests for orbit distances and greedy orbit covering numbers (theory.md §4)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym import groups
from jaxsym.covering import (
    CoveringTable,
    covering_numbers,
    covering_table,
    default_radii,
    nested_covering_numbers,
    orbit_distances,
    prefix_covering_numbers,
)


def brute_orbit_distances(x, y, S) -> np.ndarray:
    """Plain loop in float64 over pairs and elements (identity included)."""
    moved = np.asarray(groups.transform_batch(S, S.elements, jnp.asarray(y)), np.float64)
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    moved = moved.reshape(moved.shape[0], moved.shape[1], -1)
    out = np.empty((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            best = np.linalg.norm(x[i] - y[j])
            for s in range(moved.shape[0]):
                best = min(best, np.linalg.norm(x[i] - moved[s, j]))
            out[i, j] = best
    return out


def exact_min_cover(distances: np.ndarray, r: float) -> int:
    """Least number of centers (in the sample) covering all points: ``D[i, c] ≤ r``."""
    n = distances.shape[0]
    covers = distances <= r  # covers[i, c]: point i covered by center c
    for size in range(1, n + 1):
        for centers in itertools.combinations(range(n), size):
            if np.all(covers[:, list(centers)].any(axis=1)):
                return size
    return n


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: groups.cyclic_rotations(4), (3, 2)),
        (lambda: groups.dihedral(3), (2,)),
        (lambda: groups.permutations(3), (3, 2)),
        (lambda: groups.rotation_range(0.5, 5).subset([1, 3]), (4, 2)),  # no identity
    ],
)
def test_orbit_distances_match_brute_force(make, shape):
    S = make()
    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (7, *shape))
    y = jax.random.normal(ky, (5, *shape))
    expected = brute_orbit_distances(x, y, S)
    for block in (None, 1, 3):
        got = np.asarray(orbit_distances(x, y, S, block_size=block))
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-5)
    jitted = jax.jit(lambda a, b: orbit_distances(a, b, S))(x, y)
    np.testing.assert_allclose(np.asarray(jitted), expected, atol=2e-5, rtol=1e-5)


def test_orbit_distances_of_an_orbit_are_zero():
    G = groups.cyclic_rotations(6)
    x = jax.random.normal(jax.random.key(1), (4, 2))
    orbit = groups.transform_batch(G, G.elements, x)[3]  # rotated copies
    d = np.asarray(orbit_distances(x, orbit, G))
    assert np.all(np.diag(d) < 1e-3)
    assert np.all(d[~np.eye(4, dtype=bool)] > 1e-2)


@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([4, 6, 8]), order=st.sampled_from([1, 2, 4]))
def test_greedy_between_exact_minimum_and_half_radius_minimum(seed, n, order):
    """N_min(r) ≤ greedy(r) ≤ N_min(r/2) for a group acting by isometries."""
    G = groups.cyclic_rotations(order)
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)
    exact = brute_orbit_distances(x, x, G).T  # [center, point] -> [point, center]
    distances = exact.T
    levels = np.unique(distances[distances > 0])
    if levels.size < 2:
        return
    radii = []
    for a, b in itertools.pairwise(np.concatenate([[0.0], levels, [levels[-1] * 2]])):
        r = 0.5 * (a + b)
        near = np.min(np.abs(distances - r)), np.min(np.abs(distances - r / 2))
        if min(near) > 1e-3:
            radii.append(r)
    if not radii:
        return
    counts = covering_numbers(x, G, radii)
    for r, count in zip(radii, counts, strict=True):
        assert exact_min_cover(distances, r) <= count <= exact_min_cover(distances, r / 2)


@pytest.mark.parametrize("m, order", [(24, 8), (24, 4), (12, 3), (16, 1)])
def test_exact_counts_on_a_circle(m, order):
    """m evenly spaced points under C_n (n | m), radii below the spacing: m/n centers."""
    angles = 2 * np.pi * np.arange(m) / m
    x = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)
    spacing = 2 * np.sin(np.pi / m)
    counts = covering_numbers(
        x, groups.cyclic_rotations(order), spacing * np.array([0.1, 0.5, 0.9])
    )
    np.testing.assert_array_equal(counts, m // order)
    # Just above the spacing a center covers itself and its two neighbours, so at
    # least ⌈m/3⌉ centers; greedy centers are pairwise farther than r: at most m/2.
    above = covering_numbers(x, groups.cyclic_rotations(1), [1.05 * spacing])
    assert int(np.ceil(m / 3)) <= above[0] <= m // 2


@settings(max_examples=10)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([5, 23, 60]))
def test_counts_are_monotone_bounded_and_consistent_across_subgroups(seed, n):
    x = np.random.default_rng(seed).normal(size=(n, 3, 2)).astype(np.float32)
    radii = np.random.default_rng(seed + 1).uniform(0, 4, size=9)
    G = groups.cyclic_rotations(8)
    counts = covering_numbers(x, G, radii)
    assert counts.dtype == np.int32
    assert np.all((counts >= 1) & (counts <= n))
    sorted_counts = counts[np.argsort(radii)]
    assert np.all(np.diff(sorted_counts) <= 0)
    # C4 = elements {0, 2, 4, 6} of C8: its prefix row can never be below C8's.
    rows = prefix_covering_numbers(x, G, radii, order=[0, 2, 4, 6, 1, 3, 5, 7])
    assert np.all(np.diff(rows, axis=0) <= 0)
    np.testing.assert_array_equal(rows[-1], np.minimum(rows[-1], counts))
    trivial = covering_numbers(x, groups.cyclic_rotations(1), radii)
    assert np.all(rows[0] <= trivial) and np.all(counts <= trivial)


def test_free_action_divides_counts_at_dense_scales():
    """N_G ≈ N/|G| for C_8 acting freely on a dense annulus (theory.md §4)."""
    rng = np.random.default_rng(0)
    angle = rng.uniform(0, 2 * np.pi, 2000)
    radius = rng.uniform(1.0, 2.0, 2000)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).astype(np.float32)
    radii = [0.1, 0.2]
    plain = covering_numbers(x, groups.cyclic_rotations(1), radii)
    quotient = covering_numbers(x, groups.cyclic_rotations(8), radii)
    ratio = plain / quotient
    assert np.all((ratio > 4) & (ratio < 16)), ratio


def test_nested_and_table_helpers():
    x = np.random.default_rng(3).normal(size=(40, 2)).astype(np.float32)
    G = groups.dihedral(4)
    radii = default_radii(x, 6)
    assert radii.shape == (6,) and np.all(np.diff(radii) > 0)
    nested = nested_covering_numbers(x, G, radii, [[], [1, 2, 3], list(range(4, 8))])
    assert nested.shape == (3, 6)
    np.testing.assert_array_equal(nested[0], covering_numbers(x, groups.cyclic_rotations(1), radii))
    table = covering_table(x, G, radii[::-1])
    assert isinstance(table, CoveringTable)
    np.testing.assert_allclose(table.radii, radii, rtol=1e-6)
    np.testing.assert_array_equal(table.counts, nested[-1])
    assert table.num_points == 40 and table.group_size == 8


def test_block_size_does_not_change_counts():
    x = np.random.default_rng(4).normal(size=(37, 4, 2)).astype(np.float32)
    G = groups.cyclic_rotations(5)
    radii = np.linspace(0.5, 5, 7)
    reference = covering_numbers(x, G, radii)
    for block in (1, 4, 37, 100):
        np.testing.assert_array_equal(covering_numbers(x, G, radii, block_size=block), reference)


def test_errors_name_the_argument():
    G = groups.cyclic_rotations(4)
    x = np.zeros((5, 2), np.float32)
    with pytest.raises(ValueError, match="radii"):
        covering_numbers(x, G, [])
    with pytest.raises(ValueError, match="radii"):
        covering_numbers(x, G, [-1.0])
    with pytest.raises(ValueError, match="block_size"):
        covering_numbers(x, G, [1.0], block_size=0)
    with pytest.raises(ValueError, match="order"):
        prefix_covering_numbers(x, G, [1.0], order=[0, 0, 1, 2])
    with pytest.raises(ValueError, match="x"):
        covering_numbers(np.zeros((5, 3), np.float32), G, [1.0])
    with pytest.raises(ValueError, match="x and y"):
        orbit_distances(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), G)
    with pytest.raises(ValueError, match="non-finite"):
        covering_numbers(np.full((3, 2), np.nan, np.float32), G, [1.0])
