"""Tests for the approximation error, the trade-off and the optimal level (docs/theory.md §5)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups
from jaxsym.approximation import (
    ApproximationBounds,
    approximation_error,
    default_eps_grid,
    optimal_level,
    tradeoff,
)
from jaxsym.bounds import generalization_bound
from jaxsym.constants import BoundConstants, squared_loss_constants

C8 = groups.cyclic_rotations(8)
CONSTANTS = BoundConstants(1.0, 1.0, squared_loss_constants(1.0, 1, 1.0))
RADII = np.geomspace(1e-3, 1.0, 20)


def gaussian(n, seed=0, dim=2):
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def test_approximation_error_has_one_return_type():
    eta, eps = jnp.array([0.5, 0.5, 0.2]), jnp.array([0.1, 0.7, 0.0])
    rms = approximation_error(eta, eps)
    assert isinstance(rms, ApproximationBounds)
    np.testing.assert_allclose(rms.upper, [0.16, 0.0, 0.04], rtol=1e-6)
    np.testing.assert_array_equal(rms.lower, rms.upper)
    sup = approximation_error(0.5, 0.3, "max", eta_sup=1.2, group_size=8)
    assert isinstance(sup, ApproximationBounds)
    assert float(sup.upper) == pytest.approx(0.25 * (1 - 0.3 / 1.2) ** 2)
    assert float(sup.lower) == pytest.approx((0.5 - 0.3 * math.sqrt(7 / 16)) ** 2)
    general = approximation_error(0.5, 0.3, reduce="max", eta_sup=1.2)
    assert float(general.lower) == pytest.approx((0.5 - 0.3 / math.sqrt(2)) ** 2)
    grad = jax.grad(lambda e: approximation_error(0.5, e).upper)(0.2)
    assert float(grad) == pytest.approx(-2 * 0.3)


# ----------------------------------------------------------------------------- brute force
# C_N acting freely on m orbits of N points, μ uniform (G-invariant), f* scalar and the target
# invariance: point (o, i) ↦ (o, i + k). Everything below is computed from the table of values.


def _finite_world(seed, num_orbits, size):
    values = np.random.default_rng(seed).normal(size=(num_orbits, size))
    anti = values - values.mean(1, keepdims=True)  # (I − Q_G) f*
    eta = math.sqrt(np.mean(anti**2))  # ‖(I − Q_G) f*‖_{L²(μ)}
    shifts = [np.abs(np.roll(values, -k, axis=1) - values).max() for k in range(size)]
    return values, eta, max(shifts)  # η_∞ = max_g E_{f*}(g)


def _best_sup_error(values, eps, iterations=200):
    """``min ‖f − f*‖²`` over f with every ``E_f(g) ≤ ε``, by direct optimisation.

    On an orbit of a transitive group the constraint is ``max f − min f ≤ ε``, so the
    best f clips the orbit's values to a window ``[a, a + ε]``; the squared error is
    convex in ``a`` and a ternary search finds its minimum.
    """
    low, high = values.min(1) - eps, values.max(1)
    for _ in range(iterations):
        a1, a2 = low + (high - low) / 3, high - (high - low) / 3
        cost1 = ((np.clip(values, a1[:, None], a1[:, None] + eps) - values) ** 2).sum(1)
        cost2 = ((np.clip(values, a2[:, None], a2[:, None] + eps) - values) ** 2).sum(1)
        low, high = np.where(cost1 <= cost2, low, a1), np.where(cost1 <= cost2, a2, high)
    a = (low + high)[:, None] / 2
    return np.mean((np.clip(values, a, a + eps) - values) ** 2)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10**6),
    num_orbits=st.integers(1, 4),
    size=st.integers(2, 8),
    scale=st.floats(0, 2.5),
)
def test_sup_class_bounds_bracket_the_brute_force_optimum(seed, num_orbits, size, scale):
    values, eta, eta_sup = _finite_world(seed, num_orbits, size)
    eps = scale * eta_sup
    truth = _best_sup_error(values, eps)
    for group_size in (size, None):
        bounds = approximation_error(eta, eps, "max", eta_sup=eta_sup, group_size=group_size)
        assert float(bounds.lower) <= truth * (1 + 1e-4) + 1e-6
        assert truth <= float(bounds.upper) * (1 + 1e-4) + 1e-6
    # The upper end is the dial at t = min(1, ε/η_∞), computed directly: feasible, and its error.
    t = min(1.0, eps / eta_sup)
    dial = values.mean(1, keepdims=True) + t * (values - values.mean(1, keepdims=True))
    assert np.ptp(dial, axis=1).max() <= eps + 1e-9
    assert float(bounds.upper) == pytest.approx(np.mean((dial - values) ** 2), rel=1e-4, abs=1e-7)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), num_orbits=st.integers(1, 4), size=st.integers(2, 8))
def test_every_function_has_eta_2_at_most_c_eta_sup(seed, num_orbits, size):
    """The consistency condition of §5 holds on random functions, and is tight for |G| = 2."""
    _, eta, eta_sup = _finite_world(seed, num_orbits, size)
    factor = math.sqrt((1 - 1 / size) / 2)
    assert eta <= factor * eta_sup * (1 + 1e-12)
    if size == 2 and num_orbits == 1:  # f* = (a, b): η_2 = |a − b|/2 = c η_∞ exactly
        assert eta == pytest.approx(factor * eta_sup, rel=1e-12)
    approximation_error(eta, 0.0, "max", eta_sup=eta_sup, group_size=size)  # accepted


@pytest.mark.parametrize(
    "eta, eps, reduce, eta_sup, group_size",
    [
        (1.0, 0.4, "max", 0.5, None),  # issue 15: reported lower = upper = 0.04 as exact
        (1.0, 0.0, "max", 0.0, None),  # issue 15: η_∞ = 0 forces η_2 = 0, A(0) = η² = 1
        (1.0, 0.0, "max", 1.0, None),  # η_∞ = η_2: c = 1/√2 < 1
        (1.0, 0.0, "max", 1.6, 4),  # c = √(3/8): η_∞ ≥ 1.633 needed
        (0.5, 0.1, "max", 1e-3, 8),
        (1.0, 0.2, "rms", 1.0, None),  # the same f* in either mode
        ([0.1, 1.0], 0.0, "max", [1.0, 1.0], None),  # one bad entry of a broadcast
        (1e-3, 0.0, "max", 0.0, 2),
    ],
)
def test_impossible_eta_pairs_are_refused(eta, eps, reduce, eta_sup, group_size):
    with pytest.raises(ValueError, match="eta_sup"):
        approximation_error(eta, eps, reduce, eta_sup=eta_sup, group_size=group_size)


def test_trivial_group_allows_only_eta_zero():
    """|G| = 1: c = 0, so η_2 = 0 whatever η_∞ (every f is invariant)."""
    bounds = approximation_error(0.0, 0.3, "max", eta_sup=2.0, group_size=1)
    assert float(bounds.lower) == float(bounds.upper) == 0.0
    with pytest.raises(ValueError, match="eta_sup"):
        approximation_error(0.1, 0.3, "max", eta_sup=2.0, group_size=1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), size=st.integers(2, 6), scale=st.floats(0, 1.5))
def test_rms_class_optimum_is_attained_and_never_beaten(seed, size, scale):
    """``(η_2 − ε)_+²``: the dial attains it; random members of the class do no better."""
    values, eta, _ = _finite_world(seed, 3, size)
    eps = scale * eta
    exact = float(approximation_error(eta, eps).upper)
    mean = values.mean(1, keepdims=True)
    t = min(1.0, eps / eta)
    dial = mean + t * (values - mean)
    assert math.sqrt(np.mean((dial - mean) ** 2)) <= eps + 1e-9  # d_2(dial) ≤ ε
    assert exact == pytest.approx(np.mean((dial - values) ** 2), rel=1e-5, abs=1e-8)
    rng = np.random.default_rng(seed)
    for _ in range(200):
        f = dial + rng.normal(scale=0.3, size=values.shape)
        anti = f - f.mean(1, keepdims=True)
        norm = math.sqrt(np.mean(anti**2))
        if norm > eps:  # back into the class: shrink the anti-symmetric part
            f = f.mean(1, keepdims=True) + anti * (eps / norm)
        assert np.mean((f - values) ** 2) >= exact * (1 - 1e-5) - 1e-9


def _f_star(eta):
    """q + η·a on R² under C_8: q radial, a = r cos(3θ) (E a² = 1 for N(0, I), Q_G a = 0)."""

    def f(x):
        r = jnp.linalg.norm(x, axis=-1)
        theta = jnp.arctan2(x[:, 1], x[:, 0])
        return (jnp.tanh(r) + eta * r * jnp.cos(3 * theta))[:, None]

    return f


@pytest.mark.slow
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
    # Monte Carlo standard error of a mean of 200k squared residuals is ≈ 0.3% here.
    assert risk == pytest.approx(eta**2 + sigma**2, rel=0.02)
    for t in (0.25, 0.5):  # the dial attains (η − ε)² at ε = t η
        dialed = jaxsym.dial(f, C8, t)
        risk_t = float(jnp.mean((dialed(x) - y) ** 2))
        expected_t = float(approximation_error(eta, t * eta).upper) + sigma**2
        assert risk_t == pytest.approx(expected_t, rel=0.02)


@pytest.fixture(scope="module")
def small_samples():
    return {n: gaussian(n, seed=n) for n in (64, 256)}


@pytest.mark.extended
@pytest.mark.slow
@settings(max_examples=6)
@given(eta=st.floats(0, 1.5), n=st.sampled_from([64, 256]), reduce=st.sampled_from(["rms", "max"]))
def test_certified_eps_star_never_exceeds_eta(small_samples, eta, n, reduce):
    extra = {"eta_sup": 2 * eta} if reduce == "max" else {}  # η_2 ≤ c η_∞ (§5)
    best = optimal_level(
        small_samples[n], C8, CONSTANTS, eta=eta, reduce=reduce, noise=0.1, radii=RADII, **extra
    )
    level = eta if reduce == "rms" else 2 * eta
    # The default grid is fixed before the data (no η in it): ε* ≤ η⁺, the first level ≥ η.
    grid = np.asarray(best.curve.eps, np.float64)
    assert float(best.eps) <= grid[min(np.searchsorted(grid, level - 1e-6), grid.size - 1)] + 1e-6
    np.testing.assert_allclose(grid, np.linspace(0.0, 2.0, 33), rtol=1e-6)  # M = 1, d_y = 1
    curve = best.curve
    assert curve.eps.shape == curve.total.shape == curve.approximation.shape
    # Independently: σ² + A(ε) in closed form (§5) + the §4 bound computed on its own
    # (its own covering tables, the union bound over the whole grid) at a few levels.
    size = curve.eps.shape[0]
    for k in {0, int(best.index), size // 2, size - 1}:
        eps = float(curve.eps[k])
        if reduce == "rms":
            approx = max(eta - eps, 0.0) ** 2
        else:
            approx = eta**2 * max(1 - eps / (2 * eta), 0.0) ** 2 if eta > 0 else 0.0
        gen = generalization_bound(
            small_samples[n], C8, CONSTANTS, eps=eps, num_levels=size, radii=RADII
        ).total
        expected = 0.01 + approx + float(gen)
        assert float(curve.total[k]) == pytest.approx(expected, rel=1e-4, abs=1e-6)
        assert float(best.total) <= expected * (1 + 1e-4) + 1e-6  # ε* is the minimum
    assert np.all(np.diff(np.asarray(curve.generalization)) >= -1e-5)


@pytest.mark.slow
def test_tradeoff_uses_a_union_bound_over_the_grid():
    x = 0.1 * gaussian(256, seed=256)
    curve = tradeoff(x, C8, CONSTANTS, eta=0.2, eps_grid=[0.0, 0.1], radii=RADII)
    single = generalization_bound(x, C8, CONSTANTS, eps=0.1, num_levels=2, radii=RADII)
    assert float(curve.generalization[1]) == pytest.approx(float(single.total), rel=1e-5)
    assert float(curve.approximation[1]) == pytest.approx(0.01, rel=1e-5)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="eta_sup"):
        approximation_error(0.1, 0.0, "max")
    with pytest.raises(ValueError, match="reduce"):
        approximation_error(0.1, 0.0, "sup")
    with pytest.raises(TypeError):
        approximation_error(0.1, 0.0, kind="sup")  # the old keyword is gone
    with pytest.raises(ValueError, match="group_size"):
        approximation_error(0.1, 0.0, "max", eta_sup=1.0, group_size=0)
    x = gaussian(10)
    with pytest.raises(ValueError, match="eta_sup"):
        tradeoff(x, C8, CONSTANTS, eta=0.1, reduce="max")
    with pytest.raises(ValueError, match="noise"):
        tradeoff(x, C8, CONSTANTS, eta=0.1, noise=-1.0)
    with pytest.raises(ValueError, match="eps_grid"):
        tradeoff(x, C8, CONSTANTS, eta=0.1, eps_grid=[])
    with pytest.raises(ValueError, match="eps_grid"):
        tradeoff(x, C8, CONSTANTS, eta=0.1, eps_grid=[0.0, np.inf])
    with pytest.raises(ValueError, match="eta"):
        tradeoff(x, C8, CONSTANTS, eta=[0.1, 0.2])
    with pytest.raises(ValueError, match="eta"):
        approximation_error(np.nan, 0.0)
    with pytest.raises(ValueError, match="eps"):
        approximation_error(0.1, -1e-3)
    for args, name in (((-1.0, 1), "output_bound"), ((1.0, 0), "output_dim")):
        with pytest.raises(ValueError, match=name):
            default_eps_grid(*args)
    # Impossible η pairs are refused before any covering work, with |G| of the group.
    big = gaussian(200_000)
    with pytest.raises(ValueError, match="eta_sup"):
        tradeoff(big, C8, CONSTANTS, eta=1.0, eta_sup=1.5, reduce="max")
