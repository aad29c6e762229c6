"""Values that a trained model holds but never trains: a group's elements, a budget, a fixed dial.

:class:`Fixed` wraps a pytree (a :class:`~jaxsym.groups.TransformationSet`, a
number) in a hashable object that is not a pytree. Held in a static field of an
equinox module, or as a plain attribute of an nnx module, it is part of the
tree's structure, not one of its leaves: ``eqx.filter(m, eqx.is_array)``,
``eqx.filter_grad``, ``nnx.state``, ``nnx.Optimizer`` and optax (weight decay
included) never see it, and integer elements never enter an optimizer's state.
Reading it through :attr:`Fixed.value` also stops gradients (``jax.lax.stop_gradient``).

Two holders are equal when their values are bitwise equal (a content digest),
so ``jit`` caches by value; a holder of traced values (built inside a
transformation) is equal only to itself.
"""

from __future__ import annotations

import hashlib
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.validation import is_concrete

__all__: list[str] = []  # private module


class Fixed:
    """A hashable, non-pytree holder of a value that is never trained.

    Attributes:
        raw: the value as given (arrays not copied).
    """

    __slots__ = ("_key", "raw")

    def __init__(self, value: Any):
        self.raw = value
        leaves, treedef = jax.tree_util.tree_flatten(value)
        if is_concrete(leaves):
            digest = hashlib.sha256()
            for leaf in leaves:
                array = np.asarray(leaf)
                digest.update(f"{array.dtype}{array.shape}".encode())
                digest.update(np.ascontiguousarray(array).tobytes())
            self._key = (treedef, digest.hexdigest())
        else:
            self._key = (treedef, id(self))

    @property
    def value(self) -> Any:
        """The value with gradients stopped on every array leaf."""
        return jax.tree_util.tree_map(jax.lax.stop_gradient, self.raw)

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Fixed) and self._key == other._key

    def __repr__(self) -> str:
        return f"Fixed({self.raw!r})"


@jax.custom_vjp
def projected_level(t: jax.Array) -> jax.Array:
    """The dial level ``clip(t, 0, 1)`` of a trainable ``t``, with a gradient that cannot die.

    Forward: the projection of ``t`` onto ``[0, 1]``. Backward: the projected
    gradient. The gradient ``∂L/∂t`` passes unchanged except when it points out
    of ``[0, 1]`` from the boundary or beyond (``t ≥ 1`` and a descent step would
    raise ``t``, or ``t ≤ 0`` and it would lower it), where it is 0. A ``t`` that
    momentum or weight decay pushed out of ``[0, 1]`` therefore still receives
    every gradient that brings it back (a plain ``clip`` gives it exactly 0).
    """
    return jnp.clip(t, 0.0, 1.0)


def _level_fwd(t):
    return projected_level(t), t


def _level_bwd(t, g):
    outward = ((t >= 1.0) & (g < 0.0)) | ((t <= 0.0) & (g > 0.0))
    return (jnp.where(outward, jnp.zeros_like(g), g),)


projected_level.defvjp(_level_fwd, _level_bwd)
