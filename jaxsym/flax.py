"""Flax adapters (linen, nnx): symmetrize or dial a model without rewriting it (docs/theory.md §3).

``Symmetrized(model, group)`` is ``Q_G model`` and ``Dialed(model, group, t)``
is ``Q_G model + t (model − Q_G model)``. Both take a batch ``(B, *input)`` and
return ``(B, *output)``; ``t`` may be a trainable parameter (``trainable_t=True``,
clipped to ``[0, 1]`` when used).

* ``jaxsym.flax.linen.Symmetrized`` / ``Dialed``: linen modules with the wrapped
  module as a submodule (its parameters live under ``params/model``).
* ``jaxsym.flax.nnx.Symmetrized`` / ``Dialed``: nnx modules.

The model is called on the orbit inside jaxsym's chunked loop over the group
(a :func:`jax.lax.scan`), so it is called as a pure function of its variables
(``apply`` for linen, ``split``/``merge`` for nnx): wrapped models should not
mutate state while predicting (no batch-norm statistics in training mode,
no dropout RNG streams). This module is imported only on request;
``import jaxsym`` does not need flax.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

try:
    import flax.linen as _linen
    from flax import nnx as _nnx
except Exception as error:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "jaxsym.flax needs flax (linen and nnx); install it with `pip install flax`. "
        f"Importing flax failed with: {error!r}"
    ) from error

import types

import jax
import jax.numpy as jnp

from jaxsym._validation import check_group, check_unit_interval
from jaxsym.averaging import dial, symmetrize
from jaxsym.groups import TransformationSet

__all__ = ["linen", "nnx"]


# ============================================================================ linen


def _linen_pure(wrapper, x):
    """The wrapped linen model as a pure function of its (closed-over) variables.

    Called on the orbit inside a :func:`jax.lax.scan`, where a bound linen module
    cannot be called; at init the model is called once on ``x`` to create them.
    """
    if wrapper.is_initializing():
        wrapper.model(x)
    variables = wrapper.model.variables
    unbound = wrapper.model.clone(parent=None)
    return lambda z: unbound.apply(variables, z)


class _LinenSymmetrized(_linen.Module):
    """``Q_G model`` as a linen module (docs/theory.md §3).

    Attributes:
        model: the linen module to wrap (batched).
        group: the group to average over.
        chunk_size: group elements per model call (``None``: automatic).
    """

    model: _linen.Module
    group: TransformationSet
    chunk_size: int | None = None

    @_linen.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_group(self.group)
        return symmetrize(_linen_pure(self, x), self.group, chunk_size=self.chunk_size)(x)


class _LinenDialed(_linen.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` as a linen module (docs/theory.md §3).

    Attributes:
        model: the linen module to wrap (batched).
        group: the group.
        t: the level in ``[0, 1]`` (the initial value if trainable).
        trainable_t: make ``t`` a parameter (``params/t``).
        chunk_size: group elements per model call.
    """

    model: _linen.Module
    group: TransformationSet
    t: float = 1.0
    trainable_t: bool = False
    chunk_size: int | None = None

    @_linen.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        check_group(self.group)
        check_unit_interval("t", self.t)
        if self.trainable_t:
            t = self.param("t", lambda _: jnp.asarray(self.t, jnp.float32))
        else:
            t = jnp.asarray(self.t, jnp.float32)
        return dial(
            _linen_pure(self, x), self.group, jnp.clip(t, 0.0, 1.0), chunk_size=self.chunk_size
        )(x)


linen = types.SimpleNamespace(Symmetrized=_LinenSymmetrized, Dialed=_LinenDialed)
linen.__doc__ = "Linen adapters: ``Symmetrized(model, group)``, ``Dialed(model, group, t)``."


# ============================================================================ nnx


def _pure_nnx(model):
    graphdef, state = _nnx.split(model)

    def pure(z):
        return _nnx.merge(graphdef, state)(z)

    return pure


class _NNXSymmetrized(_nnx.Module):
    """``Q_G model`` as an nnx module (docs/theory.md §3).

    Attributes:
        model: the nnx module to wrap (batched).
        group: the group to average over (static).
        chunk_size: group elements per model call (``None``: automatic).
    """

    def __init__(self, model, group: TransformationSet, *, chunk_size: int | None = None):
        check_group(group)
        self.model = model
        self.group = _nnx.data(group)
        self.chunk_size = chunk_size

    def __call__(self, x: jax.Array) -> jax.Array:
        return symmetrize(_pure_nnx(self.model), self.group, chunk_size=self.chunk_size)(x)


class _NNXDialed(_nnx.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` as an nnx module (docs/theory.md §3).

    Attributes:
        model: the nnx module to wrap (batched).
        group: the group (static).
        t: the level, an ``nnx.Param`` if ``trainable_t`` (clipped to ``[0, 1]``).
        chunk_size: group elements per model call.
    """

    def __init__(
        self,
        model,
        group: TransformationSet,
        t=1.0,
        *,
        trainable_t: bool = False,
        chunk_size: int | None = None,
    ):
        check_group(group)
        check_unit_interval("t", t)
        self.model = model
        self.group = _nnx.data(group)
        value = jnp.asarray(t, jnp.float32)
        self.t = _nnx.Param(value) if trainable_t else _nnx.Variable(value)
        self.chunk_size = chunk_size

    def __call__(self, x: jax.Array) -> jax.Array:
        t = self.t[...]
        if not isinstance(self.t, _nnx.Param):
            t = jax.lax.stop_gradient(t)
        level = jnp.clip(t, 0.0, 1.0)
        return dial(_pure_nnx(self.model), self.group, level, chunk_size=self.chunk_size)(x)


nnx = types.SimpleNamespace(Symmetrized=_NNXSymmetrized, Dialed=_NNXDialed)
nnx.__doc__ = "nnx adapters: ``Symmetrized(model, group)``, ``Dialed(model, group, t)``."
