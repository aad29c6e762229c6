"""Flax (linen, nnx) and equinox adapters, and optax training with the bound regularizer.

The three training tests share one regularizer and one loss; only the call style
differs. Each trains from an over-symmetric start (``d_2 ≈ 0``) and from an
under-symmetric start (``d_2 ≫ ε*``) and checks that the deployed model's
``d_2`` moves toward ``ε*``.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
import types

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxsym.equinox as jeqx
import jaxsym.flax
from jaxsym import dial, groups, symmetrize
from jaxsym.defects import distance_to_equivariance, equivariance_error
from jaxsym.flax import linen as jlinen
from jaxsym.flax import nnx as jnnx
from jaxsym.tasks import planar_task
from jaxsym.training import BoundRegularizer

C8 = groups.cyclic_rotations(8)
C4 = groups.cyclic_rotations(4)
STEPS = 150


@pytest.fixture(scope="module")
def task():
    return planar_task(200, 0.3, key=jax.random.key(3))


@pytest.fixture(scope="module")
def reg():
    """A C8 budget of 0.3 (d_2 units), as a screen keeping C8 at t* ≈ 0.9 gives on this task."""
    return BoundRegularizer(jnp.asarray(0.3), C8)


def _loss(reg, f, x, y):
    """The user's loop: ``g = reg.model(f)``; data loss + penalty."""
    g = reg.model(f)
    return jnp.mean((g(x) - y) ** 2) + reg(g, x)


def _deployed_d2(reg, f, x):
    return float(distance_to_equivariance(reg.freeze(f, x), x, reg.group))


def _check_moves_toward(reg, start: float, end: float):
    eps = float(reg.budget)
    assert abs(end - eps) < 0.5 * abs(start - eps), (start, end, eps)


# ----------------------------------------------------------------------------- models


class LinenMLP(nn.Module):
    out_scale: float = 1.0

    @nn.compact
    def __call__(self, x):
        h = jnp.tanh(nn.Dense(32)(x))
        init = nn.initializers.variance_scaling(self.out_scale**2, "fan_in", "normal")
        return nn.Dense(1, kernel_init=init)(h)


class NNXMLP(nnx.Module):
    def __init__(self, out_scale: float, rngs: nnx.Rngs):
        def scaled(key, shape, dtype=jnp.float32):  # works on every supported flax
            return out_scale * nnx.initializers.lecun_normal()(key, shape, dtype)

        self.hidden = nnx.Linear(2, 32, rngs=rngs)
        self.out = nnx.Linear(32, 1, kernel_init=scaled, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


def _eqx_mlp(out_scale: float):
    mlp = eqx.nn.MLP(2, 1, 32, 1, activation=jnp.tanh, key=jax.random.key(1))
    return eqx.tree_at(lambda m: m.layers[-1].weight, mlp, mlp.layers[-1].weight * out_scale)


SCALES = {"over-symmetric": 0.01, "under-symmetric": 30.0}


# ----------------------------------------------------------------------------- training


@pytest.mark.slow
@pytest.mark.parametrize("start", sorted(SCALES))
def test_linen_training_with_the_regularizer(reg, task, start):
    module = LinenMLP(SCALES[start])
    params = module.init(jax.random.key(1), task.x)
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)

    @jax.jit
    def step(params, state):
        grads = jax.grad(lambda p: _loss(reg, lambda z: module.apply(p, z), task.x, task.y))(params)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    before = float(distance_to_equivariance(lambda z: module.apply(params, z), task.x, C8))
    for _ in range(STEPS):
        params, state = step(params, state)
    after = _deployed_d2(reg, lambda z: module.apply(params, z), task.x)
    _check_moves_toward(reg, before, after)


@pytest.mark.slow
@pytest.mark.parametrize("start", sorted(SCALES))
def test_nnx_training_with_the_regularizer(reg, task, start):
    model = NNXMLP(SCALES[start], nnx.Rngs(1))
    optimizer = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: _loss(reg, m, task.x, task.y))(model)
        optimizer.update(model, grads)

    before = float(distance_to_equivariance(model, task.x, C8))
    for _ in range(STEPS):
        step(model, optimizer)
    _check_moves_toward(reg, before, _deployed_d2(reg, model, task.x))


