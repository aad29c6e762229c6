"""Group averaging (the Reynolds operator), the symmetry dial, partial averaging.

docs/theory.md §3: ``Q_ν f(x) = ∫ ρ_Y(g)⁻¹ f(ρ_X(g) x) dν(g)``. For a group with
its uniform (Haar) weights this is the exact projection ``Q_G``: equivariant and
idempotent. For a subset, a weighted set or a Monte Carlo sample it is ``Q_ν``,
only approximately equivariant.

Numerics: integer inputs are promoted to a float dtype before a group acts on
them; averages accumulate in at least float32 (a bfloat16 model is averaged in
float32 and its average returned in bfloat16); integer-valued models return
floats. The averaged models propagate NaN and inf from the model or the inputs
(a non-finite output anywhere on an orbit makes that example's average
non-finite); the public reductions in :mod:`jaxsym.defects` raise on them where
values are concrete.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym._src.orbits import act_out_each, model_on_orbits, output_spec, plan_chunks, sum_chunks
from jaxsym._src.types import Model
from jaxsym._src.validation import (
    accumulation_dtype,
    check_batch,
    check_callable,
    check_chunk_size,
    check_group,
    check_scalar,
    check_unit_interval,
    check_weights,
    float_dtype,
)
from jaxsym.groups import TransformationSet

__all__ = ["dial", "partial_average", "symmetrize"]


def _average(f: Model, group: TransformationSet, weights, chunk_size: int | None) -> Model:
    check_callable("f", f)
    check_group(group)
    check_chunk_size(chunk_size)
    if weights is not None:
        weights = check_weights("weights", weights, group.size)

    def averaged(x: jax.Array) -> jax.Array:
        x = check_batch(group, x)
        out_dtype = float_dtype(output_spec(f, group, x))  # integer outputs average to floats
        acc_dtype = accumulation_dtype(out_dtype)
        plan = plan_chunks(chunk_size, f, group, x)

        def back_to_frame(elements):
            y = model_on_orbits(f, group, elements, x).astype(acc_dtype)  # (B, c, *out)
            return act_out_each(group, jax.vmap(group.inverse)(elements), y)

        if weights is None:  # uniform: sum, then scale (cheaper than a weighted dot)
            total = sum_chunks(back_to_frame, group.elements, plan)
            return (total / group.size).astype(out_dtype)

        def weighted(piece):
            elements, chunk_weights = piece
            back = back_to_frame(elements)
            scale = chunk_weights.astype(acc_dtype).reshape((1, -1) + (1,) * (back.ndim - 2))
            return back * scale

        return sum_chunks(weighted, (group.elements, weights), plan).astype(out_dtype)

    return averaged


def symmetrize(f: Model, group: TransformationSet, *, chunk_size: int | None = None) -> Model:
    """The group-averaged model ``Q_G f`` (docs/theory.md §3).

    ``Q_G f(x) = (1/|G|) Σ_g ρ_Y(g)⁻¹ f(ρ_X(g) x)``. For a group (``is_group``)
    this is exactly G-equivariant and ``Q_G ∘ Q_G = Q_G``; for a subset or a
    Monte Carlo sample it is the average ``Q_ν`` over that set, which is not.

    Args:
        f: batched model, ``(B, *input) -> (B, *output)``, returning one array.
        group: the group (or transformation set) to average over.
        chunk_size: group elements per model call. ``None`` picks it at trace
            time from the model's intermediate bytes per example (a byte budget
            per call, at most 4096 rows; see ``jaxsym._src.orbits``), so memory stays
            bounded for large groups; results do not depend on it.

    Returns:
        The batched model ``Q_G f`` with the same signature as ``f``; its output
        dtype is the model's float dtype (floats for an integer-valued model).

    Raises:
        TypeError: if ``group`` is not a group, or (when called) ``f`` returns a pytree.
        ValueError: (when called) if ``x`` does not fit the group, holds NaN/inf
            (concrete ``x`` only), or the group's output action does not fit the
            model's output shape.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> f = lambda x: x[:, :1]  # the first coordinate: not rotation invariant
    >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> qf = symmetrize(f, groups.cyclic_rotations(4))
    >>> bool(jnp.allclose(qf(x), 0.0, atol=1e-6))  # its average over quarter turns is 0
    True
    """
    return _average(f, group, None, chunk_size)


def partial_average(
    f: Model,
    group: TransformationSet,
    weights=None,
    *,
    chunk_size: int | None = None,
) -> Model:
    """Average over a subset or weighted set of transformations: ``Q_ν f`` (§3).

    ``Q_ν f(x) = Σ_s ν_s ρ_Y(s)⁻¹ f(ρ_X(s) x)`` with ``ν`` the normalized
    ``weights`` (uniform if ``None``). Approximately, not exactly, equivariant.

    Args:
        f: batched model.
        group: the transformations, e.g. ``rotation_range(θ, num)`` or ``G.subset(...)``.
        weights: ``(group.size,)`` non-negative weights with a positive sum
            (any dtype; integer weights are used as floats).
        chunk_size: as in :func:`symmetrize`.

    Raises:
        ValueError: if concrete ``weights`` are negative, non-finite, sum to 0 or
            have the wrong shape. Traced weights are not checked unless the caller
            opts in with ``jax.experimental.checkify`` (see ``jaxsym._src.validation``).
    """
    return _average(f, group, weights, chunk_size)


def dial(f: Model, group: TransformationSet, t, *, chunk_size: int | None = None) -> Model:
    """The symmetry dial ``f_t = Q_G f + t (f − Q_G f)`` (docs/theory.md §3).

    Its pointwise defect is exactly ``t`` times that of ``f`` when ``group`` is a
    group: ``e_{f_t}(x, g) = t e_f(x, g)``. ``t`` may be a traced, trainable scalar.

    Args:
        f: batched model.
        group: group to average over.
        t: symmetry level, a scalar in ``[0, 1]``: 0 is ``Q_G f``, 1 is ``f``.
            A concrete ``t`` is checked here; a traced ``t`` is not (opt in with
            ``jax.experimental.checkify``).
        chunk_size: as in :func:`symmetrize`.

    Raises:
        ValueError: if ``t`` is not a scalar, or a concrete ``t`` is outside ``[0, 1]``.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> f = lambda x: x[:, :1]
    >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> half = dial(f, groups.cyclic_rotations(4), 0.5)
    >>> bool(jnp.allclose(half(x), 0.5 * f(x), atol=1e-6))  # Q_G f = 0, so f_t = t f
    True
    """
    check_scalar("t", t)
    check_unit_interval("t", t)
    averaged = symmetrize(f, group, chunk_size=chunk_size)

    def dialed(x: jax.Array) -> jax.Array:
        symmetric = averaged(x)
        level = jnp.asarray(t, symmetric.dtype)
        return symmetric + level * (f(check_batch(group, x)).astype(symmetric.dtype) - symmetric)

    return dialed
