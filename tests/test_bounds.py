"""Tests for the certified §4 bound: chaining, staircase, validity (docs/theory.md §4)."""

from __future__ import annotations

import functools
import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jaxsym import bounds, groups
from jaxsym.bounds import (
    GRID_CELLS,
    GeneralizationBound,
    _discrete_chain,
    generalization_bound,
    generalization_bound_from_table,
)
from jaxsym.constants import BoundConstants, absolute_loss_constants, squared_loss_constants
from jaxsym.covering import Domain, orbit_distances, prefix_covering_numbers, tables_from_counts

C8 = groups.cyclic_rotations(8)
TRIVIAL = groups.cyclic_rotations(1)
LOSS = squared_loss_constants(1.0, 1, 1.0)  # M = 1, d_y = 1, |y| ≤ 1: B = 4, L_ℓ = 4
CONSTANTS = BoundConstants(lipschitz=1.0, output_bound=1.0, loss=LOSS)
RADII = np.geomspace(1e-3, 1.0, 20)


def gaussian(n, seed=0, dim=2):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def uniform_disk(n, rng):
    radius = np.sqrt(rng.uniform(size=n))
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1).astype(np.float32)


@pytest.fixture(scope="module")
def tables():
    """Nested tables {e} ⊂ C4 ⊂ C8 of one sample (scale 0.1: the bound is below its cap)."""
    x = 0.1 * gaussian(600)
    counts = prefix_covering_numbers(x, C8, RADII, order=[0, 2, 4, 6, 1, 3, 5, 7])
    trivial, _, _, c4, _, _, _, c8 = tables_from_counts(RADII, counts, 600, range(1, 9))
    return trivial, c4, c8


# ----------------------------------------------------------------------------- chaining


def brute_force_chain(scales, entropy, radius, n):
    """Every chain D = ε₀ > ε₁ > … > ε_N over the breakpoints, enumerated (float64)."""
    nodes = sorted(
        {(float(s), float(e)) for s, e in zip(scales, entropy, strict=True) if s < radius},
        key=lambda node: -node[0],
    )
    best = radius  # the empty chain: the cap
    for size in range(1, len(nodes) + 1):
        for chain in itertools.combinations(nodes, size):  # kept in decreasing scale order
            path = [(radius, 0.0), *chain]
            cost = path[-1][0]
            for (s0, e0), (s1, e1) in itertools.pairwise(path):
                cost += (s0 + s1) * math.sqrt(2 * (e0 + e1) / n)
            best = min(best, cost)
    return best


_jitted_chain = jax.jit(lambda s, e, n: _discrete_chain(s, e, jnp.float32(2.0), n, 16))