@pytest.mark.slow
@pytest.mark.parametrize("start", sorted(SCALES))
def test_equinox_training_with_the_regularizer(reg, task, start):
    model = _eqx_mlp(SCALES[start])
    optimizer = optax.adam(1e-2)
    state = optimizer.init(eqx.filter(model, eqx.is_array))

    @eqx.filter_jit
    def step(model, state):
        grads = eqx.filter_grad(lambda m: _loss(reg, jax.vmap(m), task.x, task.y))(model)
        updates, state = optimizer.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state

    before = float(distance_to_equivariance(jax.vmap(model), task.x, C8))
    for _ in range(STEPS):
        model, state = step(model, state)
    _check_moves_toward(reg, before, _deployed_d2(reg, jax.vmap(model), task.x))


# ----------------------------------------------------------------------------- adapters

X = jax.random.normal(jax.random.key(7), (6, 2))


@pytest.mark.slow
def test_linen_adapters_match_symmetrize_and_dial():
    base = LinenMLP()
    sym = jlinen.Symmetrized(base, C4)
    variables = sym.init(jax.random.key(0), X)
    inner = {"params": variables["params"]["model"]}
    f = lambda z: base.apply(inner, z)  # noqa: E731
    np.testing.assert_allclose(sym.apply(variables, X), symmetrize(f, C4)(X), rtol=1e-6)
    dialed = jlinen.Dialed(base, C4, 0.3, trainable_t=True)
    variables = dialed.init(jax.random.key(0), X)
    assert float(variables["params"]["t"]) == pytest.approx(0.3)
    inner = {"params": variables["params"]["model"]}
    f = lambda z: base.apply(inner, z)  # noqa: E731
    np.testing.assert_allclose(
        dialed.apply(variables, X), dial(f, C4, 0.3)(X), rtol=1e-5, atol=1e-6
    )
    grad = jax.grad(lambda v: jnp.sum(dialed.apply(v, X) ** 2))(variables)
    # d/dt of Σ (q + t r)² is 2 Σ r (q + t r)
    q, r = symmetrize(f, C4)(X), f(X) - symmetrize(f, C4)(X)
    np.testing.assert_allclose(grad["params"]["t"], 2 * jnp.sum(r * (q + 0.3 * r)), rtol=1e-4)


@pytest.mark.slow
def test_nnx_adapters_match_symmetrize_and_dial():
    base = NNXMLP(1.0, nnx.Rngs(0))
    np.testing.assert_allclose(jnnx.Symmetrized(base, C4)(X), symmetrize(base, C4)(X), rtol=1e-6)
    dialed = jnnx.Dialed(base, C4, 0.3, trainable_t=True)
    np.testing.assert_allclose(dialed(X), dial(base, C4, 0.3)(X), rtol=1e-5, atol=1e-6)
    grads = nnx.grad(lambda m: jnp.sum(m(X) ** 2))(dialed)
    q, r = symmetrize(base, C4)(X), base(X) - symmetrize(base, C4)(X)
    np.testing.assert_allclose(grads.t[...], 2 * jnp.sum(r * (q + 0.3 * r)), rtol=1e-4)
    fixed = jnnx.Dialed(base, C4, 0.3)
    assert float(nnx.grad(lambda m: jnp.sum(m(X) ** 2), argnums=0)(fixed).model.out.bias[0]) != 0


@pytest.mark.slow
def test_equinox_adapters_match_symmetrize_and_dial():
    mlp = _eqx_mlp(1.0)
    f = jax.vmap(mlp)
    np.testing.assert_allclose(jeqx.Symmetrized(mlp, C4)(X), symmetrize(f, C4)(X), rtol=1e-6)
    batched = jeqx.Symmetrized(eqx.filter_vmap(mlp), C4, batched=True)
    np.testing.assert_allclose(batched(X), symmetrize(f, C4)(X), rtol=1e-6)
    dialed = jeqx.Dialed(mlp, C4, 0.3, trainable_t=True)
    np.testing.assert_allclose(dialed(X), dial(f, C4, 0.3)(X), rtol=1e-5, atol=1e-6)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(X) ** 2))(dialed)
    q, r = symmetrize(f, C4)(X), f(X) - symmetrize(f, C4)(X)
    np.testing.assert_allclose(grads.t, 2 * jnp.sum(r * (q + 0.3 * r)), rtol=1e-4)
    frozen = jeqx.Dialed(mlp, C4, 0.3, trainable_t=False)
    # a fixed t is no leaf at all: nothing to differentiate, decay or optimize
    n_mlp = len(jax.tree_util.tree_leaves(eqx.filter(mlp, eqx.is_array)))
    assert len(jax.tree_util.tree_leaves(eqx.filter(frozen, eqx.is_array))) == n_mlp
    assert float(frozen.t) == pytest.approx(0.3)
    np.testing.assert_allclose(frozen(X), dial(f, C4, 0.3)(X), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="t"):
        jeqx.Dialed(mlp, C4, 1.5)


