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
from jaxsym.approximation import ApproximationBounds, approximation_error, optimal_level, tradeoff
from jaxsym.bounds import generalization_bound
from jaxsym.losses import BoundConstants, squared_loss_constants

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


@settings(max_examples=25)
@given(eta=st.floats(0, 2), ratio=st.floats(1, 3), eps=st.floats(0, 4), size=st.integers(1, 64))
def test_sup_lower_bound_below_upper_bound(eta, ratio, eps, size):
    """η_∞ ≥ η_2 in general; the lower bound never exceeds the upper bound."""
    sup = approximation_error(eta, eps, "max", eta_sup=eta * ratio, group_size=size)
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


@pytest.mark.slow
@settings(max_examples=6)
@given(eta=st.floats(0, 1.5), n=st.sampled_from([64, 256]), reduce=st.sampled_from(["rms", "max"]))
def test_certified_eps_star_never_exceeds_eta(small_samples, eta, n, reduce):
    extra = {"eta_sup": 1.5 * eta} if reduce == "max" else {}
    best = optimal_level(
        small_samples[n], C8, CONSTANTS, eta=eta, reduce=reduce, noise=0.1, radii=RADII, **extra
    )
    level = eta if reduce == "rms" else 1.5 * eta
    assert float(best.eps) <= level + 1e-6
    curve = best.curve
    assert curve.eps.shape == curve.total.shape == curve.approximation.shape
    assert float(best.total) == pytest.approx(float(jnp.min(curve.total)))
    np.testing.assert_allclose(
        curve.total, 0.01 + curve.approximation + curve.generalization, rtol=1e-5
    )
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