@settings(max_examples=25)
@given(
    seed=st.integers(0, 10_000),
    size=st.integers(1, 9),
    n=st.sampled_from([3, 50, 1000, 10**5]),
)
def test_chain_program_matches_enumeration_of_all_chains(seed, size, n):
    rng = np.random.default_rng(seed)
    scales = np.sort(rng.uniform(0.001, 2.5, size))  # some above the radius 2
    entropy = np.sort(rng.uniform(0, 50, size))[::-1].copy()  # a staircase
    entropy[rng.uniform(size=size) < 0.2] = 0.0
    entropy = np.minimum.accumulate(entropy)
    assume(len(set(scales.tolist())) == size)
    expected = brute_force_chain(scales, entropy, 2.0, n)
    pad = 9 - size  # one shape for every draw (no recompilation): padding lies above D
    padded_scales = np.concatenate([scales, np.full(pad, 3.0)])
    padded_entropy = np.concatenate([entropy, np.full(pad, entropy[-1])])
    got, finest = _jitted_chain(
        jnp.asarray(padded_scales, jnp.float32),
        jnp.asarray(padded_entropy, jnp.float32),
        jnp.float32(n),
    )
    assert float(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert float(got) <= 2.0 + 1e-6  # the cap D
    assert 0 < float(finest) <= 2.0


@pytest.mark.extended
@pytest.mark.slow
def test_chain_program_with_fewer_nodes_is_never_below_the_optimum():
    """Dropping coarse breakpoints restricts the chains: never below the full optimum."""
    rng = np.random.default_rng(0)
    scales = jnp.asarray(np.sort(rng.uniform(0.001, 1.5, 40)), jnp.float32)
    entropy = jnp.asarray(np.sort(rng.uniform(0, 400, 40))[::-1].copy(), jnp.float32)
    full, _ = _discrete_chain(scales, entropy, jnp.float32(2.0), jnp.float32(500.0), 64)
    expected = brute_force_chain(np.asarray(scales)[::4], np.asarray(entropy)[::4], 2.0, 500)
    for keep in (5, 39):
        few, _ = _discrete_chain(scales, entropy, jnp.float32(2.0), jnp.float32(500.0), keep)
        assert float(few) >= float(full) - 1e-6
    ten, _ = _discrete_chain(scales[::4], entropy[::4], jnp.float32(2.0), jnp.float32(500.0), 10)
    assert float(ten) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_rademacher_term_is_capped_at_the_class_radius(tables):
    """Tiny n: the continuous form exceeds B/2 = 2; discrete chaining never does."""
    x = gaussian(12, seed=3)
    dudley = generalization_bound(x, TRIVIAL, CONSTANTS, radii=RADII, chaining="dudley")
    discrete = generalization_bound(x, TRIVIAL, CONSTANTS, radii=RADII)
    assert float(dudley.rademacher) > 2.0
    assert float(discrete.rademacher) == pytest.approx(2.0)
    trivial, _, c8 = tables
    for table in (trivial, c8):
        got = generalization_bound_from_table(table, None, constants=CONSTANTS)
        assert float(got.rademacher) <= 2.0 + 1e-6


def brute_force_dudley(table, trivial, eps, constants, grid=20_000):
    """Independent float64 check: entropy by its definition, left Riemann sum, α on a grid."""
    lipschitz, output_bound, loss, output_dim, delta = constants
    loss_range, loss_lipschitz = loss.loss_range, loss.loss_lipschitz
    cells = GRID_CELLS.astype(np.float64)

    def options(tab, shift):
        radii = np.concatenate([[0.0], np.asarray(tab.radii, np.float64)])
        counts = np.concatenate([[tab.num_points], np.asarray(tab.counts, np.float64)])
        tau = lipschitz * radii[:, None] + shift + output_bound * math.sqrt(output_dim) / cells
        return (tau.ravel(), (counts[:, None] * output_dim * np.log(cells)).ravel())

    tau, value = options(table, eps)
    if trivial is not None:
        tau2, value2 = options(trivial, 0.0)
        tau, value = np.concatenate([tau, tau2]), np.concatenate([value, value2])
    upper = loss_range / 2
    u = np.linspace(0, upper, grid + 1)
    entropy = np.full(u.shape, np.inf)
    for t, v in zip(loss_lipschitz * tau, value, strict=True):
        entropy[u >= t] = np.minimum(entropy[u >= t], v)
    integrand = np.sqrt(entropy[:-1]) * (upper / grid)  # left endpoints: an upper bound
    tails = np.concatenate([np.cumsum(integrand[::-1])[::-1], [0.0]])
    objective = 4 * u + 12 / math.sqrt(table.num_points) * tails
    rad = np.min(objective[np.isfinite(objective)])
    n = table.num_points
    return 2 * rad + 3 * loss_range * math.sqrt(math.log(2 / delta) / (2 * n))


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.4])
def test_dudley_form_matches_brute_force_riemann_sum(tables, eps):
    trivial, _, c8 = tables
    exact = generalization_bound_from_table(
        c8, trivial, constants=CONSTANTS, eps=eps, chaining="dudley"
    )
    brute = brute_force_dudley(c8, trivial, eps, CONSTANTS)
    # The exact integral of the staircase is below any left Riemann sum and close to a fine one.
    assert float(exact.total) <= brute + 1e-4
    assert float(exact.total) >= brute - 0.02 * brute
    assert np.all(np.diff(np.asarray(exact.entropy)) <= 0)


