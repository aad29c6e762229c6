"""Flax (linen, nnx) and equinox adapters, and optax training with the bound regularizer.

The three training tests share one regularizer and one loss; only the call style
differs. Each trains from an over-symmetric start (``d_2 ≈ 0``) and from an
under-symmetric start (``d_2 ≫ ε*``) and checks that the deployed model's
``d_2`` moves toward ``ε*``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxsym.equinox as jeqx
from jaxsym import dial, groups, symmetrize
from jaxsym.defects import distance_to_equivariance
from jaxsym.flax import linen as jlinen
from jaxsym.flax import nnx as jnnx
from jaxsym.models import random_features_ridge
from jaxsym.tasks import planar_task
from jaxsym.training import bound_regularizer

C8 = groups.cyclic_rotations(8)
C4 = groups.cyclic_rotations(4)
STEPS = 150


@pytest.fixture(scope="module")
def task():
    return planar_task(200, 0.3, key=jax.random.key(3))


@pytest.fixture(scope="module")
def reg(task):
    fit = random_features_ridge(64, 1e-3, key=jax.random.key(5))
    return bound_regularizer(task.x, task.y, C8, fit=fit, key=jax.random.key(0))


def _loss(reg, f, x, y):
    """The user's loop: ``g = reg.model(f)``; data loss + penalty."""
    g = reg.model(f)
    return jnp.mean((g(x) - y) ** 2) + reg(g, x)


def _deployed_d2(reg, f, x):
    return float(distance_to_equivariance(reg.freeze(f, x), x, reg.group))


def _check_moves_toward(reg, start: float, end: float):
    eps = float(reg.eps)
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


def test_equinox_adapters_match_symmetrize_and_dial():
    mlp = _eqx_mlp(1.0)
    f = jax.vmap(mlp)
    np.testing.assert_allclose(jeqx.Symmetrized(mlp, C4)(X), symmetrize(f, C4)(X), rtol=1e-6)
    batched = jeqx.Symmetrized(eqx.filter_vmap(mlp), C4, batched=True)
    np.testing.assert_allclose(batched(X), symmetrize(f, C4)(X), rtol=1e-6)
    dialed = jeqx.Dialed(mlp, C4, 0.3)
    np.testing.assert_allclose(dialed(X), dial(f, C4, 0.3)(X), rtol=1e-5, atol=1e-6)
    grads = eqx.filter_grad(lambda m: jnp.sum(m(X) ** 2))(dialed)
    q, r = symmetrize(f, C4)(X), f(X) - symmetrize(f, C4)(X)
    np.testing.assert_allclose(grads.t, 2 * jnp.sum(r * (q + 0.3 * r)), rtol=1e-4)
    frozen = jeqx.Dialed(mlp, C4, 0.3, trainable_t=False)
    assert float(eqx.filter_grad(lambda m: jnp.sum(m(X) ** 2))(frozen).t) == 0.0
    with pytest.raises(ValueError, match="t"):
        jeqx.Dialed(mlp, C4, 1.5)


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
