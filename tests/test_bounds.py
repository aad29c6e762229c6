"""Tests for the certified bound, approximation error and trade-off (theory.md §4, §5)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import bounds, groups
from jaxsym.bounds import (
    GRID_CELLS,
    approximation_error,
    generalization_bound,
    generalization_bound_from_table,
    optimal_level,
    optimal_subset,
    ramp_loss_constants,
    squared_loss_constants,
    tradeoff,
)
from jaxsym.covering import prefix_covering_numbers, tables_from_counts

C8 = groups.cyclic_rotations(8)
TRIVIAL = groups.cyclic_rotations(1)
LOSS = squared_loss_constants(1.0, 1, 1.0)  # M = 1, d_y = 1, |y| ≤ 1
CONSTANTS = dict(
    lipschitz=1.0, output_bound=1.0, loss_lipschitz=LOSS.loss_lipschitz, loss_range=LOSS.loss_range
)
RADII = np.geomspace(1e-3, 1.0, 20)


def gaussian(n, seed=0, dim=2):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


@pytest.fixture(scope="module")
def tables():
    """Nested tables {e} ⊂ C4 ⊂ C8 of one sample (one distance pass)."""
    x = gaussian(600)
    counts = prefix_covering_numbers(x, C8, RADII, order=[0, 2, 4, 6, 1, 3, 5, 7])
    trivial, _, _, c4, _, _, _, c8 = tables_from_counts(RADII, counts, 600, range(1, 9))
    return trivial, c4, c8


def brute_force_bound(
    table,
    trivial,
    eps,
    *,
    lipschitz,
    output_bound,
    loss_lipschitz,
    loss_range,
    delta=0.05,
    num_levels=1,
    output_dim=1,
    grid=20_000,
):
    """Independent float64 check: entropy by its definition, left Riemann sum, α on a grid."""
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
    step = upper / grid
    integrand = np.sqrt(entropy[:-1]) * step  # left endpoints: an upper bound
    tails = np.concatenate([np.cumsum(integrand[::-1])[::-1], [0.0]])
    objective = 4 * u + 12 / math.sqrt(table.num_points) * tails
    rad = np.min(objective[np.isfinite(objective)])
    n = table.num_points
    return 2 * rad + 3 * loss_range * math.sqrt(math.log(2 * num_levels / delta) / (2 * n))


@pytest.mark.parametrize("eps", [0.0, 0.02, 0.1, 0.4])
def test_bound_matches_brute_force_riemann_sum(tables, eps):
    trivial, _, c8 = tables
    exact = generalization_bound_from_table(c8, trivial, eps=eps, **CONSTANTS)
    brute = brute_force_bound(c8, trivial, eps, **CONSTANTS)
    # The exact integral of the staircase is below any left Riemann sum and close to a fine one.
    assert float(exact.total) <= brute + 1e-4
    assert float(exact.total) >= brute - 0.02 * brute
    assert float(exact.complexity) == pytest.approx(2 * float(exact.rademacher))
    assert np.all(np.diff(np.asarray(exact.entropy)) <= 0)


@jax.jit
def _jitted_total(table, trivial, eps):
    return generalization_bound_from_table(table, trivial, eps=eps, **CONSTANTS).total


@settings(max_examples=20)
@given(a=st.floats(0, 1.5), b=st.floats(0, 1.5))
def test_bound_non_decreasing_in_eps(tables, a, b):
    trivial, _, c8 = tables
    low, high = sorted((a, b))
    assert float(_jitted_total(c8, trivial, low)) <= float(_jitted_total(c8, trivial, high)) + 1e-5


def test_eps_endpoints_are_the_equivariant_and_unconstrained_bounds(tables):
    trivial, _, c8 = tables
    at_zero = generalization_bound_from_table(c8, trivial, eps=0.0, **CONSTANTS).total
    equivariant = generalization_bound_from_table(c8, None, eps=0.0, **CONSTANTS).total
    np.testing.assert_allclose(at_zero, equivariant, rtol=1e-6)
    unconstrained = generalization_bound_from_table(trivial, None, eps=0.0, **CONSTANTS).total
    large = LOSS.loss_range / (2 * LOSS.loss_lipschitz)  # B/(2L_ℓ): symmetric steps past B/2
    for eps in (large, 2 * large, 10.0):
        got = generalization_bound_from_table(c8, trivial, eps=eps, **CONSTANTS).total
        np.testing.assert_allclose(got, unconstrained, rtol=1e-6)
    assert float(equivariant) < float(unconstrained)


def test_gradient_in_eps_matches_finite_differences(tables):
    trivial, _, c8 = tables

    def total(e):
        return generalization_bound_from_table(c8, trivial, eps=e, **CONSTANTS).total

    grad = jax.jit(jax.grad(total))
    checked = 0
    for eps in np.linspace(0.003, 0.5, 23):
        h = 1e-3
        left = (total(eps) - total(eps - h)) / h
        right = (total(eps + h) - total(eps)) / h
        if abs(float(left) - float(right)) > 0.05 * (abs(float(left)) + 1e-3):
            continue  # a kink inside [eps − h, eps + h]
        checked += 1
        np.testing.assert_allclose(
            float(grad(eps)), 0.5 * float(left + right), rtol=0.05, atol=0.02
        )
    assert checked >= 10
    assert float(grad(0.05)) > 0


def test_from_table_is_jitted_without_retracing(tables):
    trivial, _, c8 = tables

    @jax.jit
    @chex.assert_max_traces(n=1)
    def total(e):
        return generalization_bound_from_table(c8, trivial, eps=e, **CONSTANTS).total

    for eps in (0.0, 0.1, 0.2):
        total(jnp.float32(eps))


@settings(max_examples=10)
@given(eps=st.floats(0, 0.5), num_levels=st.integers(1, 50))
def test_bound_non_increasing_as_the_set_grows(tables, eps, num_levels):
    trivial, c4, c8 = tables
    kw = dict(CONSTANTS, eps=eps, num_levels=num_levels)
    values = [
        float(generalization_bound_from_table(t, trivial, **kw).total) for t in (trivial, c4, c8)
    ]
    assert values[0] >= values[1] - 1e-5 >= values[2] - 2e-5


def test_bound_decreases_with_n():
    x = gaussian(4000, seed=5)
    totals = [
        float(generalization_bound(x[:n], C8, radii=RADII, **CONSTANTS).total)
        for n in (250, 1000, 4000)
    ]
    assert totals[0] > totals[1] > totals[2]
    unconstrained = float(generalization_bound(x, TRIVIAL, eps=0.3, radii=RADII, **CONSTANTS).total)
    assert totals[2] < unconstrained


def test_confidence_term_and_union_bound():
    x = gaussian(300)
    one = generalization_bound(x, C8, radii=RADII, **CONSTANTS)
    many = generalization_bound(x, C8, radii=RADII, num_levels=20, delta=0.01, **CONSTANTS)
    b = LOSS.loss_range
    assert float(one.confidence) == pytest.approx(3 * b * math.sqrt(math.log(2 / 0.05) / 600))
    assert float(many.confidence) == pytest.approx(3 * b * math.sqrt(math.log(40 / 0.01) / 600))
    np.testing.assert_allclose(one.complexity, many.complexity)


def test_loss_constants_bound_the_losses():
    rng = np.random.default_rng(0)
    m, d, y_bound = 0.7, 3, 1.2
    b, lip = squared_loss_constants(m, d, y_bound)
    assert b == pytest.approx((m * math.sqrt(d) + y_bound) ** 2)
    pred = rng.uniform(-m, m, size=(20000, 2, d))
    pred[:5000, 0] = m * np.sign(rng.normal(size=(5000, d)))  # corners
    y = rng.normal(size=(20000, d))
    y *= y_bound / np.linalg.norm(y, axis=1, keepdims=True)
    loss = np.sum((pred - y[:, None]) ** 2, -1)
    assert loss.max() <= b + 1e-9
    slope = np.abs(loss[:, 0] - loss[:, 1]) / np.linalg.norm(pred[:, 0] - pred[:, 1], axis=-1)
    assert slope.max() <= lip + 1e-9
    b, lip = ramp_loss_constants(0.25)
    z = rng.uniform(-3, 3, size=(10000, 2))
    ramp = np.clip(1 - z / 0.25, 0, 1)
    assert b == 1.0 and ramp.max() <= 1
    assert np.max(np.abs(ramp[:, 0] - ramp[:, 1]) / np.abs(z[:, 0] - z[:, 1])) <= lip + 1e-9


def _target(x):
    """A 0.8-Lipschitz, C_8-invariant (radial) target."""
    return 0.8 * jnp.sin(jnp.linalg.norm(x, axis=-1))


def _mcshane(x_train, y_train, lipschitz, bound):
    """The L-Lipschitz extension min_i (y_i + L‖x − x_i‖), clipped to [−M, M]."""

    def f(x):
        dist = jnp.linalg.norm(x[:, None, :] - x_train[None], axis=-1)
        return jnp.clip(jnp.min(y_train[None] + lipschitz * dist, axis=1), -bound, bound)

    return f


@pytest.mark.parametrize("n", [200, 1000])
def test_measured_gap_never_exceeds_the_certified_bound(n):
    """1-Lipschitz models by construction, exactly invariant (ε = 0) or unconstrained."""
    sigma, y_bound = 0.3, 1.0
    x_test = jnp.asarray(gaussian(20000, seed=99))
    y_test_clean = _target(x_test)
    bound_sym = None
    for seed in range(3):
        rng = np.random.default_rng(seed)
        x = jnp.asarray(rng.normal(size=(n, 2)).astype(np.float32))
        y = jnp.clip(_target(x) + sigma * rng.normal(size=n), -y_bound, y_bound)
        y_test = jnp.clip(y_test_clean + sigma * rng.normal(size=20000), -y_bound, y_bound)
        plain = _mcshane(x, y, 1.0, 1.0)
        symmetric = jaxsym.symmetrize(plain, C8)  # Q_G keeps Lip ≤ 1 and the output range
        for model, S in ((symmetric, C8), (plain, TRIVIAL)):
            train = float(jnp.mean((model(x) - y) ** 2))
            test = float(jnp.mean((model(x_test) - y_test) ** 2))
            bound = generalization_bound(x, S, radii=RADII, **CONSTANTS)
            assert abs(test - train) <= float(bound.total)
            if S is C8:
                bound_sym = float(bound.total)
    assert bound_sym is not None


# ----------------------------------------------------------------------------- §5


def test_approximation_error_formulas():
    eta, eps = jnp.array([0.5, 0.5, 0.2]), jnp.array([0.1, 0.7, 0.0])
    np.testing.assert_allclose(approximation_error(eta, eps), [0.16, 0.0, 0.04], rtol=1e-6)
    sup = approximation_error(0.5, 0.3, kind="sup", eta_sup=1.2, group_size=8)
    assert float(sup.upper) == pytest.approx(0.25 * (1 - 0.3 / 1.2) ** 2)
    assert float(sup.lower) == pytest.approx((0.5 - 0.3 * math.sqrt(7 / 16)) ** 2)
    general = approximation_error(0.5, 0.3, kind="sup", eta_sup=1.2)
    assert float(general.lower) == pytest.approx((0.5 - 0.3 / math.sqrt(2)) ** 2)
    grad = jax.grad(lambda e: approximation_error(0.5, e))(0.2)
    assert float(grad) == pytest.approx(-2 * 0.3)


@settings(max_examples=25)
@given(eta=st.floats(0, 2), ratio=st.floats(1, 3), eps=st.floats(0, 4), size=st.integers(1, 64))
def test_sup_lower_bound_below_upper_bound(eta, ratio, eps, size):
    """η_∞ ≥ η_2 in general; the lower bound never exceeds the upper bound."""
    sup = approximation_error(eta, eps, kind="sup", eta_sup=eta * ratio, group_size=size)
    assert float(sup.lower) <= float(sup.upper) + 1e-6
    assert float(sup.upper) <= eta**2 + 1e-6


def _f_star(eta):
    """q + η·a on R² under C_8: q radial, a = r cos(3θ) (E a² = 1 for N(0, I), Q_G a = 0)."""

    def f(x):
        r = jnp.linalg.norm(x, axis=-1)
        theta = jnp.arctan2(x[:, 1], x[:, 0])
        return (jnp.tanh(r) + eta * r * jnp.cos(3 * theta))[:, None]

    return f


@pytest.mark.parametrize("eta", [0.1, 0.3])
def test_risk_of_the_best_invariant_model_is_eta_squared_plus_noise(eta):
    sigma = 0.2
    key_x, key_noise = jax.random.split(jax.random.key(0))
    x = jax.random.normal(key_x, (200_000, 2))
    f = _f_star(eta)
    y = f(x) + sigma * jax.random.normal(key_noise, (200_000, 1))
    best = jaxsym.symmetrize(f, C8)
    risk = float(jnp.mean((best(x) - y) ** 2))
    d2 = float(jaxsym.distance_to_equivariance(f, x[:20000], C8))
    assert d2 == pytest.approx(eta, rel=0.03)
    expected = float(approximation_error(eta, 0.0)) + sigma**2
    # Monte Carlo standard error of a mean of 200k squared residuals is ≈ 0.3% here.
    assert risk == pytest.approx(expected, rel=0.02)
    for t in (0.25, 0.5):  # the dial attains (η − ε)² at ε = t η
        dialed = jaxsym.dial(f, C8, t)
        risk_t = float(jnp.mean((dialed(x) - y) ** 2))
        expected_t = float(approximation_error(eta, t * eta)) + sigma**2
        assert risk_t == pytest.approx(expected_t, rel=0.02)


@pytest.fixture(scope="module")
def small_samples():
    return {n: gaussian(n, seed=n) for n in (64, 256)}


@settings(max_examples=15)
@given(eta=st.floats(0, 1.5), n=st.sampled_from([64, 256]), kind=st.sampled_from(["rms", "sup"]))
def test_certified_eps_star_never_exceeds_eta(small_samples, eta, n, kind):
    extra = {"eta_sup": 1.5 * eta} if kind == "sup" else {}
    best = optimal_level(
        small_samples[n], C8, eta=eta, kind=kind, noise=0.1, radii=RADII, **extra, **CONSTANTS
    )
    level = eta if kind == "rms" else 1.5 * eta
    assert float(best.eps) <= level + 1e-6
    curve = best.curve
    assert curve.eps.shape == curve.total.shape == curve.approximation.shape
    assert float(best.total) == pytest.approx(float(jnp.min(curve.total)))
    np.testing.assert_allclose(
        curve.total, 0.01 + curve.approximation + curve.generalization, rtol=1e-5
    )
    assert np.all(np.diff(np.asarray(curve.generalization)) >= -1e-5)


def test_tradeoff_uses_a_union_bound_over_the_grid():
    x = gaussian(256, seed=256)
    curve = tradeoff(x, C8, eta=0.2, eps_grid=[0.0, 0.1], radii=RADII, **CONSTANTS)
    single = generalization_bound(x, C8, eps=0.1, num_levels=2, radii=RADII, **CONSTANTS)
    assert float(curve.generalization[1]) == pytest.approx(float(single.total), rel=1e-5)
    assert float(curve.approximation[1]) == pytest.approx(0.01, rel=1e-5)


@pytest.mark.parametrize("eta, keep", [(0.01, range(8)), (1.5, [0, 2, 4, 6])])
def test_optimal_subset_finds_the_data_symmetry(eta, keep):
    """f* invariant under C4 ⊂ C8 (a cos 4θ term) but not C8.

    A small asymmetry is not worth the generalization cost of giving up C8; a
    large one is (outputs leave [−M, M] here: this checks the selection logic).
    """

    def f(x):
        r = jnp.linalg.norm(x, axis=-1)
        theta = jnp.arctan2(x[:, 1], x[:, 0])
        return (jnp.tanh(r) + eta * r * jnp.cos(4 * theta))[:, None]

    x_big = jax.random.normal(jax.random.key(1), (20000, 2))
    profile = jaxsym.defect_profile(f, x_big, C8, reduce="rms")
    x = gaussian(3000, seed=7)
    choice = optimal_subset(x, C8, profile, noise=0.1, radii=RADII, **CONSTANTS)
    assert choice.candidates.shape[1] == 8 and choice.candidates[0].sum() == 1
    assert np.all(choice.candidates[-1])
    # Approximation error vs ‖f − Q_H f‖² by Monte Carlo with the actual subgroup average.
    for k, members in enumerate(choice.candidates):
        q_h = jaxsym.symmetrize(f, C8.subset(np.flatnonzero(members)))
        mc = float(jnp.mean((f(x_big) - q_h(x_big)) ** 2))
        assert float(choice.approximation[k]) == pytest.approx(mc, rel=0.03, abs=1e-4)
    assert np.all(np.diff(np.asarray(choice.generalization)) <= 1e-5)
    assert int(jnp.argmin(choice.total)) == choice.index
    expected = np.zeros(8, bool)
    expected[list(keep)] = True
    np.testing.assert_array_equal(choice.mask, expected)


def test_bad_inputs_raise_clear_errors(tables):
    trivial, _, c8 = tables
    with pytest.raises(ValueError, match="delta"):
        generalization_bound_from_table(c8, trivial, delta=1.5, **CONSTANTS)
    with pytest.raises(ValueError, match="eps"):
        generalization_bound_from_table(c8, trivial, eps=-0.1, **CONSTANTS)
    with pytest.raises(ValueError, match="num_levels"):
        generalization_bound_from_table(c8, trivial, num_levels=0, **CONSTANTS)
    with pytest.raises(ValueError, match="table"):
        generalization_bound_from_table((1, 2), None, **CONSTANTS)
    with pytest.raises(ValueError, match="eta_sup"):
        approximation_error(0.1, 0.0, kind="sup")
    with pytest.raises(ValueError, match="kind"):
        approximation_error(0.1, 0.0, kind="l1")
    with pytest.raises(ValueError, match="margin"):
        ramp_loss_constants(0.0)
    with pytest.raises(ValueError, match="not a group"):
        bounds.subgroup_chain(groups.rotation_range(0.3, 3), np.zeros(3))
    with pytest.raises(ValueError, match="data_profile"):
        bounds.subgroup_chain(C8, np.zeros(5))