@pytest.mark.parametrize("eps", [0.0, 0.05, 0.3])
def test_discrete_chaining_beats_the_continuous_form(tables, eps):
    trivial, _, c8 = tables
    kw = dict(constants=CONSTANTS, eps=eps)
    discrete = generalization_bound_from_table(c8, trivial, **kw)
    dudley = generalization_bound_from_table(c8, trivial, chaining="dudley", **kw)
    assert float(discrete.total) < float(dudley.total)
    assert float(discrete.complexity) == pytest.approx(2 * float(discrete.rademacher))


# ----------------------------------------------------------------------------- in ε


@jax.jit
def _jitted_total(table, trivial, eps):
    return generalization_bound_from_table(table, trivial, constants=CONSTANTS, eps=eps).total


@settings(max_examples=20)
@given(a=st.floats(0, 1.5), b=st.floats(0, 1.5))
def test_bound_non_decreasing_in_eps(tables, a, b):
    trivial, _, c8 = tables
    low, high = sorted((a, b))
    assert float(_jitted_total(c8, trivial, low)) <= float(_jitted_total(c8, trivial, high)) + 1e-5


@pytest.mark.parametrize("chaining", ["discrete", "dudley"])
def test_eps_endpoints_are_the_equivariant_and_unconstrained_bounds(tables, chaining):
    trivial, _, c8 = tables
    kw = dict(constants=CONSTANTS, chaining=chaining)
    at_zero = generalization_bound_from_table(c8, trivial, eps=0.0, **kw).total
    equivariant = generalization_bound_from_table(c8, None, **kw).total
    np.testing.assert_allclose(at_zero, equivariant, rtol=1e-6)
    unconstrained = generalization_bound_from_table(trivial, None, **kw).total
    large = LOSS.loss_range / (2 * LOSS.loss_lipschitz)  # B/(2L_ℓ): symmetric steps past B/2
    for eps in (large, 2 * large, 10.0):
        got = generalization_bound_from_table(c8, trivial, eps=eps, **kw).total
        np.testing.assert_allclose(got, unconstrained, rtol=1e-6)
    assert float(equivariant) < float(unconstrained) - 0.1


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@pytest.mark.parametrize("chaining", ["discrete", "dudley"])
def test_gradient_in_eps_matches_finite_differences(tables, chaining):
    trivial, _, c8 = tables

    @jax.jit
    def total(e):
        return generalization_bound_from_table(
            c8, trivial, constants=CONSTANTS, eps=e, chaining=chaining
        ).total

    grad = jax.jit(jax.grad(total))
    checked, positive = 0, 0
    for eps in np.linspace(0.003, 0.5, 23):
        h = 1e-3
        left = (total(eps) - total(eps - h)) / h
        right = (total(eps + h) - total(eps)) / h
        if abs(float(left) - float(right)) > 0.05 * (abs(float(left)) + 1e-3):
            continue  # a kink inside [eps − h, eps + h]
        checked += 1
        positive += float(grad(eps)) > 0
        np.testing.assert_allclose(
            float(grad(eps)), 0.5 * float(left + right), rtol=0.05, atol=0.02
        )
    assert checked >= 10
    assert positive >= 1


def test_from_table_is_jitted_without_retracing(tables):
    trivial, _, c8 = tables

    @jax.jit
    @chex.assert_max_traces(n=1)
    def total(e):
        return generalization_bound_from_table(c8, trivial, constants=CONSTANTS, eps=e).total

    for eps in (0.0, 0.1, 0.2):
        total(jnp.float32(eps))


class CompileCounter:
    """The XLA compilations (``jax.monitoring`` events) made inside a ``with`` block."""

    EVENT = "/jax/core/compile/backend_compile_duration"

    def __enter__(self):
        self.names = []
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __call__(self, event, duration, **kwargs):
        if event == self.EVENT:
            self.names.append(kwargs.get("fun_name"))

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


