"""The bound regularizer (one-pass orbit statistics, the budget projection, freeze) and
what its model can claim (:func:`jaxsym.regularizer_report`)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import chex
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_mlp

import jaxsym
from jaxsym import groups, symmetrize
from jaxsym.bounds import generalization_bound
from jaxsym.constants import BoundConstants, squared_loss_constants
from jaxsym.defects import distance_to_equivariance, pointwise_defects
from jaxsym.models import random_features_ridge
from jaxsym.tasks import planar_task
from jaxsym.training import (
    BoundRegularizer,
    BudgetModel,
    bound_regularizer,
)
from jaxsym.training_report import regularizer_report

C4 = groups.cyclic_rotations(4)
C8 = groups.cyclic_rotations(8)
D4 = groups.dihedral(4)
C8_ANGLES = [2 * math.pi * k / 8 for k in range(8)]


@pytest.fixture(scope="module")
def task():
    """A small asymmetry (η = 0.1) under little noise: the screen keeps C8 at a soft level."""
    return planar_task(200, 0.1, key=jax.random.key(3), noise=0.1)


@pytest.fixture(scope="module")
def fit():
    return random_features_ridge(128, 1e-3, key=jax.random.key(5))


@pytest.fixture(scope="module")
def choice(task, fit):
    return jaxsym.choose_symmetry(task.x, task.y, C8, fit=fit, key=jax.random.key(0))


@pytest.fixture(scope="module")
def built(choice):
    return bound_regularizer(choice)


@pytest.fixture(scope="module")
def reg():
    """A regularizer with a given budget (no fits: the fast tests)."""
    return BoundRegularizer(
        jnp.asarray(0.2), C8,
        constants=BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0)),
    )  # fmt: skip


def _mlp(key, hidden=16):
    return random_mlp(key, 2, 1, hidden)


def _rotate(z, angle):
    """``z Rᵀ`` for the rotation by ``angle``, built here in float64 (not the group's elements)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.asarray(z, np.float64) @ np.array([[c, -s], [s, c]]).T


def _evaluate(f, z):
    return np.asarray(f(jnp.asarray(z, jnp.float32)), np.float64).reshape(len(z), -1)


def _numpy_d2(f, z, angles):
    """``d_2(f) = (mean_b ‖f(z_b) − mean_h f(R_h z_b)‖²)^{1/2}`` for an invariant-output ``f``."""
    average = np.mean([_evaluate(f, _rotate(z, a)) for a in angles], axis=0)
    return float(np.sqrt(np.mean(np.sum((_evaluate(f, z) - average) ** 2, axis=1))))


def _numpy_sup_defect(f, z, angles):
    """The sample sup defect ``max_{h, b} ‖f(R_h z_b) − f(z_b)‖`` (invariant outputs)."""
    here = _evaluate(f, z)
    return max(
        float(np.max(np.linalg.norm(_evaluate(f, _rotate(z, a)) - here, axis=1))) for a in angles
    )


def _radial(z):
    return jnp.tanh(jnp.sum(z**2, -1, keepdims=True))


def _invariant_fit(a, b):
    """A plain fit whose model is exactly rotation invariant: every option ties, the rule
    keeps the largest set at t = 0."""
    return _radial


def _elements_of(subset, parent):
    """The indices in ``parent`` of ``subset``'s elements, matched numerically here."""
    ours = np.asarray(subset.elements, np.float64).reshape(subset.size, -1)
    theirs = np.asarray(parent.elements, np.float64).reshape(parent.size, -1)
    return sorted(int(np.argmin(np.abs(theirs - row).max(axis=1))) for row in ours)


# ----------------------------------------------------------------------------- the builder


@pytest.mark.slow
def test_budget_is_the_choice_and_the_frozen_model_keeps_it(task, choice, built):
    """The budget is ``d_2`` of the model trained at the chosen option (measured here in numpy,
    on the orbit-augmented inputs), and a frozen model has at most that ``d_2``."""
    reg = built
    assert reg.choice is choice and math.isinf(reg.beta)
    # the data make the screen keep C8 at a soft level: the budget is not trivially 0
    assert choice.name == "C8" and 0.0 < choice.t_star < 1.0
    assert _elements_of(reg.group, C8) == list(range(8))
    np.testing.assert_allclose(float(reg.budget), choice.budget, rtol=1e-6)
    augmented = np.concatenate([_rotate(task.x, a) for a in C8_ANGLES])
    np.testing.assert_allclose(
        choice.budget, _numpy_d2(choice.model, augmented, C8_ANGLES), rtol=1e-3
    )
    assert choice.budget > 1e-3
    # a network over budget, frozen: d_2 on the training inputs comes down to the budget
    f, _, _ = _mlp(jax.random.key(20))
    assert _numpy_d2(f, task.x, C8_ANGLES) > 2 * choice.budget
    frozen = reg.freeze(f, task.x)
    d2 = _numpy_d2(frozen, task.x, C8_ANGLES)
    assert d2 <= choice.budget * (1 + 1e-3) + 1e-6
    np.testing.assert_allclose(d2, choice.budget, rtol=1e-3)
    # a network within budget is deployed unchanged
    near = lambda z: _radial(z) + 0.01 * z[:, :1]  # noqa: E731
    assert _numpy_d2(near, task.x, C8_ANGLES) < choice.budget
    z = jax.random.normal(jax.random.key(21), (10, 2))
    np.testing.assert_allclose(reg.freeze(near, task.x)(z), near(z), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_the_inputs_are_checked_before_any_fit(task, small):
    def never(x, y, *, symmetry):
        pytest.fail("fit called before the input check")

    x, y = task.x, task.y
    with pytest.raises(ValueError, match="outside"):
        jaxsym.choose_symmetry(x, y, C8, fit=never, candidates=[[0, 9]], key=None)
    with pytest.raises(TypeError, match="candidates"):
        jaxsym.choose_symmetry(x, y, C8, fit=never, candidates=C4, key=None)
    with pytest.raises(ValueError, match="t_grid"):
        jaxsym.choose_symmetry(x, y, C8, fit=never, t_grid=[0.5, 1.5], key=None)
    with pytest.raises(ValueError, match="num_folds"):
        jaxsym.choose_symmetry(x, y, C8, fit=never, num_folds=1, key=None)
    with pytest.raises(ValueError, match="leading axis"):
        jaxsym.choose_symmetry(x, y[:5], C8, fit=never, key=None)
    # the regularizer takes the decision, not the data
    with pytest.raises(TypeError, match="takes the decision"):
        bound_regularizer(x)
    with pytest.raises(TypeError):
        bound_regularizer(x, y, C8, fit=never, key=None)
    with pytest.raises(ValueError, match="beta"):
        bound_regularizer(small[3], beta=-1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        bound_regularizer(small[3], chunk_size=0)


# ----------------------------------------------------------------------------- the budget


@pytest.mark.slow
@pytest.mark.parametrize("eps", [0.0, 0.05, 10.0])
def test_budget_projection_closed_form(eps):
    f, _, _ = _mlp(jax.random.key(7))
    x = jax.random.normal(jax.random.key(8), (32, 2))
    q = symmetrize(f, C8)
    d2 = float(distance_to_equivariance(f, x, C8))
    g = BudgetModel(f, C8, jnp.asarray(eps))
    out = g(x)
    scale = min(1.0, eps / d2)
    np.testing.assert_allclose(out, q(x) + scale * (f(x) - q(x)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        distance_to_equivariance(g, x, C8), min(d2, eps), rtol=1e-4, atol=1e-6
    )
    if eps == 0.0:  # exactly the symmetrized model
        np.testing.assert_allclose(out, q(x), rtol=1e-6, atol=1e-7)


@pytest.mark.slow
def test_freeze_prediction_does_not_depend_on_the_batch(reg, task):
    f, _, _ = _mlp(jax.random.key(9))
    deployed = reg.freeze(f, task.x)
    frozen = jax.jit(lambda z: deployed(z))
    x = jax.random.normal(jax.random.key(10), (6, 2))
    other = 3.0 * jax.random.normal(jax.random.key(11), (40, 2))
    alone = frozen(x)
    in_batch = frozen(jnp.concatenate([other[:17], x, other[17:]]))[17:23]
    np.testing.assert_allclose(in_batch, alone, rtol=1e-6, atol=1e-7)
    one_by_one = jnp.concatenate([frozen(x[i : i + 1]) for i in range(6)])
    np.testing.assert_allclose(one_by_one, alone, rtol=1e-6, atol=1e-7)
    # the frozen scale is d_2 measured on the training inputs, not on the batch
    d2 = float(distance_to_equivariance(f, task.x, C8))
    np.testing.assert_allclose(
        reg.freeze(f, task.x).scale, min(1.0, float(reg.budget) / d2), rtol=1e-5
    )
    # the training-mode model does depend on its batch when f is over budget
    model = reg.model(f)
    training = jax.jit(lambda z: model(z))
    assert d2 > float(reg.budget)
    assert not np.allclose(training(jnp.concatenate([x, other]))[:6], training(x))


@pytest.mark.slow
def test_hinge_penalty_and_its_gradient_match_finite_differences(reg):
    hinge = BoundRegularizer(reg.budget, reg.group, constants=reg.constants, beta=30.0)
    f, params, net = _mlp(jax.random.key(12))
    x = jax.random.normal(jax.random.key(13), (24, 2))
    d2 = float(distance_to_equivariance(f, x, C8))
    assert d2 > float(reg.budget)
    np.testing.assert_allclose(hinge(f, x), 30.0 * (d2 - float(reg.budget)) ** 2, rtol=1e-4)
    assert float(reg(f, x)) == 0.0  # the projection acts through the model

    @jax.jit
    def penalty(p):
        return hinge(lambda z: net(p, z), x)

    direction = jax.tree_util.tree_map(
        lambda a: jax.random.normal(jax.random.key(14), a.shape), params
    )
    grad = jax.grad(penalty)(params)
    analytic = sum(
        jnp.vdot(g, d)
        for g, d in zip(
            jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(direction), strict=False
        )
    )
    h = 1e-3

    def moved(s):
        return jax.tree_util.tree_map(lambda p, d: p + s * d, params, direction)

    numeric = (penalty(moved(h)) - penalty(moved(-h))) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2)


@pytest.mark.slow
def test_budget_model_gradient_matches_finite_differences(reg):
    _f, params, net = _mlp(jax.random.key(15))
    x = jax.random.normal(jax.random.key(16), (24, 2))
    y = jnp.sin(x[:, :1])

    @jax.jit
    def loss(p):
        g = reg.model(lambda z: net(p, z))
        return jnp.mean((g(x) - y) ** 2) + reg(g, x)

    direction = jax.tree_util.tree_map(
        lambda a: jax.random.normal(jax.random.key(17), a.shape), params
    )
    grad = jax.grad(loss)(params)
    analytic = sum(
        jnp.vdot(g, d)
        for g, d in zip(
            jax.tree_util.tree_leaves(grad), jax.tree_util.tree_leaves(direction), strict=False
        )
    )
    h = 1e-3
    plus = loss(jax.tree_util.tree_map(lambda p, d: p + h * d, params, direction))
    minus = loss(jax.tree_util.tree_map(lambda p, d: p - h * d, params, direction))
    np.testing.assert_allclose(analytic, (plus - minus) / (2 * h), rtol=2e-2)


def test_training_step_jits_once_with_the_regularizer_as_argument(reg):
    _, params, net = _mlp(jax.random.key(18))
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state, reg, xb, yb):
        def loss(p):
            g = reg.model(lambda z: net(p, z))
            return jnp.mean((g(xb) - yb) ** 2) + reg(g, xb)

        value, grads = jax.value_and_grad(loss)(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state, value

    for i in range(3):
        xb = jax.random.normal(jax.random.key(100 + i), (16, 2))
        other = eqx.tree_at(lambda r: r.budget, reg, reg.budget * (1 + i))  # new values, same trace
        params, state, value = step(params, state, other, xb, jnp.cos(xb[:, :1]))
        assert np.isfinite(value)


@pytest.mark.slow
def test_report_matches_independent_measures(task, built):
    reg = built
    mlp, _, _ = _mlp(jax.random.key(19))
    f = lambda z: 0.5 * jnp.tanh(mlp(z))  # noqa: E731  inside the estimated box M = max ‖y‖
    report = regularizer_report(reg, f, task.x)
    assert report.outputs_in_box
    assert report.names == ("none", "{e, rot 180°}", "{e, rot 90°, rot 180°, rot -90°}", "C8")
    for k, s in enumerate(reg.candidates):
        np.testing.assert_allclose(
            report.distance[k], distance_to_equivariance(f, task.x, s), rtol=1e-5
        )
        np.testing.assert_allclose(
            report.sup_defect[k], jnp.max(pointwise_defects(f, task.x, s)), rtol=1e-5
        )
    assert report.active_name == reg.group.name == "C8"
    # every option the screen compared is counted: none + 3 sets × 4 levels t < 1
    assert report.num_options == 1 + 3 * 4
    # the level is the sample sup defect on C8, measured here in numpy: f is not averaged
    level = _numpy_sup_defect(f, task.x, C8_ANGLES)
    assert level > 0.1
    np.testing.assert_allclose(report.level, level, rtol=1e-4)
    bound = generalization_bound(task.x, C8, reg.constants, eps=level, num_levels=13).total
    np.testing.assert_allclose(report.bound_estimate, bound, rtol=1e-4)
    assert not report.certified and np.isnan(report.certified_bound)  # estimated constants


# ----------------------------------------------------------------------------- benchmark path


@pytest.mark.extended
@pytest.mark.slow
def test_benchmark_quick_settings_run_the_same_path(tmp_path):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "training.py"
    spec = importlib.util.spec_from_file_location("bench_training", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_training"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "training.json"
    md = tmp_path / "training.md"
    results = module.main(["--quick", "--out", str(out), "--markdown", str(md)])
    assert out.exists() and md.exists()
    cells = results["synthetic"]
    assert {c["task"] for c in cells} == set(module.TASKS)
    for cell in cells:
        assert {"regularizer", "λ tuned", "dial(t*)"} <= set(cell["excess_risk"])
        assert all(np.isfinite(v).all() for v in cell["excess_risk"].values())
        # the best method's ratio to itself is 1 on every seed; every interval holds its centre
        assert cell["ratio"][cell["best"]]["ratio"] == pytest.approx(1.0)
        for r in cell["ratio"].values():
            assert r["low"] <= r["ratio"] <= r["high"]
        assert cell["regularizer_worst_seed"] >= cell["ratio"]["regularizer"]["ratio"] - 1e-9
    assert "regularizer" in results["digits"]["methods"]
    assert "C4-symmetrized" in results["digits"]["rotated"]
    assert results["cost"]["ratio_to_fused"] > 0
    assert "| η | n |" in md.read_text()


# ----------------------------------------------------------------------------- what never trains


class _Batched(eqx.Module):
    """An equinox MLP on a batch (the model convention), a pytree to train."""

    mlp: eqx.nn.MLP

    def __call__(self, x):
        return jax.vmap(self.mlp)(x)


@pytest.mark.slow
def test_budget_model_trained_as_a_pytree_keeps_group_and_budget(reg):
    """``reg.model(net)`` under the equinox recipe with weight decay: only ``net`` moves."""
    x = jax.random.normal(jax.random.key(30), (32, 2))
    y = 3.0 * x[:, :1] + jnp.sin(x[:, 1:])  # far from C8-invariant
    g = reg.model(_Batched(eqx.nn.MLP(2, 1, 8, 1, activation=jnp.tanh, key=jax.random.key(31))))
    elements = np.array(C8.elements)
    budget = np.array(reg.budget)
    tx = optax.adamw(5e-2, weight_decay=0.5)
    state = tx.init(eqx.filter(g, eqx.is_array))

    @eqx.filter_jit
    def step(g, state):
        grads = eqx.filter_grad(lambda g: jnp.mean((g(x) - y) ** 2))(g)
        updates, state = tx.update(grads, state, eqx.filter(g, eqx.is_array))
        return eqx.apply_updates(g, updates), state

    start = g
    for _ in range(25):
        g, state = step(g, state)
    assert not np.array_equal(start.f.mlp.layers[0].weight, g.f.mlp.layers[0].weight)
    np.testing.assert_array_equal(np.asarray(g.group.elements), elements)
    np.testing.assert_array_equal(np.asarray(g.budget), budget)
    assert g.group.elements.dtype == elements.dtype
    # still a budget projection with the real group: d_2 on the batch is at most the budget
    d2 = float(distance_to_equivariance(g, x, groups.cyclic_rotations(8)))
    assert d2 <= float(reg.budget) * (1 + 1e-4) + 1e-6


@pytest.mark.slow
def test_freeze_unwraps_a_budget_model(reg, task):
    f, _, _ = _mlp(jax.random.key(32))
    frozen = reg.freeze(reg.model(f), task.x)
    reference = reg.freeze(f, task.x)
    np.testing.assert_allclose(frozen.scale, reference.scale, rtol=1e-6)
    x = jax.random.normal(jax.random.key(33), (12, 2))
    np.testing.assert_allclose(frozen(x), reference(x), rtol=1e-6, atol=1e-7)
    # each prediction depends on its own row only: a single row = that row in a batch
    for i in (0, 5, 11):
        np.testing.assert_allclose(frozen(x[i : i + 1])[0], frozen(x)[i], rtol=1e-5, atol=1e-6)
    # and the frozen s is d_2 measured on the training inputs (an independent measure)
    d2 = float(distance_to_equivariance(f, task.x, C8))
    np.testing.assert_allclose(frozen.scale, min(1.0, float(reg.budget) / d2), rtol=1e-5)


# ----------------------------------------------------------------------------- the builder's inputs


@pytest.fixture(scope="module")
def small():
    """A small sample and a cheap decision (a plain stub fit through ``post_hoc``)."""
    x = jax.random.normal(jax.random.key(40), (50, 2))
    y = jnp.tanh(x[:, :1]) + 0.3 * x[:, 1:] ** 2
    fit = jaxsym.post_hoc(lambda a, b: lambda z: jnp.tanh(z[:, :1]))
    return x, y, fit, jaxsym.choose_symmetry(x, y, C4, fit=fit, key=None)


@pytest.mark.slow
def test_candidates_are_passed_through_to_the_screen(small):
    x, y, fit, _ = small
    c2 = groups.cyclic_rotations(2)
    choice = jaxsym.choose_symmetry(x, y, C4, fit=fit, candidates=[c2, C4], key=None)
    reg = bound_regularizer(choice)
    assert [c.name for c in reg.candidates] == ["none", "{e, rot 180°}", "C4"]
    assert [_elements_of(c, C4) for c in reg.candidates] == [[0], [0, 2], [0, 1, 2, 3]]
    assert _elements_of(reg.group, C4) == choice.elements.tolist()
    assert reg.choice.num_options == 1 + 2 * 4
    with pytest.raises(ValueError, match="subset"):  # C3's elements are not in C4
        jaxsym.choose_symmetry(x, y, C4, fit=fit, candidates=[groups.cyclic_rotations(3)], key=None)


@pytest.mark.slow
@pytest.mark.parametrize(
    "beta", [0, 0.0, -1.0, "1", True, np.bool_(True), math.nan, math.inf, [1.0]]
)
def test_beta_must_be_a_positive_real(small, beta):
    with pytest.raises((TypeError, ValueError), match="beta"):
        bound_regularizer(small[3], beta=beta)


@pytest.mark.parametrize("beta", [2, 0.5, np.float32(3.0)])
def test_beta_accepts_positive_reals(small, beta):
    reg = bound_regularizer(small[3], beta=beta)
    assert reg.beta == float(beta) and not reg.is_projection


@pytest.mark.slow
def test_unclear_inputs_get_clear_errors(small):
    x, y, fit, _ = small
    n = x.shape[0]
    labels = jnp.arange(n) % 3
    with pytest.raises(ValueError, match="one_hot"):
        jaxsym.choose_symmetry(x, labels, C4, fit=fit, key=None)
    # one-hot rows are numbers to regress: accepted, and the constants describe 3 outputs
    onehot = (labels[:, None] == jnp.arange(3)).astype(jnp.int32)
    zeros = jaxsym.post_hoc(lambda a, b: lambda z: jnp.zeros((z.shape[0], 3)))
    cheap = {"key": None, "candidates": [[0, 2]], "t_grid": [0.0]}  # two options
    reg = bound_regularizer(jaxsym.choose_symmetry(x, onehot, C4, fit=zeros, **cheap))
    assert int(reg.constants.output_dim) == 3
    with pytest.raises(TypeError, match=r"key.*jax\.random\.key"):
        jaxsym.choose_symmetry(x, y, C4, fit=fit, key=0)
    with pytest.raises(ValueError, match="NaN"):
        jaxsym.choose_symmetry(x, y.at[7, 0].set(jnp.nan), C4, fit=fit, key=None)
    six = jaxsym.post_hoc(lambda a, b: lambda z: jnp.zeros((z.shape[0], 6)))
    wide = jaxsym.choose_symmetry(x, jnp.tile(y, (1, 6)), C4, fit=six, **cheap)
    constants = BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0), output_dim=1)
    with pytest.raises(ValueError, match="output_dim"):
        bound_regularizer(wide, constants=constants)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_report_flags_outputs_outside_the_box(small):
    x, _, _, choice = small
    constants = BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0), output_dim=1)
    reg = bound_regularizer(choice, constants=constants)
    inside = regularizer_report(reg, lambda z: jnp.tanh(z[:, :1]), x)
    assert inside.outputs_in_box and np.isfinite(inside.bound_estimate)
    np.testing.assert_allclose(inside.max_output, float(jnp.max(jnp.abs(jnp.tanh(x[:, 0])))))
    outside = regularizer_report(
        reg, lambda z: 10.0 * z[:, :1], x
    )  # |f| reaches 10·max|x_0| > M = 2
    assert not outside.outputs_in_box and outside.bound_estimate == np.inf
    assert (
        outside.max_output > 2.0 and not outside.certified and "not applicable" in outside.summary
    )
    with pytest.raises(ValueError, match="output_dim"):
        regularizer_report(reg, lambda z: z, x)
    with pytest.raises(TypeError, match="eagerly"):
        jax.jit(lambda z: regularizer_report(reg, lambda u: jnp.tanh(u[:, :1]), z).bound_estimate)(
            x
        )