@pytest.mark.slow
def test_import_jaxsym_works_without_flax():
    code = textwrap.dedent(
        """
        import sys
        class NoFlax:
            def find_spec(self, name, path=None, target=None):
                if name == "flax" or name.startswith("flax."):
                    raise ImportError("flax is broken here")
                return None
        sys.meta_path.insert(0, NoFlax())
        for name in [m for m in sys.modules if m == "flax" or m.startswith("flax.")]:
            del sys.modules[name]
        import jaxsym, jaxsym.training, jaxsym.equinox
        assert "flax" not in sys.modules
        try:
            import jaxsym.flax
        except ImportError as error:
            assert "pip install flax" in str(error), error
        else:
            raise AssertionError("jaxsym.flax imported without flax")
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_flax_submodules_are_importable_modules():
    for name in ("linen", "nnx"):
        module = importlib.import_module(f"jaxsym.flax.{name}")
        assert isinstance(module, types.ModuleType)
        assert getattr(jaxsym.flax, name) is module
        assert module.Symmetrized.__module__ == module.__name__
    assert jaxsym.flax.linen.Dialed is jlinen.Dialed and jaxsym.flax.nnx.Dialed is jnnx.Dialed


# ----------------------------------------------------------------------------- what never trains
#
# Each framework's documented recipe, with weight decay, on a target that is NOT
# symmetric (the network is pushed to break the symmetry). The group's elements,
# a fixed t and the budget are stored values: they must come back bitwise equal.
# The trained Symmetrized model must then be invariant/equivariant under the
# real group (an independent check: equivariance_error against a fresh copy).

STEPS_FIXED = 25
N_FIXED = 16


def _case(name):
    if name == "C4":
        group, d_in, d_out = groups.cyclic_rotations(4), 2, 1
    elif name == "D4-equivariant":
        group, d_in, d_out = groups.dihedral(4).equivariant(), 2, 2
    elif name == "Z3-integer":
        group, d_in, d_out = groups.cyclic_shifts(3), 3, 1
    else:  # "S3-integer"
        group, d_in, d_out = groups.permutations(3), 3, 1
    x = jax.random.normal(jax.random.key(21), (N_FIXED, d_in))
    # far from symmetric: a linear ramp along the first coordinate
    y = jnp.tile(3.0 * x[:, :1] + x[:, -1:] ** 2, (1, d_out)) * jnp.arange(1, d_out + 1)
    return group, d_in, d_out, x, y


CASES = ["C4", "D4-equivariant", "Z3-integer", "S3-integer"]


def _snapshot(group):
    return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(group.elements)]


def _assert_bitwise(before, group):
    after = jax.tree_util.tree_leaves(group.elements)
    assert len(after) == len(before)
    for a, b in zip(before, after, strict=True):
        assert np.asarray(b).dtype == a.dtype
        np.testing.assert_array_equal(np.asarray(b), a)


def _assert_symmetric(model, x, group, fresh):
    out = np.asarray(model(x))
    error = float(equivariance_error(model, x, fresh))
    assert error <= 1e-5 * (1.0 + np.abs(out).max()), error


def _assert_dial_identity(dialed_model, inner, x, fresh, t):
    """d_2 of the dial is t · d_2 of the inner model (docs/theory.md §3), on the real group."""
    d_inner = float(distance_to_equivariance(inner, x, fresh))
    assert d_inner > 1e-3  # the inner model is not symmetric: the check can fail
    np.testing.assert_allclose(
        float(distance_to_equivariance(dialed_model, x, fresh)), t * d_inner, rtol=2e-3
    )


def _moved(a, b):
    return any(
        not np.array_equal(np.asarray(p), np.asarray(q))
        for p, q in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True)
    )


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", [pytest.param("adam", marks=pytest.mark.slow), "adamw"])
@pytest.mark.parametrize("case", CASES)
def test_equinox_recipe_keeps_the_group_and_a_fixed_t(case, optimizer):
    group, d_in, d_out, x, y = _case(case)
    fresh = _case(case)[0]
    before = _snapshot(group)
    tx = optax.adam(3e-2) if optimizer == "adam" else optax.adamw(3e-2, weight_decay=0.5)
    mlp = eqx.nn.MLP(d_in, d_out, 8, 1, activation=jnp.tanh, key=jax.random.key(2))
    models = (jeqx.Symmetrized(mlp, group), jeqx.Dialed(mlp, group, 0.5, trainable_t=False))

    @eqx.filter_jit
    def step(model, state):
        grads = eqx.filter_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
        updates, state = tx.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state

    trained = []
    for model in models:
        state = tx.init(eqx.filter(model, eqx.is_array))
        start = model
        for _ in range(STEPS_FIXED):
            model, state = step(model, state)
        assert _moved(start.model, model.model)
        _assert_bitwise(before, model.group)
        trained.append(model)
    symmetrized, dialed = trained
    assert not dialed.trainable_t and float(dialed.t) == np.float32(0.5)  # bitwise
    _assert_symmetric(symmetrized, x, group, fresh)
    _assert_dial_identity(dialed, jax.vmap(dialed.model), x, fresh, 0.5)


class _NNXNet(nnx.Module):
    def __init__(self, d_in, d_out, rngs):
        self.hidden = nnx.Linear(d_in, 8, rngs=rngs)
        self.out = nnx.Linear(8, d_out, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x)))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_nnx_recipe_keeps_the_group_and_a_fixed_t(case):
    group, d_in, d_out, x, y = _case(case)
    fresh = _case(case)[0]
    before = _snapshot(group)
    for kind in ("symmetrized", "dialed"):
        net = _NNXNet(d_in, d_out, nnx.Rngs(3))
        if kind == "symmetrized":
            model = jnnx.Symmetrized(net, group)
        else:
            model = jnnx.Dialed(net, group, 0.5)
        start = nnx.clone(net)
        # the documented flax 0.12 recipe, with weight decay
        optimizer = nnx.Optimizer(model, optax.adamw(3e-2, weight_decay=0.5), wrt=nnx.Param)

        @nnx.jit
        def step(model, optimizer):
            loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(model)
            optimizer.update(model, grads)
            return loss

        for _ in range(STEPS_FIXED):
            step(model, optimizer)
        assert _moved(nnx.state(start), nnx.state(model.model))
        _assert_bitwise(before, model.group)
        # nothing but the network's parameters is in the state
        assert len(jax.tree_util.tree_leaves(nnx.state(model))) == len(
            jax.tree_util.tree_leaves(nnx.state(model.model))
        )
        if kind == "symmetrized":
            _assert_symmetric(model, x, group, fresh)
        else:
            assert model.t == 0.5 and not model.trainable_t
            _assert_dial_identity(model, model.model, x, fresh, 0.5)


def test_nnx_update_with_the_group_inside():
    group, d_in, d_out, x, _ = _case("D4-equivariant")
    m = jnnx.Dialed(_NNXNet(d_in, d_out, nnx.Rngs(4)), group, 0.5, trainable_t=True)
    m2 = jnnx.Dialed(_NNXNet(d_in, d_out, nnx.Rngs(5)), group, 0.9, trainable_t=True)
    assert not np.allclose(m(x), m2(x))
    nnx.update(m2, nnx.state(m))
    np.testing.assert_array_equal(m2(x), m(x))
    graphdef, state = nnx.split(m)
    np.testing.assert_array_equal(nnx.merge(graphdef, state)(x), m(x))


class _LinenNet(nn.Module):
    d_out: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.d_out)(jnp.tanh(nn.Dense(8)(x)))


@pytest.mark.parametrize("case", CASES)
def test_linen_recipe_keeps_the_group_and_a_fixed_t(case):
    group, _, d_out, x, y = _case(case)
    fresh = _case(case)[0]
    before = _snapshot(group)
    tx = optax.adamw(3e-2, weight_decay=0.5)
    for module in (
        jlinen.Symmetrized(_LinenNet(d_out), group),
        jlinen.Dialed(_LinenNet(d_out), group, 0.5),
    ):
        params = module.init(jax.random.key(6), x)
        assert set(params["params"]) == {"model"}  # no t, no elements among the parameters
        state = tx.init(params)

        @jax.jit
        def step(params, state, module=module):
            grads = jax.grad(lambda p: jnp.mean((module.apply(p, x) - y) ** 2))(params)
            updates, state = tx.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        start = params
        for _ in range(STEPS_FIXED):
            params, state = step(params, state)
        assert _moved(start, params)
        _assert_bitwise(before, module.group)
        model = lambda z, module=module, params=params: module.apply(params, z)  # noqa: E731
        if isinstance(module, jlinen.Symmetrized):
            _assert_symmetric(model, x, group, fresh)
        else:
            inner = lambda z, p=params: _LinenNet(d_out).apply({"params": p["params"]["model"]}, z)  # noqa: E731
            _assert_dial_identity(model, inner, x, fresh, 0.5)


# ----------------------------------------------------------------------------- a trainable t


def _target_level_loss(level_target):
    """``Σ (m(X) − (q + c r))²`` with ``q = Q_G f(X)``, ``r = f(X) − q``: least at level ``c``."""

    def loss(model, f):
        q = symmetrize(f, C4)(X)
        return jnp.sum((model(X) - (q + level_target * (f(X) - q))) ** 2)

    return loss


def test_a_trainable_t_outside_the_unit_interval_comes_back():
    mlp = _eqx_mlp(1.0)
    f = jax.vmap(mlp)
    r = f(X) - symmetrize(f, C4)(X)
    rr = float(jnp.sum(r**2))
    for t_raw, target, expected in [
        (1.5, 0.3, 2 * (1.0 - 0.3) * rr),  # pulled back inside: the gradient passes
        (-0.5, 0.7, 2 * (0.0 - 0.7) * rr),
        (1.5, 2.0, 0.0),  # pushed further out: dropped (projected gradient)
        (-0.5, -1.0, 0.0),
        (0.4, 0.1, 2 * (0.4 - 0.1) * rr),  # inside: the ordinary gradient
    ]:
        model = eqx.tree_at(
            lambda m: m.t_param, jeqx.Dialed(mlp, C4, 0.5, trainable_t=True), jnp.float32(t_raw)
        )
        loss = _target_level_loss(target)
        grad = eqx.filter_grad(lambda m, loss=loss: loss(m, f))(model).t
        np.testing.assert_allclose(float(grad), expected, rtol=1e-3, atol=1e-4 * rr)
    # trained from t = 1.5 (only t trains), it reaches the interior optimum 0.3
    model = eqx.tree_at(
        lambda m: m.t_param, jeqx.Dialed(mlp, C4, 0.5, trainable_t=True), jnp.float32(1.5)
    )
    loss = _target_level_loss(0.3)
    tx = optax.adam(5e-2)
    state = tx.init(model.t)

    @eqx.filter_jit
    def step(model, state):
        g = eqx.filter_grad(lambda m: loss(m, f))(model).t
        updates, state = tx.update(g, state)
        return eqx.tree_at(lambda m: m.t_param, model, model.t + updates), state

    for _ in range(60):
        model, state = step(model, state)
    assert abs(float(model.level) - 0.3) < 0.05


def test_linen_and_nnx_trainable_t_has_the_projected_gradient():
    base = LinenMLP()
    dialed = jlinen.Dialed(base, C4, 0.5, trainable_t=True)
    variables = dialed.init(jax.random.key(0), X)
    inner = {"params": variables["params"]["model"]}
    f = lambda z: base.apply(inner, z)  # noqa: E731
    r = f(X) - symmetrize(f, C4)(X)
    rr = float(jnp.sum(r**2))
    for t_raw, target, expected in [(1.5, 0.3, 2 * 0.7 * rr), (1.5, 2.0, 0.0)]:
        v = {"params": {**variables["params"], "t": jnp.float32(t_raw)}}
        loss = _target_level_loss(target)
        grad = jax.grad(lambda v, loss=loss: loss(lambda z: dialed.apply(v, z), f))(v)
        np.testing.assert_allclose(float(grad["params"]["t"]), expected, rtol=1e-3, atol=1e-4 * rr)
    net = NNXMLP(1.0, nnx.Rngs(0))
    model = jnnx.Dialed(net, C4, 0.5, trainable_t=True)
    model.t[...] = jnp.float32(-0.5)
    r = net(X) - symmetrize(net, C4)(X)
    rr = float(jnp.sum(r**2))
    grads = nnx.grad(lambda m: _target_level_loss(0.6)(m, net))(model)
    np.testing.assert_allclose(float(grads.t[...]), 2 * (0.0 - 0.6) * rr, rtol=1e-3)


def test_a_held_group_is_a_jit_cache_key_by_value():
    """Equal groups share one trace; a group with other elements (same name) gets its own."""
    import dataclasses

    mlp = _eqx_mlp(1.0)
    f = jax.vmap(mlp)
    traces = []

    @eqx.filter_jit
    def run(model, x):
        traces.append(None)
        return model(x)

    run(jeqx.Symmetrized(mlp, groups.cyclic_rotations(4)), X)
    run(jeqx.Symmetrized(mlp, groups.cyclic_rotations(4)), X)  # a new, equal group
    assert len(traces) == 1
    turned = dataclasses.replace(C4, elements=C8.elements[1::2])  # "C4", turned by 45°
    out = run(jeqx.Symmetrized(mlp, turned), X)
    assert len(traces) == 2
    np.testing.assert_allclose(out, symmetrize(f, turned)(X), rtol=1e-6)
    assert not np.allclose(out, symmetrize(f, C4)(X), rtol=1e-3)