def test_eager_bounds_compile_once_per_table_length():
    """Called eagerly (as the audit does), the bound is one compiled program: tables of one
    length share it, whatever their counts, constants, ε and K (not one program per
    operation and per call); the values are those of the jitted function."""
    radii = np.geomspace(1e-3, 1.0, 31)  # a length no other test uses: compiled here
    counts = np.stack([np.geomspace(500, 1, 31), np.geomspace(200, 1, 31)]).round()
    trivial, symmetric = tables_from_counts(radii, counts, 500, [1, 8])
    other = BoundConstants(2.5, 1.0, LOSS, delta=0.01)
    with CompileCounter() as first:
        generalization_bound_from_table(symmetric, trivial, constants=CONSTANTS, eps=0.1)
    with CompileCounter() as later:
        soft = generalization_bound_from_table(
            symmetric, trivial, constants=CONSTANTS, eps=0.3, num_levels=3
        )
        generalization_bound_from_table(trivial, trivial, constants=other, eps=0.0, num_levels=7)
    assert len(first.names) == 1 and later.names == []
    jitted = _total_at_levels(symmetric, trivial, jnp.float32(0.3), 3)
    assert float(soft.total) == pytest.approx(float(jitted), rel=1e-6)


@functools.partial(jax.jit, static_argnames=("num_levels",))
def _total_at_levels(table, trivial, eps, num_levels):
    return generalization_bound_from_table(
        table, trivial, constants=CONSTANTS, eps=eps, num_levels=num_levels
    ).total


@pytest.mark.slow
@settings(max_examples=10)
@given(eps=st.floats(0, 0.5), num_levels=st.sampled_from([1, 7, 50]))
def test_bound_non_increasing_as_the_set_grows(tables, eps, num_levels):
    trivial, c4, c8 = tables
    values = [float(_total_at_levels(t, trivial, eps, num_levels)) for t in (trivial, c4, c8)]
    assert values[0] >= values[1] - 1e-5 >= values[2] - 2e-5


# ----------------------------------------------------------------------------- in n, δ, K


@pytest.mark.slow
def test_bound_decreases_with_n_and_symmetry_helps():
    x = 0.2 * gaussian(4000, seed=5)
    totals = [
        float(generalization_bound(x[:n], C8, CONSTANTS, radii=RADII).total)
        for n in (250, 1000, 4000)
    ]
    assert totals[0] > totals[1] > totals[2]
    unconstrained = float(generalization_bound(x, TRIVIAL, CONSTANTS, radii=RADII).total)
    assert totals[2] < unconstrained


def test_confidence_term_and_union_bound():
    x = gaussian(300)
    one = generalization_bound(x, C8, CONSTANTS, radii=RADII)
    strict = CONSTANTS._replace(delta=0.01)
    many = generalization_bound(x, C8, strict, radii=RADII, num_levels=20)
    b = LOSS.loss_range
    assert float(one.confidence) == pytest.approx(3 * b * math.sqrt(math.log(2 / 0.05) / 600))
    assert float(many.confidence) == pytest.approx(3 * b * math.sqrt(math.log(40 / 0.01) / 600))
    np.testing.assert_allclose(one.complexity, many.complexity)


def test_tightness_and_vacuous():
    x = gaussian(300)
    bound = generalization_bound(x, C8, CONSTANTS, radii=RADII)
    assert isinstance(bound, GeneralizationBound)
    assert float(bound.tightness(0.5)) == pytest.approx(float(bound.total) / 0.5)
    assert float(bound.tightness(-0.1)) == np.inf
    assert bool(bound.vacuous) == (float(bound.total) >= 4.0)


# ----------------------------------------------------------------------------- validity


def _envelope(x_train, y_train, lipschitz, bound, group):
    """``clip(min_i y_i + L d_G(x, x_i), −M, M)``: L-Lipschitz and exactly G-invariant."""

    def f(x):
        d = orbit_distances(x, x_train, group)
        return jnp.clip(jnp.min(y_train[None] + lipschitz * d, axis=1), -bound, bound)

    return f


