"""Equivariance defects of a model: pointwise, per element, global; ε-stabilizers.

theory.md §2: ``e_f(x, g) = ‖f(ρ_X(g) x) − ρ_Y(g) f(x)‖``, the per-element
profile ``E_f(g) = sup_x e_f(x, g)`` (estimated by a max over the batch: a lower
estimate of the sup over the domain), and the ε-stabilizer
``Stab_ε(f) = {g : E_f(g) ≤ ε}``.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from jaxsym._orbits import act_out_each, map_chunks, model_on_orbits, plan_chunks
from jaxsym._validation import (
    check_batch,
    check_choice,
    check_chunk_size,
    check_model_output,
    check_nonnegative,
    check_positive,
    check_profile,
)
from jaxsym.averaging import symmetrize
from jaxsym.groups import TransformationSet

Model = Callable[[jax.Array], jax.Array]
REDUCTIONS = ("max", "mean", "rms")
ERROR_KINDS = ("sup", "rms")


def safe_sqrt(squares: jax.Array) -> jax.Array:
    """``√max(s, 0)`` with gradient 0 (not NaN) where ``s ≤ 0``, e.g. at the identity."""
    positive = squares > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, squares, 1.0)), 0.0)


def squared_defects(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``e_f(x_b, g)²`` for every element and example, shape ``(|G|, B)``."""
    check_chunk_size(chunk_size)
    x = check_batch(group, x)
    fx = f(x)
    check_model_output(fx, x.shape[0])
    plan = plan_chunks(chunk_size, f, group, x)

    def chunk_squares(elements):
        moved = model_on_orbits(f, group, elements, x)  # (B, c, *out)
        count = moved.shape[1]
        target = act_out_each(group, elements, jnp.broadcast_to(fx[:, None], moved.shape))
        diff = (moved - target).reshape(x.shape[0], count, -1)
        return jnp.sum(diff * diff, axis=-1).T  # (c, B)

    return map_chunks(chunk_squares, group.elements, plan)


def pointwise_defects(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``e_f(x_b, g) = ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖``, shape ``(|G|, B)`` (§2)."""
    return safe_sqrt(squared_defects(f, x, group, chunk_size=chunk_size))


def defect_profile(
    f: Model,
    x: jax.Array,
    group: TransformationSet,
    reduce: str = "max",
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """Per-element defect ``E_f(g)`` over the batch, shape ``(|G|,)`` (theory.md §2).

    Args:
        f: batched model ``(B, *input) -> (B, *output)``.
        x: batch of inputs ``(B, *input)``.
        group: the elements to test.
        reduce: ``"max"`` (sample estimate of ``sup_x e_f(x, g)``, a lower
            estimate of the sup over the domain), ``"mean"`` (``E_x e_f``) or
            ``"rms"`` (``(E_x e_f²)^{1/2}``).
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        ``(|G|,)`` non-negative values; the identity's entry is 0.
    """
    check_choice("reduce", reduce, REDUCTIONS)
    squares = squared_defects(f, x, group, chunk_size=chunk_size)
    if reduce == "rms":
        return safe_sqrt(jnp.mean(squares, axis=1))
    defects = safe_sqrt(squares)
    return jnp.max(defects, axis=1) if reduce == "max" else jnp.mean(defects, axis=1)


def equivariance_error(
    f: Model,
    x: jax.Array,
    group: TransformationSet,
    kind: str = "sup",
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """Global equivariance error of ``f`` on the batch (theory.md §2).

    ``kind="sup"``: ``ee_∞ = max_{g, b} e_f(x_b, g)``. ``kind="rms"``:
    ``ee_2 = (mean_{g, b} e_f(x_b, g)²)^{1/2}`` with uniform weights over the
    elements (the Haar measure of a finite group). If μ is G-invariant,
    ``ee_2² = 2 d_2²`` (see :func:`distance_to_equivariance`).

    Returns:
        A scalar, differentiable with respect to parameters closed over by ``f``.
    """
    check_choice("kind", kind, ERROR_KINDS)
    squares = squared_defects(f, x, group, chunk_size=chunk_size)
    if kind == "rms":
        return safe_sqrt(jnp.mean(squares))
    return safe_sqrt(jnp.max(squares))


def distance_to_equivariance(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``d_2(f) = ‖(I − Q_G) f‖_{L²(μ)}`` estimated on the batch (theory.md §2).

    ``(mean_b ‖f(x_b) − Q_G f(x_b)‖²)^{1/2}``; the units of §5 and §8.
    """
    x = check_batch(group, x)
    residual = f(x) - symmetrize(f, group, chunk_size=chunk_size)(x)
    return safe_sqrt(jnp.mean(jnp.sum(residual.reshape(x.shape[0], -1) ** 2, axis=-1)))


def stabilizer(profile: jax.Array, eps) -> jax.Array:
    """``Stab_ε = {g : E_f(g) ≤ ε}`` as a boolean mask of shape ``(|G|,)`` (§2).

    Raises:
        ValueError: if ``eps`` is negative or the profile is not 1-D.
    """
    profile = check_profile(profile)
    check_nonnegative("eps", eps)
    return profile <= eps


def stabilizer_measure(profile: jax.Array, eps, temperature=None, weights=None) -> jax.Array:
    """Haar measure ``λ(Stab_ε)`` — the fraction of the group kept at tolerance ε.

    With ``temperature τ > 0`` it returns the smooth surrogate
    ``Σ_g w_g σ((ε − E_f(g)) / τ)``, differentiable in the profile and in ε,
    which tends to the hard measure as ``τ → 0``.

    Args:
        profile: ``(|G|,)`` per-element defects.
        eps: tolerance ``ε ≥ 0``.
        temperature: ``None`` for the exact (hard) measure, or ``τ > 0``.
        weights: ``(|G|,)`` Haar weights; uniform if ``None``.

    Returns:
        A scalar in ``[0, 1]``.
    """
    profile = check_profile(profile)
    check_nonnegative("eps", eps)
    if weights is None:
        weights = jnp.full(profile.shape, 1.0 / profile.shape[0])
    else:
        weights = jnp.asarray(weights)
        if weights.shape != profile.shape:
            raise ValueError(f"weights must have shape {profile.shape}; got {weights.shape}.")
        weights = weights / jnp.sum(weights)
    if temperature is None:
        inside = (profile <= eps).astype(weights.dtype)
    else:
        check_positive("temperature", temperature)
        inside = jax.nn.sigmoid((eps - profile) / temperature)
    return jnp.sum(weights * inside)
