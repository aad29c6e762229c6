"""Tests for orbit distances and greedy orbit covering numbers (theory.md §4)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jaxsym import groups
from jaxsym._src import distances as _distances
from jaxsym.covering import (
    CoveringTable,
    Domain,
    covering_numbers,
    covering_table,
    default_radii,
    domain_covering_numbers,
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


@pytest.mark.slow
@settings(max_examples=12)
@given(seed=st.integers(0, 10_000), n=st.sampled_from([4, 6, 8]), order=st.sampled_from([1, 2, 4]))
def test_greedy_between_exact_minimum_and_half_radius_minimum(seed, n, order):
    """N_min(r) ≤ greedy(r) ≤ N_min(r/2) for a group acting by isometries."""
    G = groups.cyclic_rotations(order)
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)
    exact = brute_orbit_distances(x, x, G).T  # [center, point] -> [point, center]
    distances = exact.T
    levels = np.unique(distances[distances > 0])
    assume(levels.size >= 2)
    radii = []
    for a, b in itertools.pairwise(np.concatenate([[0.0], levels, [levels[-1] * 2]])):
        r = 0.5 * (a + b)
        near = np.min(np.abs(distances - r)), np.min(np.abs(distances - r / 2))
        if min(near) > 1e-3:
            radii.append(r)
    assume(radii)
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


@pytest.mark.slow
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
    # The fingerprint names the sample: n, and a digest that any change of one value alters.
    moved = x.copy()
    moved.flat[7] = np.nextafter(moved.flat[7], np.float32(np.inf))
    assert table.fingerprint[0] == 40
    assert covering_table(x, G, radii).fingerprint == table.fingerprint
    assert covering_table(moved, G, radii).fingerprint != table.fingerprint


def test_block_size_does_not_change_counts():
    x = np.random.default_rng(4).normal(size=(37, 4, 2)).astype(np.float32)
    G = groups.cyclic_rotations(5)
    radii = np.linspace(0.5, 5, 7)
    reference = covering_numbers(x, G, radii)
    for block in (1, 4, 37, 100):
        np.testing.assert_array_equal(covering_numbers(x, G, radii, block_size=block), reference)


def greedy_nested_counts_float64(x, group, stages, radii, margin=2e-5):
    """Farthest-point traversal in float64 (NumPy), one per nested set: the reference counts.

    ``D_s[c, i] = ‖x_i − ρ(s) x_c‖²`` (center ``c`` moved, point ``i`` fixed);
    set ``k`` is ``{e} ∪ S[stages[0]] ∪ … ∪ S[stages[k]]``. Starts at ``x_0``,
    then takes the farthest point (lowest index on ties) until every point is
    covered; ``count(r) = min{j : ρ_j ≤ r}``, then the running minima down the
    sets and along the radii. Returns ``(counts, clear)``: ``clear`` is False when
    a choice or a radius is within ``margin`` (relative) of a tie, where float32
    rounding may legitimately decide otherwise.
    """
    n = len(x)
    flat = np.asarray(x, np.float64).reshape(n, -1)
    moved = np.asarray(groups.transform_batch(group, group.elements, jnp.asarray(x)), np.float64)
    moved = moved.reshape(group.size, n, -1)
    per_element = ((moved[:, :, None, :] - flat[None, None, :, :]) ** 2).sum(-1)  # [s, c, i]
    squares = ((flat[:, None, :] - flat[None, :, :]) ** 2).sum(-1)  # the identity
    # float32 squares are within (d + 4)·u·(‖a‖ + ‖b‖)² of these (jaxsym._src.distances), at most
    # 3e-6 of the scale (2 max ‖x‖)² here; ``margin`` is relative to that scale.
    largest = max(np.max((flat**2).sum(-1)), np.max((moved**2).sum(-1)))
    scale = max(4 * float(largest), 1e-30)
    clear, rows = True, []
    for added in stages:
        for s in added:
            squares = np.minimum(squares, per_element[s])
        nearest = squares[0].copy()
        nearest[0] = 0.0
        covering_radii = []
        while nearest.max() > 0:
            top = nearest.max()
            covering_radii.append(np.sqrt(top))
            if n > 1 and top - np.sort(nearest)[-2] < margin * scale:
                clear = False  # a (near) tie between two candidates
            center = int(np.flatnonzero(nearest == top)[0])
            nearest = np.minimum(nearest, squares[center])
            nearest[center] = 0.0
        covering_radii = np.asarray(covering_radii)
        gaps = np.abs(covering_radii[:, None] ** 2 - radii[None] ** 2)
        if gaps.size and gaps.min() < margin * scale:
            clear = False  # a radius within rounding of a covering radius
        rows.append(1 + np.sum(covering_radii[:, None] > radii[None], axis=0))
    counts = np.minimum.accumulate(np.stack(rows), axis=0)
    order = np.argsort(radii)
    counts[:, order] = np.minimum.accumulate(counts[:, order], axis=1)
    return counts, clear


GREEDY_CASES = {
    "c8 on points": (lambda: groups.cyclic_rotations(8), (2,)),
    "s3 on sets": (lambda: groups.permutations(3), (3, 2)),
    "rot90 on images": (groups.rot90, (5, 5, 1)),
    "interpolated rotations": (lambda: groups.image_rotations(7, max_angle=1.2), (6, 6)),
}


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@settings(max_examples=5, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.sampled_from([2, 17, 40]),
    case=st.sampled_from(sorted(GREEDY_CASES)),
)
def test_nested_counts_equal_a_float64_greedy_traversal(seed, n, case):
    """Both paths give exactly the counts of a plain NumPy farthest-point traversal, for
    nested stages that repeat elements and include the identity (element 0)."""
    make, shape = GREEDY_CASES[case]
    G = make()
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    order = rng.permutation(G.size)
    cut = sorted(rng.choice(np.arange(1, G.size), size=2, replace=False))
    stages = [order[: cut[0]], np.concatenate([order[cut[0] : cut[1]], order[:1]]), order[cut[1] :]]
    radii = rng.uniform(0.05, 1.5, size=7) * np.sqrt(np.prod(shape))
    expected, clear = greedy_nested_counts_float64(x, G, stages, radii)
    assume(clear)
    for method in ("matrix", "streaming"):
        got = nested_covering_numbers(x, G, radii, stages, method=method)
        np.testing.assert_array_equal(got, expected, err_msg=method)


def test_nested_counts_compile_per_stage_size_not_per_operation():
    """A cover compiles a few whole programs (the orbit, the bitwise identity test and the
    matrix update per stage size, the traversal once), not the action's operations one
    by one; new data of the same shapes compiles nothing."""
    G = groups.image_rotations(7, max_angle=1.2)
    stages = [[], [1, 2], [3, 4, 5, 6]]
    names = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            names.append(kwargs.get("fun_name"))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 53, 6, 6)).astype(np.float32)  # a size no other test uses
    radii = np.linspace(0.5, 8.0, 5)
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        nested_covering_numbers(x[0], G, radii, stages, method="matrix")
        first = list(names)
        nested_covering_numbers(x[1], G, radii, stages, method="matrix")
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    programs = {"jit(_lower_matrix)": 3, "jit(_orbit_stack)": 2, "jit(_farthest_first)": 1}
    for name, most in programs.items():  # the identity, then one per stage size
        assert first.count(name) <= most, first
    assert len(first) <= 20, first  # op by op, the rotations alone compile over 100
    assert names == first  # the second sample compiled nothing


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
    with pytest.raises(ValueError, match="method"):
        covering_numbers(x, G, [1.0], method="fast")
    with pytest.raises(TypeError, match="group"):
        covering_numbers(x, "C4", [1.0])
    with pytest.raises(ValueError, match=r"domain\.kind"):
        domain_covering_numbers(G, [1.0], (2,), Domain("sphere", 1.0))
    with pytest.raises(ValueError, match="max_net_points"):
        domain_covering_numbers(G, [1.0], (3, 2), Domain("ball", 1.0), net_step=0.01)


# ----------------------------------------------------------------------------- precision


def test_distance_products_carry_highest_precision():
    """TF32/bf16 defaults would round ~10⁴× coarser than the rounding allowance."""
    a = jnp.ones((1, 4, 3))
    b = jnp.ones((2, 5, 3))
    texts = [
        str(jax.make_jaxpr(lambda a, b: _distances.min_squares(a, b, 1.1))(a, b)),
        str(jax.make_jaxpr(lambda a, b: _distances.orbit_squares(a[0], b, 2, True))(a, b)),
        str(
            jax.make_jaxpr(lambda q, p: _distances.nearest_other(q, jnp.zeros(4, int), p))(
                a[0], b[0]
            )
        ),
    ]
    for text in texts:
        assert "dot_general" in text
        for line in text.splitlines():
            if "dot_general" in line and "precision" in line:
                assert "HIGHEST" in line, line
        assert text.count("HIGHEST") >= 1


@pytest.mark.parametrize("offset", [0.0, 30.0, 1000.0])
def test_squares_agree_with_float64_to_the_rounding_allowance(offset):
    """Plain squares within τ(‖a‖ + ‖b‖)² of the exact ones; conservative ones above them."""
    rng = np.random.default_rng(int(offset))
    dim = 16
    x = (offset + rng.normal(size=(60, dim))).astype(np.float32)
    y = (x[rng.integers(0, 60, 40)] + 1e-3 * rng.normal(size=(40, dim))).astype(np.float32)
    exact = ((x[:, None, :].astype(np.float64) - y[None].astype(np.float64)) ** 2).sum(-1)
    norms = np.linalg.norm(x.astype(np.float64), axis=1)[:, None] + np.linalg.norm(
        y.astype(np.float64), axis=1
    )
    tau = _distances.tolerance(dim, jnp.float32)
    plain = np.asarray(_distances.min_squares(jnp.asarray(x)[None], jnp.asarray(y)[None]))
    assert np.all(np.abs(plain - exact) <= tau * norms**2 + 1e-30)
    scale = _distances.conservative_scale(dim, jnp.float32)
    safe = np.asarray(_distances.min_squares(jnp.asarray(x)[None], jnp.asarray(y)[None], scale))
    assert np.all(safe >= exact)


# ----------------------------------------------------------------------------- streaming


STREAM_CASES = {
    "c8": (lambda: groups.cyclic_rotations(8), (2,)),
    "d4": (lambda: groups.dihedral(4), (3, 2)),
    "s3": (lambda: groups.permutations(3), (3, 2)),
}


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@settings(max_examples=5)
@given(
    seed=st.integers(0, 10_000),
    n=st.sampled_from([3, 100, 400]),
    case=st.sampled_from(sorted(STREAM_CASES)),
)
def test_streaming_counts_equal_the_matrix_counts(seed, n, case):
    make, shape = STREAM_CASES[case]
    G = make()
    x = np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)
    radii = default_radii(x, 12)
    matrix = covering_numbers(x, G, radii, method="matrix")
    streaming = covering_numbers(x, G, radii, method="streaming")
    np.testing.assert_array_equal(streaming, matrix)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(STREAM_CASES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_streaming_prefix_counts_equal_the_matrix_counts(case, seed):
    make, shape = STREAM_CASES[case]
    G = make()
    x = np.random.default_rng(seed).normal(size=(1500, *shape)).astype(np.float32)
    radii = default_radii(x, 20)
    matrix = prefix_covering_numbers(x, G, radii, method="matrix")
    streaming = prefix_covering_numbers(x, G, radii, method="streaming")
    np.testing.assert_array_equal(streaming, matrix)


@pytest.mark.slow
def test_streaming_is_used_past_the_threshold(monkeypatch):
    import jaxsym.covering as covering

    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    radii = [0.05, 0.3]
    expected = covering_numbers(x, groups.cyclic_rotations(4), radii, method="matrix")
    monkeypatch.setattr(covering, "STREAMING_THRESHOLD", 100)
    monkeypatch.setattr(covering, "MAX_MATRIX_BYTES", 1000)  # the matrix path would refuse
    got = covering_numbers(x, groups.cyclic_rotations(4), radii)
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match="streaming"):
        covering_numbers(x, groups.cyclic_rotations(4), radii, method="matrix")


SHARDED_SCRIPT = """
import os
os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
import jax, numpy as np
from jax.sharding import Mesh
from jaxsym import groups
from jaxsym.covering import prefix_covering_numbers, default_radii
assert len(jax.devices()) == 4, jax.devices()
mesh = Mesh(np.array(jax.devices()), ("points",))
rng = np.random.default_rng(0)
# Tie-free: integer points under C4 (which maps the lattice to itself), radii halfway
# between achievable distances, so no comparison sits within rounding of a radius and
# the counts must agree exactly.  401 points: padded to a multiple of 4.
C4 = groups.cyclic_rotations(4)
lattice = rng.integers(-12, 13, size=(401, 2)).astype(np.float32)
radii = np.sqrt(np.array([0.5, 1.5, 2.5, 4.5, 8.5, 16.5, 32.5]))
one = prefix_covering_numbers(lattice, C4, radii, order=[0, 2, 1, 3])
four = prefix_covering_numbers(lattice, C4, radii, order=[0, 2, 1, 3], mesh=mesh)
assert np.array_equal(one, four), (one, four)
# Continuous data: a point within rounding of a radius may fall either side on another
# code path (XLA reduces in another order), so a count may move by a point or two.
G = groups.cyclic_rotations(8)
for n in (401, 1000):
    x = rng.normal(size=(n, 2)).astype(np.float32)
    radii = default_radii(x, 12)
    one = prefix_covering_numbers(x, G, radii, order=[0, 2, 4, 6, 1, 3, 5, 7])
    four = prefix_covering_numbers(x, G, radii, order=[0, 2, 4, 6, 1, 3, 5, 7], mesh=mesh)
    assert np.all(np.abs(one - four) <= np.maximum(2, 0.01 * one)), (one, four)