def _gap_and_bound(seed):
    """Random ±1 labels fitted by an invariant Lipschitz envelope; absolute loss, B = 2.

    The bound is below B here, so a bound that is too small by the ratio
    bound/gap (≈ 35) would fail this test.
    """
    rng = np.random.default_rng(seed)
    n, lipschitz = 1000, 2.0
    constants = BoundConstants(lipschitz, 1.0, absolute_loss_constants(1.0, 1, 1.0))
    x = uniform_disk(n, rng)
    y = rng.choice([-1.0, 1.0], n).astype(np.float32)
    model = _envelope(jnp.asarray(x), jnp.asarray(y), lipschitz, 1.0, C8)
    x_test = uniform_disk(20_000, rng)
    y_test = rng.choice([-1.0, 1.0], 20_000).astype(np.float32)
    train = float(jnp.mean(jnp.abs(model(x) - y)))
    test = float(jnp.mean(jnp.abs(model(x_test) - y_test)))
    radii = np.geomspace(0.02, 0.5, 12)  # fixed before the data
    bound = generalization_bound(x, C8, constants, radii=radii)
    assert float(bound.total) < constants.loss.loss_range
    assert test - train > 0.01  # a real gap
    assert test - train <= float(bound.total)
    return x, test - train, float(bound.total)


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_measured_gap_below_a_non_vacuous_bound(seed):
    _gap_and_bound(seed)


@pytest.mark.extended
@pytest.mark.slow
def test_measured_gap_below_the_bound_with_a_fixed_domain_cover():
    """The unit disk (the data's domain) covered without the sample: a smaller bound."""
    x, gap, sample_bound = _gap_and_bound(2)
    constants = BoundConstants(2.0, 1.0, absolute_loss_constants(1.0, 1, 1.0))
    radii = np.geomspace(0.02, 0.5, 12)
    with_domain = generalization_bound(x, C8, constants, radii=radii, domain=Domain("ball", 1.0))
    assert float(with_domain.total) <= sample_bound + 1e-6
    assert gap <= float(with_domain.total)


# ----------------------------------------------------------------------------- errors


def test_bad_inputs_raise_clear_errors(tables):
    trivial, _, c8 = tables
    with pytest.raises(ValueError, match="delta"):
        generalization_bound_from_table(c8, trivial, constants=CONSTANTS._replace(delta=1.5))
    with pytest.raises(ValueError, match="eps"):
        generalization_bound_from_table(c8, trivial, constants=CONSTANTS, eps=-0.1)
    with pytest.raises(ValueError, match="num_levels"):
        generalization_bound_from_table(c8, trivial, constants=CONSTANTS, num_levels=0)
    with pytest.raises(ValueError, match="table"):
        generalization_bound_from_table((1, 2), None, constants=CONSTANTS)
    with pytest.raises(ValueError, match="chaining"):
        generalization_bound_from_table(c8, None, constants=CONSTANTS, chaining="tree")
    with pytest.raises(TypeError, match="constants"):
        generalization_bound_from_table(c8, None, constants=(1.0, 1.0, LOSS))
    with pytest.raises(ValueError, match="lipschitz"):
        generalization_bound(gaussian(10), C8, CONSTANTS._replace(lipschitz=-1.0))
    with pytest.raises(TypeError, match="group"):
        generalization_bound(gaussian(10), "C8", CONSTANTS)
    for radii in ([[0.1, 0.2]], [0.0], [-0.1, 0.2], [np.nan, 0.2], []):
        with pytest.raises(ValueError, match="radii"):
            generalization_bound(gaussian(10), C8, CONSTANTS, radii=radii)
    with pytest.raises(ValueError, match=r"lipschitz.*scalar"):
        generalization_bound(gaussian(10), C8, CONSTANTS._replace(lipschitz=np.ones(2)))
    with pytest.raises(ValueError, match="gap"):
        generalization_bound_from_table(c8, trivial, constants=CONSTANTS).tightness(np.nan)


@pytest.mark.slow
def test_user_radii_are_sorted_with_zeros_and_repeats_dropped():
    x = 0.1 * gaussian(50, seed=5)
    clean = generalization_bound(x, C8, CONSTANTS, radii=[0.01, 0.05, 0.2])
    messy = generalization_bound(x, C8, CONSTANTS, radii=[0.2, 0.0, 0.05, 0.01, 0.05])
    assert float(messy.total) == pytest.approx(float(clean.total), rel=1e-6)


