"""The bound regularizer: one-pass orbit statistics, the budget projection, freeze, report."""

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
from jaxsym.predictive import cross_fitting_folds
from jaxsym.tasks import planar_task
from jaxsym.training import (
    BoundRegularizer,
    BudgetModel,
    bound_regularizer,
)

C4 = groups.cyclic_rotations(4)
C8 = groups.cyclic_rotations(8)


@pytest.fixture(scope="module")
def task():
    return planar_task(200, 0.3, key=jax.random.key(3))


@pytest.fixture(scope="module")
def fit():
    return random_features_ridge(64, 1e-3, key=jax.random.key(5))


@pytest.fixture(scope="module")
def built(task, fit):
    return bound_regularizer(task.x, task.y, C8, fit=fit, key=jax.random.key(0))


@pytest.fixture(scope="module")
def reg():
    """A regularizer with a given budget (no fits: the fast tests)."""
    return BoundRegularizer(
        jnp.asarray(0.2), C8,
        constants=BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0)),
    )  # fmt: skip


def _mlp(key, hidden=16):
    return random_mlp(key, 2, 1, hidden)


# ----------------------------------------------------------------------------- orbit stats


# ----------------------------------------------------------------------------- the builder


@pytest.mark.slow
def test_budget_is_the_choice_of_the_same_fits(task, fit, built):
    reg = built
    expected = jaxsym.choose_symmetry(task.x, task.y, C8, fit=fit, key=jax.random.key(0))
    assert reg.choice.name == expected.name and reg.choice.t_star == expected.t_star
    np.testing.assert_allclose(reg.budget, expected.budget, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(reg.choice.risks, expected.risks, rtol=1e-6)
    assert reg.group.size == len(expected.elements) and math.isinf(reg.beta)
    assert isinstance(reg, BoundRegularizer) and isinstance(reg, eqx.Module)


@pytest.mark.slow
def test_prefitted_fold_models_give_the_same_regularizer(task, fit, built):
    reg = built
    key = jax.random.key(0)
    folds = cross_fitting_folds(task.x.shape[0], 5, key=key)
    models = []
    for held_out in folds:
        train = np.setdiff1d(np.arange(task.x.shape[0]), held_out)
        models.append(fit(task.x[train], task.y[train]))
    again = bound_regularizer(
        task.x, task.y, C8, fit=None, key=key, fold_models=models,
        full_model=fit(task.x, task.y),
    )  # fmt: skip
    np.testing.assert_allclose(again.budget, reg.budget, rtol=1e-6)
    # the folds partition the sample
    assert sorted(np.concatenate(folds).tolist()) == list(range(task.x.shape[0]))


def test_builder_validates_its_arguments(task):
    fit = random_features_ridge(8, 1e-3, key=jax.random.key(5))
    x, y = task.x, task.y
    with pytest.raises(ValueError, match="outside"):
        bound_regularizer(x, y, C8, fit=fit, candidates=[[0, 9]], key=None)
    with pytest.raises(TypeError, match="candidates"):
        bound_regularizer(x, y, C8, fit=fit, candidates=C4, key=None)
    never = lambda a, b: pytest.fail("fit called before the input check")  # noqa: E731
    with pytest.raises(ValueError, match="t_grid"):
        bound_regularizer(x, y, C8, fit=never, t_grid=[0.5, 1.5], key=None)
    with pytest.raises(ValueError, match="both"):
        bound_regularizer(x, y, C8, fit=None, fold_models=[fit], key=None)
    with pytest.raises(ValueError, match="num_folds"):
        bound_regularizer(x, y, C8, fit=fit, num_folds=1, key=None)
    with pytest.raises(ValueError, match="beta"):
        bound_regularizer(x, y, C8, fit=fit, beta=-1.0, key=None)
    with pytest.raises(ValueError, match="leading axis"):
        bound_regularizer(x, y[:5], C8, fit=fit, key=None)


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
def test_report_matches_independent_measures(task, fit):
    candidates = [groups.cyclic_rotations(2), C4, C8]
    reg = bound_regularizer(
        task.x, task.y, C8, fit=fit, candidates=candidates, key=jax.random.key(1)
    )
    f, _, _ = _mlp(jax.random.key(19))
    report = reg.report(f, task.x)
    assert report.names == ("none", "{e, rot 180°}", "{e, rot 90°, rot 180°, rot -90°}", "C8")
    for k, s in enumerate(reg.candidates):
        np.testing.assert_allclose(
            report.distance[k], distance_to_equivariance(f, task.x, s), rtol=1e-5
        )
        np.testing.assert_allclose(
            report.sup_defect[k], jnp.max(pointwise_defects(f, task.x, s)), rtol=1e-5
        )
    assert report.active_name == reg.group.name
    # every option the screen compared is counted: 1 (none) + 3 sets x 10 levels
    assert report.num_options == len(reg.choice.names) == 31
    level = 0.0 if reg.group.size == 1 else float(report.sup_defect[report.active])
    bound = generalization_bound(
        task.x, reg.group, reg.constants, eps=level, num_levels=31
    ).total  # fmt: skip
    np.testing.assert_allclose(report.bound_estimate, bound, rtol=1e-5)
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
    """A small sample with pre-fitted (trivial) models: no fits, fast builds."""
    x = jax.random.normal(jax.random.key(40), (50, 2))
    y = jnp.tanh(x[:, :1]) + 0.3 * x[:, 1:] ** 2
    models = [lambda z, k=k: jnp.tanh(z[:, :1]) + 0.05 * k * z[:, 1:] for k in range(5)]
    return x, y, {"fit": None, "fold_models": models, "full_model": models[0]}


@pytest.mark.slow
def test_candidates_are_passed_through_to_the_screen(small):
    x, y, prefit = small
    c2 = groups.cyclic_rotations(2)
    reg = bound_regularizer(x, y, C4, candidates=[c2, C4], key=None, **prefit)
    assert [c.name for c in reg.candidates] == ["none", "{e, rot 180°}", "C4"]
    screen = jaxsym.choose_symmetry(x, y, C4, candidates=[c2, C4], key=None, **prefit)
    assert reg.choice.name == screen.name and reg.choice.t_star == screen.t_star
    with pytest.raises(ValueError, match="subset"):  # C3's elements are not in C4
        bound_regularizer(x, y, C4, candidates=[groups.cyclic_rotations(3)], key=None, **prefit)


@pytest.mark.parametrize(
    "beta", [0, 0.0, -1.0, "1", True, np.bool_(True), math.nan, math.inf, [1.0]]
)
def test_beta_must_be_a_positive_real(small, beta):
    x, y, prefit = small
    with pytest.raises((TypeError, ValueError), match="beta"):
        bound_regularizer(x, y, C4, beta=beta, key=None, **prefit)


@pytest.mark.parametrize("beta", [2, 0.5, np.float32(3.0)])
def test_beta_accepts_positive_reals(small, beta):
    x, y, prefit = small
    reg = bound_regularizer(x, y, C4, beta=beta, key=None, **prefit)
    assert reg.beta == float(beta) and not reg.is_projection


def test_unclear_inputs_get_clear_errors(small):
    x, y, prefit = small
    n = x.shape[0]
    labels = jnp.arange(n) % 3
    with pytest.raises(ValueError, match="one_hot"):
        bound_regularizer(x, labels, C4, key=None, **prefit)
    # one-hot rows are numbers to regress: accepted
    onehot = (labels[:, None] == jnp.arange(3)).astype(jnp.int32)
    models = [lambda z: jnp.zeros((z.shape[0], 3))] * 5
    bound_regularizer(x, onehot, C4, fit=None, fold_models=models, full_model=models[0], key=None)
    with pytest.raises(TypeError, match=r"key.*jax\.random\.key"):
        bound_regularizer(x, y, C4, key=0, **prefit)
    bad = y.at[7, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=f"of {n}") as error:
        bound_regularizer(x, bad, C4, fit=lambda a, b: prefit["full_model"], key=None)
    assert "labels" in str(error.value)
    six = jnp.tile(y, (1, 6))
    constants = BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0), output_dim=1)
    with pytest.raises(ValueError, match="output_dim"):
        bound_regularizer(x, six, C4, constants=constants, key=None, **prefit)