GIVEN = BoundConstants(4.0, 1.0, squared_loss_constants(1.0, 1, 1.0), output_dim=1)


def _net(z):
    """Far from invariant, with a non-zero average over every rotation group."""
    return jnp.tanh(0.3 * z[:, :1] + 0.2 * z[:, 1:] + 0.5 * z[:, :1] ** 2)


def _exact_choice(x, group, candidates=None):
    """A decision on exactly invariant labels whose fit is invariant: every option ties, so the
    rule keeps the largest candidate at t = 0."""
    return jaxsym.choose_symmetry(
        x, _radial(x), group, fit=jaxsym.post_hoc(_invariant_fit), key=None,
        candidates=candidates,
    )  # fmt: skip


@pytest.mark.slow
def test_report_certifies_only_an_exact_model_with_given_constants():
    """Certified: user constants, candidates fixed, ε = 0 by construction. Else an estimate."""
    x = jax.random.normal(jax.random.key(41), (60, 2))
    choice = _exact_choice(x, C4)  # all subgroups of C4: fixed before the data
    reg = bound_regularizer(choice, constants=GIVEN)
    assert choice.problem.candidates_fixed
    assert reg.group.size == 4 and reg.choice.t_star == 0.0 and float(reg.budget) == 0.0
    net = _net
    deployed = reg.freeze(net, x)
    report = regularizer_report(reg, deployed, x)
    assert report.level == 0.0 and report.certified and report.uncertified_because == ()
    assert _numpy_sup_defect(deployed, x, [k * math.pi / 2 for k in range(4)]) < 1e-5
    # none + {e, rot 180°} and C4 at t = 0, .25, .5, .75
    independent = generalization_bound(x, C4, GIVEN, eps=0.0, num_levels=1 + 2 * 4).total
    np.testing.assert_allclose(report.certified_bound, independent, rtol=1e-6)
    assert report.vacuous == (report.certified_bound >= 1.0)
    assert ("vacuous" in report.summary) == report.vacuous
    # The raw network: its level is a sample sup defect, never certified.
    raw = regularizer_report(reg, net, x)
    assert not raw.certified and np.isnan(raw.certified_bound) and raw.level > 0
    assert "estimate" in raw.summary and "sample sup defect" in raw.summary
    # Estimated constants: an estimate, even for the exact model.
    estimated = bound_regularizer(choice)
    estimate = regularizer_report(estimated, estimated.freeze(net, x), x)
    assert not estimate.certified and estimate.uncertified_because == ("estimated constants",)


