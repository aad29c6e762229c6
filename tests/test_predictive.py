"""The dial's risk, the cross-fitting folds, and the reference fit trained in a class (§8, §8b)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups
from jaxsym.models import RandomFeaturesModel, random_features_ridge
from jaxsym.predictive import cross_fitting_folds, dial_risk
from jaxsym.tasks import planar_target, planar_task

C4 = groups.cyclic_rotations(4)
C8 = groups.cyclic_rotations(8)
FIT = random_features_ridge(32, 1e-3, key=jax.random.key(7), lengthscale=0.5)


def _tanh_model(weights, z):
    return jnp.tanh(z @ weights) + z[:, :1] ** 2


@pytest.mark.slow
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
def test_planar_target_has_eta_distance_to_equivariance():
    x = jax.random.normal(jax.random.key(3), (40000, 2))
    for eta in (0.1, 0.5):
        distance = jaxsym.distance_to_equivariance(lambda z, e=eta: planar_target(z, e), x, C8)
        assert float(distance) == pytest.approx(eta, rel=0.03)
    # q is invariant: η = 0 gives an exactly invariant target.
    jaxsym.testing.assert_equivariant(lambda z: planar_target(z, 0.0), x[:100], C8, atol=1e-5)


def _numpy_features(model, z):
    """``φ(z) = √(2/p) cos(z W + b)`` in float64, from the model's random draws only."""
    projection = np.asarray(model.projection, np.float64)
    phase = np.asarray(model.phase, np.float64)
    flat = np.asarray(z, np.float64).reshape(len(z), -1)
    return np.sqrt(2.0 / len(phase)) * np.cos(flat @ projection + phase)


def _numpy_ridge(phi, y, ridge):
    """``(m, w)``: ``min_w mean ‖y − m − φ w‖² + λ‖w‖²`` with ``m`` the label mean."""
    y = np.asarray(y, np.float64)
    mean = y.mean(0)
    n, p = phi.shape
    weights = np.linalg.solve(phi.T @ phi / n + ridge * np.eye(p), phi.T @ (y - mean) / n)
    return mean, weights


def _rotate(z, angle):
    """``z Rᵀ`` for the rotation by ``angle`` (numpy, float64)."""
    c, s = np.cos(angle), np.sin(angle)
    return np.asarray(z, np.float64) @ np.array([[c, -s], [s, c]]).T


@pytest.mark.slow
def test_random_features_ridge_matches_closed_form():
    x = jax.random.normal(jax.random.key(5), (50, 3))
    y = jax.random.normal(jax.random.key(6), (50, 2))
    fit = random_features_ridge(20, 0.1, key=jax.random.key(8), lengthscale=2.0)
    model = fit(x, y)
    assert model.orbit is None  # no symmetry: plain features
    phi = _numpy_features(model, x)
    mean, w = _numpy_ridge(phi, y, 0.1)
    np.testing.assert_allclose(model(x), phi @ w + mean, rtol=1e-3, atol=1e-4)
    fresh = jax.random.normal(jax.random.key(9), (30, 3))
    np.testing.assert_allclose(
        model(fresh), _numpy_features(model, fresh) @ w + mean, rtol=1e-3, atol=1e-4
    )
    np.testing.assert_allclose(model.features(x), phi, atol=1e-5)
    # The fitted model is a pytree: it passes through jit.
    np.testing.assert_allclose(jax.jit(lambda m, z: m(z))(model, x), model(x), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("members", "t"),
    [((0, 2, 4, 6), 0.3), ((0, 2, 4, 6), 0.0), ((0, 1), 0.0), ((0, 1), 0.6)],
    ids=["C4-t0.3", "C4-t0", "{e,45°}-t0", "{e,45°}-t0.6"],
)
def test_random_features_ridge_trained_in_a_class(members, t):
    """``fit(x, y, symmetry=(H, t))`` is the ridge on ``φ̄_H + t (φ − φ̄_H)``, in numpy.

    ``H`` a subgroup of C8 (C4) or a set that is not one (``{e, rot 45°}``);
    the orbit average uses rotation matrices built here, not the group's elements.
    """
    x = jax.random.normal(jax.random.key(15), (60, 2))
    y = jnp.concatenate([jnp.cos(jnp.linalg.norm(x, axis=1, keepdims=True)), x[:, :1]], 1)
    fit = random_features_ridge(24, 0.05, key=jax.random.key(16), lengthscale=1.5)
    subset = groups.subset_of(C8, members)
    model = fit(x, y, symmetry=jaxsym.Symmetry(subset, t, members, "H"))
    plain = fit(x, y)
    # the same random draws with and without symmetry (one key)
    np.testing.assert_array_equal(model.projection, plain.projection)
    np.testing.assert_array_equal(model.phase, plain.phase)
    angles = [2 * np.pi * k / 8 for k in members]

    def dialed(z):
        base = _numpy_features(plain, z)
        averaged = np.mean([_numpy_features(plain, _rotate(z, a)) for a in angles], axis=0)
        return averaged + t * (base - averaged)

    mean, w = _numpy_ridge(dialed(x), y, 0.05)
    fresh = jax.random.normal(jax.random.key(17), (40, 2))
    for z in (x, fresh):
        np.testing.assert_allclose(model(z), dialed(z) @ w + mean, rtol=2e-3, atol=2e-4)
    if t == 0.0 and subset.is_group:  # exactly H-invariant
        np.testing.assert_allclose(
            model(fresh), model(jnp.asarray(_rotate(fresh, np.pi / 2), jnp.float32)), atol=1e-4
        )
    # t = 1 is no symmetry: the plain model
    at_one = fit(x, y, symmetry=jaxsym.Symmetry(subset, 1.0, members, "H"))
    np.testing.assert_allclose(at_one(fresh), plain(fresh), rtol=1e-6, atol=1e-6)


