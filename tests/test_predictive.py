"""Predictive trade-off (theory.md §8): dial risk, cross-fitting, the synthetic C8 task."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups
from jaxsym.models import RandomFeaturesModel, random_features_ridge
from jaxsym.predictive import (
    cross_fitting_folds,
    dial_risk,
    predictive_tradeoff,
)
from jaxsym.tasks import planar_target, planar_task

C8 = groups.cyclic_rotations(8)
FIT = random_features_ridge(400, 1e-4, key=jax.random.key(7), lengthscale=0.5)


@pytest.fixture(scope="module")
def test_inputs():
    return jax.random.normal(jax.random.key(1234), (20000, 2))


def _fresh_labels(x, eta):
    return planar_target(x, eta) + 0.3 * jax.random.normal(jax.random.key(4321), (x.shape[0], 1))


def _tanh_model(weights, z):
    return jnp.tanh(z @ weights) + z[:, :1] ** 2


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_dial_risk_matches_direct_evaluation(seed):
    """The quadratic identity against the dial evaluated point by point."""
    keys = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(keys[0], (64, 2))
    y = jax.random.normal(keys[1], (64, 1))
    weights = jax.random.normal(keys[2], (2, 1))
    # A pytree model (the weights are leaves): one compilation serves every example.
    model = jax.tree_util.Partial(_tanh_model, weights)
    grid = jnp.linspace(0.0, 1.0, 4)
    result = dial_risk(model, x, y, C8, grid)
    direct = [jnp.mean(jnp.sum((jaxsym.dial(model, C8, t)(x) - y) ** 2, -1)) for t in grid]
    np.testing.assert_allclose(result.risk, np.asarray(direct), rtol=1e-4, atol=1e-5)
    fine = np.linspace(0, 1, 2001)
    curve = (
        float(result.symmetric_risk)
        - 2 * fine * float(result.alignment)
        + fine**2 * float(result.anti_energy)
    )
    assert float(result.t_best) == pytest.approx(fine[np.argmin(curve)], abs=1e-3)


@pytest.mark.slow
def test_cross_fitted_curve_matches_manual_loop():
    # n = 203 is not a multiple of K = 4: the padded slots must carry no weight.
    task = planar_task(203, 0.3, key=jax.random.key(0))
    grid = jnp.linspace(0.0, 1.0, 3)
    result = predictive_tradeoff(FIT, task.x, task.y, C8, t_grid=grid, num_folds=4)
    # key=None: fold k holds every 4th sample starting at k.
    squares = np.zeros(len(grid))
    for k in range(4):
        held = np.arange(k, 203, 4)
        train = np.setdiff1d(np.arange(203), held)
        model = FIT(task.x[train], task.y[train])
        for i, t in enumerate(grid):
            pred = jaxsym.dial(model, C8, t)(task.x[held])
            squares[i] += float(jnp.sum((pred - task.y[held]) ** 2))
    np.testing.assert_allclose(result.risk, squares / 203, rtol=1e-4)

    # Three levels determine the quadratic: its minimizer over [0, 1] is t_star_cv.
    coefficients = np.polyfit(np.asarray(grid), squares / 203, 2)
    vertex = -coefficients[1] / (2 * coefficients[0])
    assert float(result.t_star_cv) == pytest.approx(np.clip(vertex, 0, 1), abs=1e-3)
    # The correction swaps the cross-fitted C for the full-data model's d_2(f̂)².
    expected = np.clip(float(result.alignment) / float(result.distance) ** 2, 0, 1)
    assert float(result.t_star) == pytest.approx(expected, rel=1e-5)
    uncorrected = predictive_tradeoff(FIT, task.x, task.y, C8, num_folds=4, correct_bias=False)
    assert float(uncorrected.t_star) == pytest.approx(float(result.t_star_cv), abs=1e-6)


@pytest.mark.slow
def test_closure_models_evaluated_fold_by_fold_match_stacked():
    """Plain closures cannot be stacked: they are evaluated fold by fold on padded folds."""
    task = planar_task(203, 0.3, key=jax.random.key(0))
    grid = jnp.linspace(0.0, 1.0, 3)

    def closure_fit(a, b):
        model = FIT(a, b)
        return lambda z: model(z)

    stacked = predictive_tradeoff(FIT, task.x, task.y, C8, t_grid=grid, num_folds=4)
    closures = predictive_tradeoff(closure_fit, task.x, task.y, C8, t_grid=grid, num_folds=4)
    for name in stacked._fields:
        np.testing.assert_allclose(getattr(closures, name), getattr(stacked, name), rtol=1e-4)


@pytest.mark.slow
def test_eps_star_and_distance_on_orbit_augmented_inputs():
    task = planar_task(200, 0.3, key=jax.random.key(1))
    result = predictive_tradeoff(FIT, task.x, task.y, C8, num_folds=4, key=jax.random.key(2))
    model = FIT(task.x, task.y)
    distance = jaxsym.distance_to_equivariance(
        model, groups.transform_batch(C8, C8.elements, task.x).reshape(-1, 2), C8
    )
    assert float(result.distance) == pytest.approx(float(distance), rel=1e-4)
    assert float(result.eps_star) == pytest.approx(float(result.t_star * distance), rel=1e-4)

    # Brute force: the cross-fitted dial risk evaluated directly on a fine grid of levels.
    fine = np.linspace(0.0, 1.0, 2001)[:, None, None]
    risk = np.zeros(fine.shape[0])
    anti_energy = 0.0
    for held in cross_fitting_folds(200, 4, key=jax.random.key(2)):
        train = np.setdiff1d(np.arange(200), held)
        model = FIT(task.x[train], task.y[train])
        sym = np.asarray(jaxsym.symmetrize(model, C8)(task.x[held]), np.float64)
        anti = np.asarray(model(task.x[held]), np.float64) - sym
        labels = np.asarray(task.y[held], np.float64)
        risk += np.sum((sym + fine * anti - labels) ** 2, axis=(1, 2))
        anti_energy += np.sum(anti**2)
    assert float(result.t_star_cv) == pytest.approx(fine[np.argmin(risk), 0, 0], abs=1e-3)
    # The bias correction swaps the held-out ‖(I − Q_G) f‖² for the full model's d_2(f̂)².
    corrected = risk + fine[:, 0, 0] ** 2 * (200 * float(distance) ** 2 - anti_energy)
    assert float(result.t_star) == pytest.approx(fine[np.argmin(corrected), 0, 0], abs=1e-3)
    assert 0.0 < float(result.t_star) < 1.0  # an interior minimum: the clip did not decide


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize(("eta", "n"), [(0.1, 800), (0.3, 200)])
def test_predicted_t_star_matches_best_t_on_fresh_data(eta, n, test_inputs):
    """Per training draw, t* from training data vs the exact best t on 20 000 fresh
    samples. The realized best t of one draw also depends on that draw's error
    ⟨a, ξ⟩, which training data cannot see, so the 0.15 criterion is on the
    level averaged over draws; single draws must agree within 0.3."""
    best, predicted = [], []
    for seed in range(3):
        task = planar_task(n, eta, key=jax.random.key(10 + seed))
        result = predictive_tradeoff(FIT, task.x, task.y, C8, key=jax.random.key(seed))
        fresh = dial_risk(FIT(task.x, task.y), test_inputs, _fresh_labels(test_inputs, eta), C8)
        best.append(float(fresh.t_best))
        predicted.append(float(result.t_star))
        assert abs(predicted[-1] - best[-1]) <= 0.3
        assert float(result.eta) == pytest.approx(eta, abs=0.1)
    assert abs(np.mean(predicted) - np.mean(best)) <= 0.15
    assert np.mean(np.abs(np.subtract(predicted, best))) <= 0.2
    assert 0.1 < np.mean(best) < 0.99  # a level strictly between the two extremes


@pytest.mark.extended
@pytest.mark.slow
def test_t_star_rises_with_n_and_eta():
    def mean_t_star(eta, n):
        values = []
        for seed in range(2):
            task = planar_task(n, eta, key=jax.random.key(100 + seed))
            values.append(float(predictive_tradeoff(FIT, task.x, task.y, C8).t_star))
        return np.mean(values)

    small, large = mean_t_star(0.1, 200), mean_t_star(0.1, 1600)
    assert large > small + 0.2
    assert mean_t_star(0.3, 200) > small + 0.2
    assert mean_t_star(0.0, 200) < 0.15  # symmetric data: keep the symmetry


def test_planar_target_has_eta_distance_to_equivariance():
    x = jax.random.normal(jax.random.key(3), (40000, 2))
    for eta in (0.1, 0.5):
        distance = jaxsym.distance_to_equivariance(lambda z, e=eta: planar_target(z, e), x, C8)
        assert float(distance) == pytest.approx(eta, rel=0.03)
    # q is invariant: η = 0 gives an exactly invariant target.
    jaxsym.testing.assert_equivariant(lambda z: planar_target(z, 0.0), x[:100], C8, atol=1e-5)


def test_random_features_ridge_matches_closed_form():
    x = jax.random.normal(jax.random.key(5), (50, 3))
    y = jax.random.normal(jax.random.key(6), (50, 2))
    fit = random_features_ridge(20, 0.1, key=jax.random.key(8), lengthscale=2.0)
    model = fit(x, y)
    phi = np.asarray(model.features(x), np.float64)
    yy = np.asarray(y, np.float64)
    mean = yy.mean(0)
    w = np.linalg.solve(phi.T @ phi / 50 + 0.1 * np.eye(20), phi.T @ (yy - mean) / 50)
    np.testing.assert_allclose(model(x), phi @ w + mean, rtol=1e-3, atol=1e-4)
    expected = np.sqrt(2 / 20) * np.cos(np.asarray(x) @ np.asarray(model.projection) + model.phase)
    np.testing.assert_allclose(phi, expected, atol=1e-5)
    # The fitted model is a pytree: it passes through jit.
    np.testing.assert_allclose(jax.jit(lambda m, z: m(z))(model, x), model(x), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_folds": 1}, "num_folds must be at least 2 and at most 10; got 1"),
        ({"num_folds": 11}, "num_folds must be at least 2 and at most 10; got 11"),
        ({"t_grid": [0.0, 1.5]}, "t_grid must be in \\[0, 1\\]"),
        ({"t_grid": [0.0, float("nan")]}, "t_grid must be in \\[0, 1\\]"),
        ({"t_grid": [[0.0]]}, "t_grid must be a non-empty 1-D"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    x = jax.random.normal(jax.random.key(0), (10, 2))
    with pytest.raises(ValueError, match=message):
        predictive_tradeoff(FIT, x, jnp.zeros((10, 1)), C8, **kwargs)


def test_bad_inputs_raise():
    x = jax.random.normal(jax.random.key(0), (10, 2))
    with pytest.raises(ValueError, match="must be a group"):
        predictive_tradeoff(FIT, x, jnp.zeros((10, 1)), C8.subset([0, 1]))
    with pytest.raises(ValueError, match="leading axis of length 10"):
        predictive_tradeoff(FIT, x, jnp.zeros((9, 1)), C8)
    with pytest.raises(ValueError, match="num_features"):
        random_features_ridge(0, 1e-3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="ridge"):
        random_features_ridge(10, -1.0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="eta"):
        planar_task(10, -0.1, key=jax.random.key(0))
    # Keys are keyword-only: the old positional calls fail loudly.
    with pytest.raises(TypeError, match="positional"):
        planar_task(jax.random.key(0), 10, 0.1)
    with pytest.raises(TypeError, match="positional"):
        random_features_ridge(10, 1e-3, jax.random.key(0))


@pytest.mark.slow
def test_invariant_fit_gives_zero_level_with_plain_closure():
    """A closure (not a pytree) that is already invariant: no anti-symmetric part,
    so C = d_2 = 0 and the level is 0 (the 0/0 case is defined, not NaN)."""

    def fit(x, y):
        mean = jnp.mean(y, axis=0)
        return lambda z: (
            jnp.broadcast_to(mean, (z.shape[0], *mean.shape)) + jnp.sum(z**2, -1)[:, None]
        )

    task = planar_task(60, 0.3, key=jax.random.key(4))
    result = predictive_tradeoff(fit, task.x, task.y, C8, num_folds=2)
    assert float(result.anti_energy) == pytest.approx(0.0, abs=1e-8)
    assert float(result.t_star) == 0.0 and float(result.t_star_cv) == 0.0
    assert float(result.eps_star) == pytest.approx(0.0, abs=1e-6)
    assert np.all(np.isfinite(np.asarray(result.risk)))


@settings(max_examples=20, deadline=None)
@given(
    n=st.sampled_from([2, 3, 7, 30, 61]),
    k=st.integers(2, 12),
    seed=st.one_of(st.none(), st.integers(0, 99)),
)
def test_cross_fitting_folds_partition(n, k, seed):
    assume(k <= n)
    key = None if seed is None else jax.random.key(seed)
    folds = cross_fitting_folds(n, k, key=key)
    assert len(folds) == k
    joined = np.concatenate(folds)
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))  # disjoint and covering
    sizes = [len(fold) for fold in folds]
    assert max(sizes) - min(sizes) <= 1
    if seed is None:
        for j, fold in enumerate(folds):
            np.testing.assert_array_equal(fold, np.arange(j, n, k))


@pytest.mark.slow
def test_folds_are_the_ones_predictive_tradeoff_trains_on():
    """A recording fit: fit is called on the complement of each public fold, then on all."""
    task = planar_task(200, 0.3, key=jax.random.key(3))
    seen = []

    def fit(x, y):
        seen.append(np.asarray(x))
        return FIT(x, y)

    key = jax.random.key(11)
    predictive_tradeoff(fit, task.x, task.y, C8, num_folds=4, key=key)
    folds = cross_fitting_folds(200, 4, key=key)
    points = np.asarray(task.x)
    assert len(seen) == 5
    for fold, x_train in zip(folds, seen[:4], strict=True):
        np.testing.assert_array_equal(x_train, points[np.setdiff1d(np.arange(200), fold)])
    np.testing.assert_array_equal(seen[4], points)


def test_passing_trained_models_gives_the_same_result():
    task = planar_task(200, 0.3, key=jax.random.key(5))
    key = jax.random.key(6)
    folds = cross_fitting_folds(200, 4, key=key)
    fold_models = [
        FIT(task.x[np.setdiff1d(np.arange(200), f)], task.y[np.setdiff1d(np.arange(200), f)])
        for f in folds
    ]
    full = FIT(task.x, task.y)
    reference = predictive_tradeoff(FIT, task.x, task.y, C8, num_folds=4, key=key)
    calls = []

    def counting_fit(x, y):
        calls.append(x.shape[0])
        return FIT(x, y)

    passed = predictive_tradeoff(
        None, task.x, task.y, C8, num_folds=4, key=key, fold_models=fold_models, full_model=full
    )
    only_folds = predictive_tradeoff(
        counting_fit, task.x, task.y, C8, num_folds=4, key=key, fold_models=fold_models
    )
    assert calls == [200]  # only the full fit
    only_full = predictive_tradeoff(
        counting_fit, task.x, task.y, C8, num_folds=4, key=key, full_model=full
    )
    assert calls == [200] + [len(np.setdiff1d(np.arange(200), f)) for f in folds]
    for result in (passed, only_folds, only_full):
        for name in reference._fields:
            np.testing.assert_allclose(getattr(result, name), getattr(reference, name), rtol=1e-5)
    # Models passed in a different order are different models: the result changes.
    shuffled = predictive_tradeoff(
        None,
        task.x,
        task.y,
        C8,
        num_folds=4,
        key=key,
        fold_models=fold_models[::-1],
        full_model=full,
    )
    assert float(shuffled.alignment) != pytest.approx(float(reference.alignment), rel=1e-3)


def test_trained_model_arguments_are_checked():
    task = planar_task(200, 0.3, key=jax.random.key(5))
    full = FIT(task.x, task.y)
    with pytest.raises(ValueError, match="fit=None needs both fold_models and full_model"):
        predictive_tradeoff(None, task.x, task.y, C8, full_model=full)
    with pytest.raises(ValueError, match="fold_models not given"):
        predictive_tradeoff(None, task.x, task.y, C8, full_model=full)
    with pytest.raises(ValueError, match="fold_models must hold num_folds=5"):
        predictive_tradeoff(None, task.x, task.y, C8, fold_models=[full] * 3, full_model=full)
    with pytest.raises(TypeError, match="fold_models\\[1\\] must be callable"):
        predictive_tradeoff(
            None, task.x, task.y, C8, fold_models=[full, 3] * 2 + [full], full_model=full
        )
    with pytest.raises(TypeError, match="fit must be callable"):
        predictive_tradeoff("ridge", task.x, task.y, C8)


@pytest.mark.slow
def test_fold_evaluation_compiles_once():
    """Fold models of one structure are evaluated in one compiled call, reused across data."""
    from jaxsym import predictive as module

    traces = []
    original = module._moments

    def counting(*args):
        traces.append(args[1].shape)
        return original(*args)

    first = planar_task(203, 0.1, key=jax.random.key(20))
    second = planar_task(203, 0.3, key=jax.random.key(21))
    try:
        module._moments = counting
        predictive_tradeoff(FIT, first.x, first.y, C8, num_folds=4)
        # At most one trace for all 4 folds (padded to 51); none if an earlier test traced it.
        assert traces in ([], [(51, 2)])
        seen = list(traces)
        predictive_tradeoff(FIT, second.x, second.y, C8, num_folds=4, key=jax.random.key(0))
        assert traces == seen  # new data, new folds: no retrace
    finally:
        module._moments = original


def test_nan_model_is_never_a_finite_level():
    x = jax.random.normal(jax.random.key(0), (12, 2))
    y = jnp.zeros((12, 1))

    def nan_model(z):
        return jnp.full((z.shape[0], 1), jnp.nan)

    with pytest.raises(FloatingPointError, match="NaN or inf"):
        dial_risk(nan_model, x, y, C8)
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        predictive_tradeoff(lambda a, b: nan_model, x, y, C8, num_folds=3)
    traced = jax.jit(lambda z: dial_risk(nan_model, z, y, C8).t_best)(x)
    assert np.isnan(float(traced))


def test_moved_names_live_in_their_own_modules():
    from jaxsym import models, predictive, tasks

    assert not hasattr(predictive, "random_features_ridge")  # renamed in one step
    assert jaxsym.random_features_ridge is models.random_features_ridge
    assert isinstance(FIT(jnp.ones((3, 2)), jnp.ones((3, 1))), RandomFeaturesModel)
    for module in (models, predictive, tasks):
        for name in module.__all__:
            assert hasattr(module, name)