@pytest.mark.slow
def test_a_set_that_is_not_a_group_is_never_certified_at_zero():
    """``{e, rot 45°}`` of C8 is not closed: averaging over it is ``Q_ν``, not a projection, so
    ε = 0 is never claimed; the level is the sample sup defect, measured here in numpy."""
    x = jax.random.normal(jax.random.key(42), (60, 2))
    choice = _exact_choice(x, C8, candidates=[[0, 1]])
    assert choice.name == "{e, rot 45°}" and choice.t_star == 0.0
    assert not choice.group.is_group and choice.problem.candidates_fixed
    reg = bound_regularizer(choice, constants=GIVEN)
    angles = [0.0, math.pi / 4]
    for net in (_net, _radial):
        deployed = reg.freeze(net, x)  # at budget 0: the partial average Q_ν net
        report = regularizer_report(reg, deployed, x)
        assert not report.certified and np.isnan(report.certified_bound)
        np.testing.assert_allclose(
            report.level, _numpy_sup_defect(deployed, x, angles), rtol=1e-3, atol=1e-5
        )
        if net is _net:
            assert float(deployed.scale) == 0.0 and report.level > 1e-2
    assert report.level < 1e-4  # even an invariant network: a measured ε, not a certified 0
    # the control: a closed subset of the same group, same data and constants, certifies
    closed = bound_regularizer(_exact_choice(x, C8, candidates=[[0, 2, 4, 6]]), constants=GIVEN)
    assert closed.group.is_group and regularizer_report(closed, closed.freeze(_net, x), x).certified