print("SHARDED-OK")
"""


@pytest.mark.extended
@pytest.mark.slow
def test_streaming_on_four_simulated_devices_gives_the_same_counts():
    """Exactly the same counts where no distance is within rounding of a radius; within a
    point or two (1%) on continuous data, where XLA's order of reduction may differ."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    result = subprocess.run(
        [sys.executable, "-c", SHARDED_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert "SHARDED-OK" in result.stdout, result.stderr[-3000:]


# ----------------------------------------------------------------------------- fixed domains


def _packing_number(points: np.ndarray, distance, separation: float) -> int:
    """Greedy ``separation``-separated subset (float64): any cover at ``separation/2`` needs
    at least this many centers, one per point of the subset."""
    chosen: list[np.ndarray] = []
    for p in points:
        if all(distance(p, q) > separation for q in chosen):
            chosen.append(p)
    return len(chosen)


def _orbit_distance_c(order):
    angles = 2 * np.pi * np.arange(order) / order
    rotations = np.stack(
        [
            np.stack([np.cos(angles), -np.sin(angles)], -1),
            np.stack([np.sin(angles), np.cos(angles)], -1),
        ],
        -2,
    )

    def distance(p, q):
        return float(np.min(np.linalg.norm(q @ np.swapaxes(rotations, -1, -2) - p, axis=-1)))

    return distance


@pytest.mark.slow
@pytest.mark.parametrize("order", [1, 8])
def test_domain_cover_is_valid_and_not_loose(order):
    """Domain counts ≥ the packing number of a dense sample at 2r (validity), ≤ the area
    bound of a greedy (r − ρ)-separated set (quality), and the symmetric cover is smaller."""
    G = groups.cyclic_rotations(order)
    domain = Domain("ball", 1.0)
    radii = np.array([0.15, 0.3, 0.6])
    counts = domain_covering_numbers(G, radii, (2,), domain, net_step=0.01)
    rng = np.random.default_rng(0)
    dense = rng.uniform(-1, 1, size=(4000, 2))
    dense = dense[np.linalg.norm(dense, axis=1) <= 1]
    distance = _orbit_distance_c(order)
    for r, count in zip(radii, counts, strict=True):
        assert count >= _packing_number(dense, distance, 2 * r)
        half = (r - 0.01 * np.sqrt(2) / 2) / 2
        assert count <= ((1 + half) / half) ** 2  # disjoint balls of radius half in B(1+half)
    if order > 1:
        plain = domain_covering_numbers(
            groups.cyclic_rotations(1), radii, (2,), domain, net_step=0.01
        )
        assert np.all(counts * 4 <= plain)


@pytest.mark.extended
@pytest.mark.slow
def test_table_with_a_domain_takes_the_smaller_cover():
    G = groups.cyclic_rotations(8)
    rng = np.random.default_rng(1)
    x = (0.4 * rng.normal(size=(3000, 2))).astype(np.float32)
    radii = np.array([0.03, 0.1, 0.3])
    plain = covering_table(x, G, radii)
    both = covering_table(x, G, radii, domain=Domain("ball", 1.0))
    assert np.all(both.counts <= plain.counts)
    flat = x.reshape(len(x), -1)
    outside = x[np.linalg.norm(flat, axis=1) > 1.0 * (1 - 1e-9)]
    assert 0 < len(outside) < 300
    domain_only = domain_covering_numbers(G, radii, (2,), Domain("ball", 1.0))
    outside_counts = covering_numbers(outside, G, radii)
    np.testing.assert_array_equal(
        both.counts, np.minimum(plain.counts, domain_only + outside_counts)
    )
