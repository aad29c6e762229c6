"""Equinox adapters: symmetrize or dial an equinox model without rewriting it (docs/theory.md §3).

``Symmetrized(model, group)`` is ``Q_G model`` and ``Dialed(model, group, t)``
is ``Q_G model + t (model − Q_G model)``, both equinox Modules.

What trains: the wrapped model's arrays, and ``t`` when ``trainable_t=True``.
What never trains: the group's elements and a fixed ``t``. They are held in
static fields (part of the module's structure, not leaves, gradients stopped),
so the standard recipe (``eqx.filter(model, eqx.is_array)``,
``eqx.filter_grad``, optax with or without weight decay) leaves them bitwise
unchanged, and integer elements (permutations, shifts) never reach optax.

A trainable ``t`` is stored as it is and used through its projection onto
``[0, 1]`` with a projected gradient (see ``Dialed``): it cannot get stuck
outside ``[0, 1]``.

What should train ``t``: not the training loss. Jointly with the weights, the
training loss prefers whatever level fits the training sample best (with an
expressive network, the least constrained one), so a ``t`` learned on it is an
overfitted level. Train ``t`` on a validation split while the weights train on
the training split, or fix it at :func:`jaxsym.choose_symmetry`'s ``t*``
(docs/guides/training.md, "A trainable t").

Both take a batch ``(B, *input)`` and return ``(B, *output)``, jaxsym's model
convention. The wrapped model maps one example (the equinox convention, e.g.
``eqx.nn.MLP``) unless ``batched=True``.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxsym._src.static import Fixed, projected_level
from jaxsym._src.validation import (
    check_callable,
    check_chunk_size,
    check_group,
    check_unit_interval,
)
from jaxsym.averaging import dial, symmetrize
from jaxsym.groups import TransformationSet

__all__ = ["Dialed", "Symmetrized"]


def _batched(model: Callable, batched: bool) -> Callable:
    return model if batched else jax.vmap(model)


class Symmetrized(eqx.Module):
    """``Q_G model``: ``x ↦ (1/|G|) Σ_g ρ_Y(g)⁻¹ model(ρ_X(g) x)`` on a batch (§3).

    Args:
        model: the equinox model (or any callable pytree); its arrays train.
        group: the group to average over; held fixed (a static field).
        batched: whether ``model`` takes a batch (else it is vmapped).
        chunk_size: group elements per model call (``None``: automatic).
    """

    model: Callable
    fixed_group: Fixed = eqx.field(static=True)
    batched: bool = eqx.field(static=True, default=False)
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        model: Callable,
        group: TransformationSet,
        *,
        batched: bool = False,
        chunk_size: int | None = None,
    ):
        check_callable("model", model)
        check_group(group)
        check_chunk_size(chunk_size)
        self.model = model
        self.fixed_group = Fixed(group)
        self.batched = bool(batched)
        self.chunk_size = chunk_size

    @property
    def group(self) -> TransformationSet:
        """The group (its elements with gradients stopped)."""
        return self.fixed_group.value

    def __call__(self, x: jax.Array) -> jax.Array:
        f = _batched(self.model, self.batched)
        return symmetrize(f, self.group, chunk_size=self.chunk_size)(x)


class Dialed(eqx.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` on a batch (§3).

    With ``trainable_t=False`` (the default) ``t`` is a fixed number in a static
    field: no gradient, no optimizer state, no weight decay. With
    ``trainable_t=True`` ``t`` is an array leaf (``t_param``) that receives a
    gradient with the model; train it on a validation loss, not the training loss
    (module docstring, docs/guides/training.md). It is stored as it is and used as
    ``clip(t, 0, 1)``; its gradient is the projected gradient (only a gradient
    pointing out of ``[0, 1]`` from the boundary or beyond is dropped), so a ``t``
    pushed out of ``[0, 1]`` by momentum or weight decay comes back as soon as the
    loss prefers a level inside.

    Args:
        model: the equinox model.
        group: the group; held fixed (a static field).
        t: the level in ``[0, 1]`` (the initial value if trainable).
        trainable_t: whether ``t`` trains.
        batched: whether ``model`` takes a batch.
        chunk_size: group elements per model call.
    """

    model: Callable
    t_param: jax.Array | None
    fixed_group: Fixed = eqx.field(static=True)
    fixed_t: float | None = eqx.field(static=True, default=None)
    batched: bool = eqx.field(static=True, default=False)
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        model: Callable,
        group: TransformationSet,
        t=1.0,
        *,
        trainable_t: bool = False,
        batched: bool = False,
        chunk_size: int | None = None,
    ):
        check_callable("model", model)
        check_group(group)
        check_unit_interval("t", t)
        check_chunk_size(chunk_size)
        self.model = model
        self.fixed_group = Fixed(group)
        if trainable_t:
            self.t_param, self.fixed_t = jnp.asarray(t, jnp.float32), None
        else:
            self.t_param, self.fixed_t = None, float(t)
        self.batched = bool(batched)
        self.chunk_size = chunk_size

    @property
    def trainable_t(self) -> bool:
        """Whether ``t`` trains."""
        return self.fixed_t is None

    @property
    def group(self) -> TransformationSet:
        """The group (its elements with gradients stopped)."""
        return self.fixed_group.value

    @property
    def t(self) -> jax.Array:
        """The stored ``t`` (a trainable one may lie outside ``[0, 1]``; see :attr:`level`)."""
        return self.t_param if self.trainable_t else jnp.asarray(self.fixed_t, jnp.float32)

    @property
    def level(self) -> jax.Array:
        """The level in use, ``clip(t, 0, 1)``."""
        return projected_level(self.t) if self.trainable_t else self.t

    def __call__(self, x: jax.Array) -> jax.Array:
        f = _batched(self.model, self.batched)
        return dial(f, self.group, self.level, chunk_size=self.chunk_size)(x)