@pytest.mark.slow
def test_a_model_averaged_over_other_elements_is_not_certified():
    """Active set C4 of D4; a model averaged over D2 = {e, rot 180°, two flips} (also four
    elements, also a group) is not exact on C4, and is not certified."""
    x = jax.random.normal(jax.random.key(43), (60, 2))
    choice = _exact_choice(x, D4, candidates=[[0, 1, 2, 3]])
    assert choice.elements.tolist() == [0, 1, 2, 3] and choice.t_star == 0.0
    reg = bound_regularizer(choice, constants=GIVEN)
    net = _net
    assert regularizer_report(reg, reg.freeze(net, x), x).certified  # the control: averaged over C4
    klein = groups.subset_of(D4, [0, 2, 4, 6])
    assert klein.is_group and klein.size == reg.group.size
    assert _elements_of(klein, D4) != _elements_of(reg.group, D4)
    quarter_turns = [k * math.pi / 2 for k in range(4)]
    other = BudgetModel(net, klein, 0.0, scale=0.0)
    report = regularizer_report(reg, other, x)
    assert not report.certified and np.isnan(report.certified_bound)
    measured = _numpy_sup_defect(other, x, quarter_turns)
    assert measured > 1e-2
    np.testing.assert_allclose(report.level, measured, rtol=1e-3)
    # a network that is invariant anyway: the sample sees no defect, yet the model is not
    # averaged over C4 by construction, so ε = 0 is still not certified
    invariant = BudgetModel(_radial, klein, 0.0, scale=0.0)
    assert _numpy_sup_defect(invariant, x, quarter_turns) < 1e-5
    report = regularizer_report(reg, invariant, x)
    assert not report.certified and np.isnan(report.certified_bound)


@pytest.mark.slow
@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
def test_report_calls_a_bound_above_the_loss_range_vacuous(small):
    loose = BoundConstants(50.0, 1.0, squared_loss_constants(1.0, 1, 1.0), output_dim=1)
    reg = bound_regularizer(small[3], constants=loose)
    report = regularizer_report(reg, lambda z: jnp.tanh(z[:, :1]), small[0])
    assert report.bound_estimate >= report.loss_range == 4.0
    assert report.vacuous and "vacuous" in report.summary
