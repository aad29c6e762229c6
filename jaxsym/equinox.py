"""Equinox adapters: symmetrize or dial an equinox model without rewriting it (docs/theory.md §3).

``Symmetrized(model, group)`` is ``Q_G model`` and ``Dialed(model, group, t)``
is ``Q_G model + t (model − Q_G model)``, both equinox Modules (pytrees whose
array leaves, ``t`` included, train with ``eqx.filter_grad``/optax).

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

from jaxsym._validation import check_callable, check_group, check_unit_interval
from jaxsym.averaging import dial, symmetrize
from jaxsym.groups import TransformationSet

__all__ = ["Dialed", "Symmetrized"]


def _batched(model: Callable, batched: bool) -> Callable:
    return model if batched else jax.vmap(model)


class Symmetrized(eqx.Module):
    """``Q_G model``: ``x ↦ (1/|G|) Σ_g ρ_Y(g)⁻¹ model(ρ_X(g) x)`` on a batch (§3).

    Attributes:
        model: the equinox model (or any callable pytree).
        group: the group to average over.
        batched: whether ``model`` takes a batch (else it is vmapped).
        chunk_size: group elements per model call (``None``: automatic).
    """

    model: Callable
    group: TransformationSet
    batched: bool = eqx.field(static=True, default=False)
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        check_callable("model", self.model)
        check_group(self.group)

    def __call__(self, x: jax.Array) -> jax.Array:
        f = _batched(self.model, self.batched)
        return symmetrize(f, self.group, chunk_size=self.chunk_size)(x)


class Dialed(eqx.Module):
    """The dial ``Q_G model + t (model − Q_G model)`` on a batch (§3).

    ``t`` is an array leaf, so it trains with the model's parameters unless
    ``trainable_t=False`` (then its gradient is stopped). A trained ``t`` is
    clipped to ``[0, 1]`` when used.

    Attributes:
        model: the equinox model.
        group: the group.
        t: the level in ``[0, 1]``.
        trainable_t: whether ``t`` receives gradients.
        batched: whether ``model`` takes a batch.
        chunk_size: group elements per model call.
    """

    model: Callable
    group: TransformationSet
    t: jax.Array
    trainable_t: bool = eqx.field(static=True, default=True)
    batched: bool = eqx.field(static=True, default=False)
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        model: Callable,
        group: TransformationSet,
        t=1.0,
        *,
        trainable_t: bool = True,
        batched: bool = False,
        chunk_size: int | None = None,
    ):
        check_callable("model", model)
        check_group(group)
        check_unit_interval("t", t)
        self.model = model
        self.group = group
        self.t = jnp.asarray(t, jnp.float32)
        self.trainable_t = trainable_t
        self.batched = batched
        self.chunk_size = chunk_size

    def __call__(self, x: jax.Array) -> jax.Array:
        t = self.t if self.trainable_t else jax.lax.stop_gradient(self.t)
        f = _batched(self.model, self.batched)
        return dial(f, self.group, jnp.clip(t, 0.0, 1.0), chunk_size=self.chunk_size)(x)