BAD_TABLES = (
    "negative radii", "zero radius", "nan radius", "decreasing radii", "repeated radius",
    "zero counts", "fractional counts", "counts above n", "increasing counts", "n inflated",
    "n inflated on both", "n of one table", "n of a hand-made table", "fractional n",
    "zero group size", "other radii", "other sample", "trivial is not {e}", "swapped tables",
    "wrong shape",
)  # fmt: skip


def _bad_tables(trivial, c8, other):
    """(symmetric, trivial, the field the error must name) for each way a table can be wrong."""
    r, c = np.asarray(c8.radii), np.asarray(c8.counts)
    step = int(np.flatnonzero(np.diff(c) < 0)[0])  # swap a step: counts increase there
    swap = c.copy()
    swap[[step, step + 1]] = c[[step + 1, step]]
    return {
        "negative radii": (c8._replace(radii=-r), trivial, "table.radii"),
        "zero radius": (c8._replace(radii=np.r_[0.0, r[1:]]), trivial, "table.radii"),
        "nan radius": (c8._replace(radii=np.r_[np.nan, r[1:]]), trivial, "table.radii"),
        "decreasing radii": (c8._replace(radii=r[::-1]), trivial, "table.radii"),
        "repeated radius": (c8._replace(radii=np.r_[r[0], r[:-1]]), trivial, "table.radii"),
        "zero counts": (c8._replace(counts=0 * c), None, "table.counts"),
        "fractional counts": (c8._replace(counts=c + 0.5), None, "table.counts"),
        "counts above n": (c8._replace(counts=c + 600), None, "table.counts"),
        "increasing counts": (c8._replace(counts=swap), None, "table.counts"),
        "n inflated": (c8._replace(num_points=10**6), None, "num_points"),
        "n inflated on both": (
            c8._replace(num_points=10**6),
            trivial._replace(num_points=10**6),
            "num_points",
        ),
        "n of one table": (c8._replace(num_points=10**6), trivial, "num_points"),
        "n of a hand-made table": (
            c8._replace(num_points=10**6, fingerprint=None),
            trivial,
            "num_points",
        ),
        "fractional n": (c8._replace(num_points=600.5, fingerprint=None), None, "num_points"),
        "zero group size": (c8._replace(group_size=0), None, "group_size"),
        "other radii": (c8._replace(radii=1.5 * r), trivial, "radii"),
        "other sample": (c8, other, "different samples"),
        "trivial is not {e}": (c8, c8, "group_size"),
        "swapped tables": (trivial, c8._replace(group_size=1), "counts"),
        "wrong shape": (c8._replace(counts=c[:-1]), None, "shapes"),
    }


@pytest.fixture(scope="module")
def sample_tables():
    """Tables of two samples of the same size (fingerprints recorded by the builder)."""
    symmetric, trivial = bounds.bound_tables(0.1 * gaussian(300, seed=1), C8, RADII)
    _, other = bounds.bound_tables(0.1 * gaussian(300, seed=2), C8, RADII)
    return symmetric, trivial, other


@pytest.mark.parametrize("case", BAD_TABLES)
def test_malformed_or_mismatched_tables_are_refused(sample_tables, case):
    symmetric, trivial, other = sample_tables
    generalization_bound_from_table(symmetric, trivial, constants=CONSTANTS)  # the good pair
    table, free, field = _bad_tables(trivial, symmetric, other)[case]
    with pytest.raises(ValueError, match=field):
        generalization_bound_from_table(table, free, constants=CONSTANTS)
    assert set(_bad_tables(trivial, symmetric, other)) == set(BAD_TABLES)


def test_split_modules_are_the_only_home_of_their_names():
    # Renamed in one step: approximation, subgroups and losses own their names.
    for name in ("approximation_error", "optimal_subset", "squared_loss_constants"):
        assert not hasattr(bounds, name)
