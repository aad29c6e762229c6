"""Linen adapters: ``Symmetrized(model, group)``, ``Dialed(model, group, t)`` (docs/theory.md §3).

The wrapped linen module is a submodule (its parameters live under
``params/model``); the only other parameter is a trainable ``t`` (``params/t``).
The group's elements are constants of the computation, read with gradients
stopped, never parameters: ``model.init`` / ``model.apply`` plus optax on the
params (weight decay included) leave them unchanged. A fixed ``t`` is a
Python number. A trainable ``t`` is used as ``clip(t, 0, 1)`` with a projected
gradient (see :mod:`jaxsym.flax`).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxsym._src.static import Fixed, projected_level
from jaxsym._src.validation import check_group, check_unit_interval
from jaxsym.averaging import dial, symmetrize
from jaxsym.groups import TransformationSet

__all__ = ["Dialed", "Symmetrized"]


def _pure(wrapper, x):
    """The wrapped linen model as a pure function of its (closed-over) variables.

    Called on the orbit inside a :func:`jax.lax.scan`, where a bound linen module
    cannot be called; at init the model is called once on ``x`` to create them.
    """
    if wrapper.is_initializing():
        wrapper.model(x)
    variables = wrapper.model.variables
    unbound = wrapper.model.clone(parent=None)
    return lambda z: unbound.apply(variables, z)


def _fixed(group: TransformationSet) -> TransformationSet:
    """The group with gradients stopped on its elements (never a parameter)."""
    check_group(group)
    return Fixed(group).value


class Symmetrized(nn.Module):
    """``Q_G model`` as a linen module (docs/theory.md §3).

    Attributes:
        model: the linen module to wrap (batched); its parameters train.
        group: the group to average over (fixed: never a parameter).
        chunk_size: group elements per model call (``None``: automatic).
    """

    model: nn.Module
    group: TransformationSet
    chunk_size: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        group = _fixed(self.group)
        return symmetrize(_pure(self, x), group, chunk_size=self.chunk_size)(x)


class Dialed(nn.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` as a linen module (docs/theory.md §3).

    Attributes:
        model: the linen module to wrap (batched).
        group: the group (fixed: never a parameter).
        t: the level in ``[0, 1]`` (the initial value if trainable).
        trainable_t: make ``t`` a parameter (``params/t``), used as
            ``clip(t, 0, 1)`` with a projected gradient; else ``t`` is a constant.
            Train it on a validation loss, not the training loss (the package
            docstring of :mod:`jaxsym.flax`).
        chunk_size: group elements per model call.
    """

    model: nn.Module
    group: TransformationSet
    t: float = 1.0
    trainable_t: bool = False
    chunk_size: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        group = _fixed(self.group)
        check_unit_interval("t", self.t)
        if self.trainable_t:
            level = projected_level(self.param("t", lambda _: jnp.asarray(self.t, jnp.float32)))
        else:
            level = jnp.asarray(self.t, jnp.float32)
        return dial(_pure(self, x), group, level, chunk_size=self.chunk_size)(x)
