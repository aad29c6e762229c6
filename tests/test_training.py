"""The bound regularizer: one-pass orbit statistics, the budget projection, freeze, report."""

from __future__ import annotations

import dataclasses
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
from jaxsym.defects import distance_to_equivariance, pointwise_defects
from jaxsym.losses import BoundConstants, squared_loss_constants
from jaxsym.models import random_features_ridge
from jaxsym.predictive import cross_fitting_folds, predictive_tradeoff
from jaxsym.tasks import planar_task
from jaxsym.training import (
    BoundRegularizer,
    BudgetModel,
    CandidateChoice,
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
    nan = jnp.full((1,), jnp.nan)
    choice = CandidateChoice(0, nan, nan, nan, nan, nan, nan)
    return BoundRegularizer(
        budget=jnp.asarray(0.2), group=C8, candidates=(C8,), choice=choice,
        constants=BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0)),
    )  # fmt: skip


def _mlp(key, hidden=16):
    return random_mlp(key, 2, 1, hidden)


# ----------------------------------------------------------------------------- orbit stats


# ----------------------------------------------------------------------------- the builder


@pytest.mark.slow
def test_eps_is_the_predictive_tradeoff_of_the_same_fits(task, fit, built):
    reg = built
    expected = predictive_tradeoff(fit, task.x, task.y, C8, key=jax.random.key(0))
    np.testing.assert_allclose(reg.budget, expected.eps_star, rtol=1e-5, atol=1e-7)
    assert reg.group is C8 and math.isinf(reg.beta) and reg.choice.index == 0
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


@pytest.mark.slow
def test_candidate_choice_minimizes_approximation_plusgeneralization_bound(task, fit):
    candidates = [groups.cyclic_rotations(k) for k in (1, 2, 4, 8)]
    reg = bound_regularizer(
        task.x, task.y, C8, fit=fit, candidates=candidates, key=jax.random.key(0)
    )
    choice = reg.choice
    for k, s in enumerate(candidates):
        bound = generalization_bound(task.x, s, reg.constants, eps=0.0, num_levels=4).total
        np.testing.assert_allclose(choice.generalization[k], bound, rtol=1e-5)
        trade = predictive_tradeoff(fit, task.x, task.y, s, key=jax.random.key(0))
        np.testing.assert_allclose(choice.approximation[k], max(float(trade.alignment), 0.0))
    total = np.asarray(choice.approximation + choice.generalization)
    assert choice.index == int(np.flatnonzero(total == total.min()).max())
    assert reg.group is candidates[choice.index]
    np.testing.assert_allclose(reg.budget, choice.eps_star[choice.index])
    assert float(choice.eps_star[0]) == 0.0  # Q_{e} = I: nothing to keep


def test_builder_validates_its_arguments(task):
    fit = random_features_ridge(8, 1e-3, key=jax.random.key(5))
    x, y = task.x, task.y
    with pytest.raises(ValueError, match="must be a group"):
        bound_regularizer(x, y, C8, fit=fit, candidates=[C8.subset([0, 1])], key=None)
    with pytest.raises(ValueError, match="nested"):
        bound_regularizer(x, y, C8, fit=fit, candidates=[C8, C4], key=None)
    with pytest.raises(ValueError, match="both"):
        bound_regularizer(x, y, C8, fit=None, fold_models=[fit], key=None)
    with pytest.raises(ValueError, match="num_folds"):
        bound_regularizer(x, y, C8, fit=fit, num_folds=1, key=None)
    with pytest.raises(ValueError, match="beta"):
        bound_regularizer(x, y, C8, fit=fit, beta=-1.0, key=None)
    with pytest.raises(ValueError, match="leading axis"):
        bound_regularizer(x, y[:5], C8, fit=fit, key=None)


# ----------------------------------------------------------------------------- the budget


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