@pytest.mark.slow
def test_report_flags_outputs_outside_the_box(small):
    x, y, prefit = small
    constants = BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0), output_dim=1)
    reg = bound_regularizer(x, y, C4, constants=constants, key=None, **prefit)
    inside = reg.report(lambda z: jnp.tanh(z[:, :1]), x)
    assert inside.outputs_in_box and np.isfinite(inside.bound_estimate)
    np.testing.assert_allclose(inside.max_output, float(jnp.max(jnp.abs(jnp.tanh(x[:, 0])))))
    level = 0.0 if reg.group.size == 1 else float(inside.sup_defect[inside.active])
    expected = generalization_bound(
        x, reg.group, constants, eps=level, num_levels=len(reg.choice.names)
    ).total
    np.testing.assert_allclose(inside.bound_estimate, expected, rtol=1e-6)
    outside = reg.report(lambda z: 10.0 * z[:, :1], x)  # |f| reaches 10·max|x_0| > M = 2
    assert not outside.outputs_in_box and outside.bound_estimate == np.inf
    assert (
        outside.max_output > 2.0 and not outside.certified and "not applicable" in outside.summary
    )
    with pytest.raises(ValueError, match="output_dim"):
        reg.report(lambda z: z, x)
    with pytest.raises(TypeError, match="eagerly"):
        jax.jit(lambda z: reg.report(lambda u: jnp.tanh(u[:, :1]), z).bound_estimate)(x)