_apply = eqx.filter_jit(lambda model, z: model(z))


@pytest.mark.slow
@pytest.mark.parametrize(
    "group",
    [pytest.param(C4, marks=pytest.mark.extended), groups.rotation_range(0.6, 5)],
    ids=["C4", "rotation_range(0.6, 5)"],
)
def test_closed_form_cross_fit_equals_fitting_fold_by_fold(group):
    """``cross_fit_losses`` (closed form) = ``jaxsym.cross_fit`` with a fit lacking the fast path.

    n = 123 with K = 4: the folds differ in size, so the closed form's padded
    slots must carry no weight.
    """
    x = jax.random.normal(jax.random.key(1), (123, 2))
    y = jnp.concatenate(
        [jnp.cos(jnp.linalg.norm(x, axis=1, keepdims=True)) + 0.3 * x[:, :1], jnp.sin(x[:, 1:])],
        axis=1,
    )
    fit = random_features_ridge(64, 1e-3, key=jax.random.key(2))
    problem = jaxsym.symmetry_problem(
        x, y, group, key=jax.random.key(3), t_grid=[0.0, 0.5, 1.0], num_folds=4
    )
    assert [len(c) for c in problem.candidates] == [1, 2 if group is C4 else 3, group.size]
    assert len(problem.options) == 1 + 2 * 2  # none; two sets at t = 0 and 0.5

    def generic(a, b, *, symmetry):  # the same fit, without cross_fit_losses
        model = fit(a, b, symmetry=symmetry)
        return lambda z: _apply(model, z)

    assert not hasattr(generic, "cross_fit_losses")
    closed = np.asarray(fit.cross_fit_losses(problem))
    direct = jaxsym.cross_fit(problem, generic)
    assert closed.shape == direct.shape == (5, 123)
    np.testing.assert_allclose(closed, direct, rtol=1e-4, atol=1e-4 * float(direct.max()))
    # and the decision's table is this one
    np.testing.assert_array_equal(jaxsym.cross_fit(problem, fit), closed)


@pytest.mark.slow
def test_post_hoc_fits_once_per_training_set():
    """``post_hoc(fit)``: one fit per training set, K + 1 for a choice, on the public folds."""
    x = jax.random.normal(jax.random.key(21), (60, 2))
    y = jnp.cos(jnp.linalg.norm(x, axis=1, keepdims=True)) + 0.2 * x[:, :1]
    ridge = random_features_ridge(16, 1e-2, key=jax.random.key(22))
    seen = []

    def plain(a, b):
        seen.append(np.asarray(a))
        return ridge(a, b)

    with pytest.raises(TypeError, match="post_hoc"):  # a plain fit is refused, not guessed
        jaxsym.choose_symmetry(x, y, C4, fit=plain, key=None)
    assert seen == []
    key = jax.random.key(11)
    choice = jaxsym.choose_symmetry(
        x, y, C4, fit=jaxsym.post_hoc(plain), key=key, num_folds=4, t_grid=[0.0, 0.5, 1.0]
    )
    assert choice.num_options == 1 + 2 * 2  # five options, still one fit per training set
    assert len(seen) == 4 + 1
    points = np.asarray(x)
    for fold, x_train in zip(cross_fitting_folds(60, 4, key=key), seen[:4], strict=True):
        np.testing.assert_array_equal(x_train, points[np.setdiff1d(np.arange(60), fold)])
    np.testing.assert_array_equal(seen[4], points)  # then once on all the data
    # the memo is keyed on the data: the same set again is not refitted, a new one is
    fit = jaxsym.post_hoc(plain)
    seen.clear()
    models = [fit(x, y, symmetry=option) for option in choice.problem.options]
    assert len(seen) == 1
    fit(x[:30], y[:30], symmetry=choice.problem.options[-1])
    assert len(seen) == 2
    # each option's model is the dial of the one fit
    option = choice.problem.options[-1]
    assert 0.0 < option.t < 1.0
    z = jax.random.normal(jax.random.key(23), (10, 2))
    expected = jaxsym.dial(ridge(x, y), option.group, option.t)(z)
    np.testing.assert_allclose(models[-1](z), expected, rtol=1e-5, atol=1e-6)


