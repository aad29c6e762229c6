"""nnx adapters: ``Symmetrized(model, group)`` and ``Dialed(model, group, t)`` (docs/theory.md §3).

The group is a static attribute (a hashable holder, part of the graph
definition, not of ``nnx.state``): ``nnx.Optimizer(model, tx, wrt=nnx.Param)``,
``nnx.state`` / ``nnx.update`` and weight decay never touch its elements, and
it is read with gradients stopped. A fixed ``t`` is a Python number (static);
a trainable ``t`` is an ``nnx.Param`` used as ``clip(t, 0, 1)`` with a
projected gradient (see :mod:`jaxsym.flax`).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxsym._src.static import Fixed, projected_level
from jaxsym._src.validation import check_chunk_size, check_group, check_unit_interval
from jaxsym.averaging import dial, symmetrize
from jaxsym.groups import TransformationSet

__all__ = ["Dialed", "Symmetrized"]


def _pure(model):
    graphdef, state = nnx.split(model)

    def pure(z):
        return nnx.merge(graphdef, state)(z)

    return pure


class Symmetrized(nnx.Module):
    """``Q_G model`` as an nnx module (docs/theory.md §3).

    Args:
        model: the nnx module to wrap (batched); its parameters train.
        group: the group to average over (static: never in ``nnx.state``).
        chunk_size: group elements per model call (``None``: automatic).
    """

    def __init__(self, model, group: TransformationSet, *, chunk_size: int | None = None):
        check_group(group)
        check_chunk_size(chunk_size)
        self.model = model
        self.fixed_group = Fixed(group)
        self.chunk_size = chunk_size

    @property
    def group(self) -> TransformationSet:
        """The group (elements with gradients stopped)."""
        return self.fixed_group.value

    def __call__(self, x: jax.Array) -> jax.Array:
        return symmetrize(_pure(self.model), self.group, chunk_size=self.chunk_size)(x)


class Dialed(nnx.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` as an nnx module (docs/theory.md §3).

    Args:
        model: the nnx module to wrap (batched).
        group: the group (static: never in ``nnx.state``).
        t: the level in ``[0, 1]`` (the initial value if trainable).
        trainable_t: make ``t`` an ``nnx.Param`` (used as ``clip(t, 0, 1)`` with a
            projected gradient); else ``t`` is a Python number (static).
            Train it on a validation loss, not the training loss (the package
            docstring of :mod:`jaxsym.flax`).
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
        check_chunk_size(chunk_size)
        self.model = model
        self.fixed_group = Fixed(group)
        self.t = nnx.Param(jnp.asarray(t, jnp.float32)) if trainable_t else float(t)
        self.chunk_size = chunk_size

    @property
    def group(self) -> TransformationSet:
        """The group (elements with gradients stopped)."""
        return self.fixed_group.value

    @property
    def trainable_t(self) -> bool:
        """Whether ``t`` is a parameter."""
        return isinstance(self.t, nnx.Param)

    @property
    def level(self) -> jax.Array:
        """The level in use, ``clip(t, 0, 1)``."""
        if self.trainable_t:
            return projected_level(self.t[...])
        return jnp.asarray(self.t, jnp.float32)

    def __call__(self, x: jax.Array) -> jax.Array:
        return dial(_pure(self.model), self.group, self.level, chunk_size=self.chunk_size)(x)