def _exact_regularizer(x, y, constants, candidates):
    """A regularizer whose screen keeps C4 exactly (labels exactly C4-invariant)."""
    models = [lambda z: jnp.tanh(jnp.sum(z**2, -1, keepdims=True))] * 5
    return bound_regularizer(
        x, y, C4, fit=None, fold_models=models, full_model=models[0], key=None,
        candidates=candidates, constants=constants,
    )  # fmt: skip


@pytest.mark.slow
def test_report_certifies_only_an_exact_model_with_given_constants():
    """Certified: user constants, candidates fixed, ε = 0 by construction. Else an estimate."""
    x = jax.random.normal(jax.random.key(41), (60, 2))
    y = jnp.tanh(jnp.sum(x**2, -1, keepdims=True))
    constants = BoundConstants(4.0, 1.0, squared_loss_constants(1.0, 1, 1.0), output_dim=1)
    reg = _exact_regularizer(x, y, constants, None)  # all subgroups of C4: fixed before data
    assert reg.group.size == 4 and reg.choice.t_star == 0.0 and float(reg.budget) == 0.0
    net = lambda z: jnp.tanh(z[:, :1] * 0.3)  # noqa: E731
    deployed = reg.freeze(net, x)
    report = reg.report(deployed, x)
    assert report.level == 0.0 and report.certified
    independent = generalization_bound(
        x, C4, constants, eps=0.0, num_levels=len(reg.choice.names)
    ).total
    np.testing.assert_allclose(report.certified_bound, independent, rtol=1e-6)
    assert report.vacuous == (report.certified_bound >= 1.0)
    assert ("vacuous" in report.summary) == report.vacuous
    # The raw network: its level is a sample sup defect, never certified.
    raw = reg.report(net, x)
    assert not raw.certified and np.isnan(raw.certified_bound) and raw.level > 0
    assert "estimate" in raw.summary and "sample sup defect" in raw.summary
    # Estimated constants: an estimate, even for the exact model.
    estimated = _exact_regularizer(x, y, None, None)
    assert not estimated.report(estimated.freeze(net, x), x).certified


def test_report_calls_a_bound_above_the_loss_range_vacuous(small):
    x, y, prefit = small
    loose = BoundConstants(50.0, 1.0, squared_loss_constants(1.0, 1, 1.0), output_dim=1)
    reg = bound_regularizer(x, y, C4, constants=loose, key=None, **prefit)
    report = reg.report(lambda z: jnp.tanh(z[:, :1]), x)
    assert report.bound_estimate >= report.loss_range == 4.0
    assert report.vacuous and "vacuous" in report.summary


def test_the_budget_has_one_name(reg):
    assert jaxsym.BoundRegularizer is BoundRegularizer
    assert not hasattr(reg, "eps")  # renamed in one step: no alias