def test_hinge_penalty_and_its_gradient_match_finite_differences(reg):
    hinge = dataclasses.replace(reg, beta=30.0)
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
    for k, s in enumerate(candidates):
        np.testing.assert_allclose(
            report.distance[k], distance_to_equivariance(f, task.x, s), rtol=1e-5
        )
        np.testing.assert_allclose(
            report.sup_defect[k], jnp.max(pointwise_defects(f, task.x, s)), rtol=1e-5
        )
    assert report.names == ("C2", "C4", "C8")
    assert report.active == reg.choice.index and report.active_name == reg.group.name
    bound = generalization_bound(
        task.x, reg.group, reg.constants, eps=float(report.sup_defect[report.active]),
        num_levels=3,
    ).total  # fmt: skip
    np.testing.assert_allclose(report.bound, bound, rtol=1e-5)


# ----------------------------------------------------------------------------- benchmark path


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


def test_candidates_nest_by_their_elements(small):
    x, y, prefit = small
    c2, c3 = groups.cyclic_rotations(2), groups.cyclic_rotations(3)
    d2 = groups.dihedral(2)
    with pytest.raises(ValueError, match="not a subgroup"):
        bound_regularizer(x, y, C4, candidates=[c3, C4], key=None, **prefit)
    with pytest.raises(ValueError, match="not a subgroup"):
        bound_regularizer(x, y, C8, candidates=[d2, C8], key=None, **prefit)
    with pytest.raises(ValueError, match="largest candidate must be the group"):
        bound_regularizer(x, y, C8, candidates=[c2, C4], key=None, **prefit)
    with pytest.raises(ValueError, match="not a subgroup"):  # same size, other elements
        bound_regularizer(x, y, groups.dihedral(2), candidates=[C4], key=None, **prefit)
    with pytest.raises(ValueError, match="act the same way"):
        bound_regularizer(x, y, C4, candidates=[c2.equivariant(), C4], key=None, **prefit)


@pytest.mark.slow
def test_nested_candidates_are_accepted(small):
    x, y, prefit = small
    c2, d2 = groups.cyclic_rotations(2), groups.dihedral(2)
    reg = bound_regularizer(x, y, C8, candidates=[c2, C4, C8], key=None, **prefit)
    assert [c.name for c in reg.candidates] == ["C2", "C4", "C8"]
    reg = bound_regularizer(
        x, y, groups.dihedral(4), candidates=[d2, groups.dihedral(4)], key=None, **prefit
    )
    assert reg.candidates[0] is d2


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


def test_report_flags_outputs_outside_the_box(small):
    x, y, prefit = small
    constants = BoundConstants(2.0, 2.0, squared_loss_constants(2.0, 1, 2.0), output_dim=1)
    reg = bound_regularizer(x, y, C4, constants=constants, key=None, **prefit)
    inside = reg.report(lambda z: jnp.tanh(z[:, :1]), x)
    assert inside.bound_applies and np.isfinite(inside.bound)
    np.testing.assert_allclose(inside.max_output, float(jnp.max(jnp.abs(jnp.tanh(x[:, 0])))))
    expected = generalization_bound(
        x, C4, constants, eps=float(inside.sup_defect[0]), num_levels=1
    ).total
    np.testing.assert_allclose(inside.bound, expected, rtol=1e-6)
    outside = reg.report(lambda z: 10.0 * z[:, :1], x)  # |f| reaches 10·max|x_0| > M = 2
    assert not outside.bound_applies and outside.bound == np.inf
    assert outside.max_output > 2.0
    with pytest.raises(ValueError, match="output_dim"):
        reg.report(lambda z: z, x)
    with pytest.raises(TypeError, match="eagerly"):
        jax.jit(lambda z: reg.report(lambda u: jnp.tanh(u[:, :1]), z).bound)(x)
    with pytest.raises(TypeError, match="eagerly"):
        jax.jit(lambda r: r.report(lambda u: jnp.tanh(u[:, :1]), x).bound)(reg)


def test_jaxsym_exports_the_renamed_budget(reg):
    assert jaxsym.BoundRegularizer is BoundRegularizer
    assert reg.eps is reg.budget  # the deprecated alias reads the same leaf
