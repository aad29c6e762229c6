"""The model convention works with flax (linen, nnx) and equinox models:
parameters are closed over, so ``jax.grad`` of a defect works from the outside."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import brute_force_defects
from flax import nnx

import jaxsym
from jaxsym import groups

pytestmark = pytest.mark.slow  # each framework compiles a training loop

GROUP = groups.dihedral(4)
X = jax.random.normal(jax.random.key(0), (8, 5, 2))


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(1)(nn.tanh(nn.Dense(16)(x)))


class NNXMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(10, 16, rngs=rngs)
        self.out = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.out(jnp.tanh(self.hidden(x.reshape(x.shape[0], -1))))


def _descends(loss, params, steps=30, expected=None):
    """A few optax steps on the defect reduce it; the gradient is finite and non-zero."""
    optimizer = optax.adam(1e-2)
    state = optimizer.init(params)
    first = loss(params)
    if expected is not None:
        np.testing.assert_allclose(first, expected, rtol=1e-5)
    grads = jax.grad(loss)(params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert any(np.any(np.asarray(g) != 0) for g in leaves)
    step = jax.jit(lambda p, s: _update(optimizer, loss, p, s))
    for _ in range(steps):
        params, state = step(params, state)
    assert loss(params) < 0.8 * first


def _update(optimizer, loss, params, state):
    updates, state = optimizer.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state


def test_flax_linen():
    model = LinenMLP()
    params = model.init(jax.random.key(1), X)
    expected = brute_force_defects(lambda x: model.apply(params, x), X, GROUP).max()
    _descends(
        lambda p: jaxsym.equivariance_error(lambda x: model.apply(p, x), X, GROUP),
        params,
        expected=expected,
    )


def test_flax_nnx():
    model = NNXMLP(nnx.Rngs(2))
    graphdef, state = nnx.split(model)

    def loss(state):
        net = nnx.merge(graphdef, state)
        return jaxsym.equivariance_error(net, X, GROUP, "rms")

    _descends(loss, state)


def test_equinox():
    model = eqx.nn.MLP(10, 1, 16, 2, key=jax.random.key(3))
    params, static = eqx.partition(model, eqx.is_array)

    def loss(params):
        net = eqx.combine(params, static)
        return jaxsym.equivariance_error(lambda x: jax.vmap(net)(x.reshape(len(x), -1)), X, GROUP)

    expected = brute_force_defects(lambda x: jax.vmap(model)(x.reshape(len(x), -1)), X, GROUP).max()
    _descends(loss, params, expected=expected)