def test_bad_inputs_raise():
    x = jax.random.normal(jax.random.key(0), (10, 2))
    with pytest.raises(ValueError, match="leading axis of length 10"):
        dial_risk(lambda z: z[:, :1], x, jnp.zeros((9, 1)), C8)
    with pytest.raises(ValueError, match="leading axis of length 10"):
        FIT(x, jnp.zeros((9, 1)))
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


def test_nan_model_is_never_a_finite_level():
    x = jax.random.normal(jax.random.key(0), (12, 2))
    y = jnp.zeros((12, 1))

    def nan_model(z):
        return jnp.full((z.shape[0], 1), jnp.nan)

    with pytest.raises(FloatingPointError, match="NaN or inf"):
        dial_risk(nan_model, x, y, C8)
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        jaxsym.choose_symmetry(
            x, y, C8, fit=jaxsym.post_hoc(lambda a, b: nan_model), key=None, num_folds=3,
            candidates=[[0, 4]], t_grid=[0.0],
        )  # fmt: skip
    traced = jax.jit(lambda z: dial_risk(nan_model, z, y, C8).t_best)(x)
    assert np.isnan(float(traced))


def test_moved_names_live_in_their_own_modules():
    from jaxsym import models, predictive, tasks

    assert not hasattr(predictive, "random_features_ridge")  # renamed in one step
    assert not hasattr(predictive, "predictive_tradeoff")  # removed: one cross-fit, in decision
    assert jaxsym.random_features_ridge is models.random_features_ridge
    assert isinstance(FIT(jnp.ones((3, 2)), jnp.ones((3, 1))), RandomFeaturesModel)
    for module in (models, predictive, tasks):
        for name in module.__all__:
            assert hasattr(module, name)


def _image_family():
    """Random-features models of one family on 8×8 images: none, nested rotation ranges
    (a set that is not a group), and one soft level."""
    full = groups.image_rotations(5, max_angle=0.6)
    x = jax.random.uniform(jax.random.key(3), (37, 8, 8, 1))
    y = jax.nn.one_hot(jnp.arange(37) % 3, 3)
    fit = random_features_ridge(32, 1e-3, key=jax.random.key(4))
    models = [fit(x, y)]
    for members, t in (((0, 1, 2), 0.0), ((0, 1, 2, 3, 4), 0.0), ((0, 1, 2, 3, 4), 0.5)):
        subset = groups.subset_of(full, list(members), name=str(members))
        models.append(fit(x, y, symmetry=jaxsym.Symmetry(subset, t, members, str(members))))
    return models, x


@pytest.mark.slow
def test_predict_many_equals_each_model_on_its_own():
    """One orbit pass for a family gives what every model gives by itself (an independent
    evaluation: each model's own ``__call__``), with padded batches of any size."""
    from jaxsym.models import predict_many

    models, x = _image_family()
    together = predict_many(models, x, batch_size=16)  # 37 rows: three batches, one padded
    for model, out in zip(models, together, strict=True):
        np.testing.assert_allclose(out, model(x), rtol=1e-4, atol=1e-5)
    # Not a family (other random features): evaluated one by one, the same answers.
    other = random_features_ridge(32, 1e-3, key=jax.random.key(9))(x, models[0](x))
    mixed = predict_many([models[0], other], x, batch_size=16)
    np.testing.assert_allclose(mixed[1], other(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(mixed[0], models[0](x), rtol=1e-4, atol=1e-5)
