"""Equivariance defects of a model: pointwise, per element, global; ε-stabilizers.

docs/theory.md §2: ``e_f(x, g) = ‖f(ρ_X(g) x) − ρ_Y(g) f(x)‖``, the per-element
profile ``E_f(g) = sup_x e_f(x, g)`` (estimated by a max over the batch: a lower
estimate of the sup over the domain), the global errors ``ee_∞``, ``ee_2`` and
``d_2``, and the ε-stabilizer ``Stab_ε(f) = {g : E_f(g) ≤ ε}``.
:func:`orbit_stats` gives ``f(x)``, ``Q_G f(x)``, ``d_2`` and ``ee_2²`` from one
pass of the model over the orbit (§2, §3, §7).

Non-finite values (NaN, inf):

* **Inputs.** A concrete ``x`` holding NaN or inf raises ``ValueError`` naming ``x``.
* **Model outputs, concrete values** (called outside ``jit``/``grad``/``vmap``):
  a NaN or inf in ``f(x)`` or in ``f(ρ_X(g) x)`` raises ``FloatingPointError``
  naming where (the original inputs, or the element index and the example).
  The check is one ``isfinite`` reduction on values already computed.
* **Traced values** (inside ``jit``, ``grad``, ``vmap``): nothing can be
  inspected; NaN and inf propagate into every result they touch (never to 0
  or a finite number). Check the result with ``jnp.isfinite``.
* **Overflow.** A finite model whose squared differences exceed the dtype's
  range (e.g. outputs of 1e30 in float32) reads ``inf``, never 0.

Exact zeros: wherever ``ρ_X(g) x_b`` is bitwise ``x_b`` (the identity, or an
element fixing that example), the defects read ``f(ρ_X(g) x_b)`` from the call
``f(x)`` rather than from the stacked orbit batch, whose rounding may differ by backend
and batch size. So the identity's defect is exactly 0 on every backend and in
every dtype, chunked or not, under ``jit``, ``vmap`` and ``grad`` (its gradient
is 0 too, see :func:`safe_sqrt`); an element that fixes ``x_b`` but acts on
the outputs still has the defect ``‖f(x_b) − ρ_Y(g) f(x_b)‖``.

Dtypes: integer inputs are promoted to a float dtype before a group acts on
them; squared defects and averages accumulate in at least float32 (bfloat16
and float16 models); float64 stays float64 (under ``jax_enable_x64``).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.orbits import (
    act_out_each,
    map_chunks,
    model_on_orbits,
    output_spec,
    plan_chunks,
    reuse_where_fixed,
    sum_chunks,
)
from jaxsym._src.types import Model
from jaxsym._src.validation import (
    accumulation_dtype,
    check_batch,
    check_callable,
    check_choice,
    check_chunk_size,
    check_nonnegative,
    check_positive,
    check_profile,
    check_weights,
    float_dtype,
    is_concrete,
    positive_int,
)
from jaxsym.groups import TransformationSet

__all__ = [
    "REDUCTIONS",
    "OrbitStats",
    "defect_profile",
    "distance_to_equivariance",
    "equivariance_error",
    "orbit_stats",
    "pointwise_defects",
    "safe_sqrt",
    "squared_defects",
    "stabilizer",
    "stabilizer_measure",
]

#: Reductions over examples (and elements): sample max, mean, root mean square.
REDUCTIONS = ("max", "mean", "rms")


def safe_sqrt(squares: jax.Array) -> jax.Array:
    """``√s`` for ``s ≥ 0``, 0 for ``s < 0``, NaN for NaN; gradient 0 (not NaN) at ``s ≤ 0``.

    Exact zeros (the identity element, invariant models) get gradient 0 instead
    of ``1/(2√0)``; NaN propagates (it is never read as a zero defect), and
    ``inf`` stays ``inf``. Negative values (rounding in differences of squares)
    read as 0.
    """
    positive = squares > 0
    root = jnp.sqrt(jnp.where(positive, squares, 1.0))
    return jnp.where(positive, root, jnp.where(jnp.isnan(squares), squares, 0.0))


# ----------------------------------------------------------------------------- internals


def _prepare(f: Model, x, group: TransformationSet, chunk_size):
    """Checks shared by every reduction: ``(x, output float dtype, accumulation dtype)``."""
    check_callable("f", f)
    check_chunk_size(chunk_size)
    x = check_batch(group, x)
    out_dtype = float_dtype(output_spec(f, group, x))
    return x, out_dtype, accumulation_dtype(out_dtype)


def _squares_and_flags(f, x, group, fx, plan, acc_dtype):
    """``(e_f(x_b, g)², whether f(ρ_X(g) x_b) is finite)``, both ``(|G|, B)``."""
    batch = x.shape[0]
    fx_acc = fx.astype(acc_dtype)

    def chunk(elements):
        moved, fixed = model_on_orbits(f, group, elements, x, with_fixed=True)  # (B, c, *out)
        moved = reuse_where_fixed(moved, fixed, fx)
        count = moved.shape[1]
        finite = jnp.all(jnp.isfinite(moved.reshape(batch, count, -1)), axis=-1)
        target = act_out_each(group, elements, jnp.broadcast_to(fx_acc[:, None], moved.shape))
        diff = (moved.astype(acc_dtype) - target).reshape(batch, count, -1)
        return jnp.sum(diff * diff, axis=-1).T, finite.T  # (c, B) each

    return map_chunks(chunk, group.elements, plan)


def _raise_on_nonfinite_outputs(group, fx, finite=None, element_index=None) -> None:
    """Concrete values only: raise if ``f(x)`` or some ``f(ρ_X(g) x)`` is NaN/inf."""
    if not is_concrete(fx) or (finite is not None and not is_concrete(finite)):
        return
    values = np.asarray(fx)
    batch = values.shape[0]
    if np.issubdtype(values.dtype, np.inexact):
        bad = np.flatnonzero(~np.all(np.isfinite(values.reshape(batch, -1)), axis=-1))
        if bad.size:
            raise FloatingPointError(
                f"f returned NaN or inf on the original inputs x: at {bad.size} of {batch} "
                f"examples (first: example {bad[0]}). No defect can be measured there; "
                f"x itself is finite."
            )
    if finite is None:
        return
    flags = np.asarray(finite)
    if not flags.all():
        g, b = (int(i) for i in np.argwhere(~flags)[0])
        elements = int(np.sum(~flags.all(axis=1)))
        index = g if element_index is None else int(np.asarray(element_index)[g])
        raise FloatingPointError(
            f"f returned NaN or inf on transformed inputs ρ_X(g) x: first at element "
            f"{index} of {group.name} on example {b} of x ({elements} of {flags.shape[0]} "
            f"elements affected), while f(x) is finite. No defect can be measured there."
        )


def _checked_squares(f, x, group, chunk_size):
    x, _, acc_dtype = _prepare(f, x, group, chunk_size)
    fx = f(x)
    plan = plan_chunks(chunk_size, f, group, x)
    squares, finite = _squares_and_flags(f, x, group, fx, plan, acc_dtype)
    if is_concrete(squares) and not np.all(np.isfinite(np.asarray(squares))):
        _raise_on_nonfinite_outputs(group, fx, finite)  # overflow alone reads inf
    return squares


# ----------------------------------------------------------------------------- public


def squared_defects(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``e_f(x_b, g)²`` for every element and example, shape ``(|G|, B)`` (§2).

    Accumulated in at least float32. Raises on non-finite concrete values (see
    the module docstring).
    """
    return _checked_squares(f, x, group, chunk_size)


def pointwise_defects(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``e_f(x_b, g) = ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖``, shape ``(|G|, B)`` (§2).

    Raises:
        ValueError: if ``x`` does not fit the group, or a concrete ``x`` holds NaN/inf.
        FloatingPointError: if concrete model outputs hold NaN/inf (module docstring).
        TypeError: if ``f`` returns a pytree, or ``group`` is not a group.
    """
    return safe_sqrt(_checked_squares(f, x, group, chunk_size))


def defect_profile(
    f: Model,
    x: jax.Array,
    group: TransformationSet,
    reduce: str = "max",
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """Per-element defect ``E_f(g)`` over the batch, shape ``(|G|,)`` (docs/theory.md §2).

    Args:
        f: batched model ``(B, *input) -> (B, *output)`` returning one array.
        x: batch of inputs ``(B, *input)``.
        group: the elements to test.
        reduce: ``"max"`` (sample estimate of ``sup_x e_f(x, g)``, a lower
            estimate of the sup over the domain), ``"mean"`` (``E_x e_f``) or
            ``"rms"`` (``(E_x e_f²)^{1/2}``).
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        ``(|G|,)`` non-negative values; the identity's entry is exactly 0 (module
        docstring, "Exact zeros").

    Raises:
        As :func:`pointwise_defects`; ``ValueError`` for an unknown ``reduce``.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> f = lambda x: x[:, :1]
    >>> x = jnp.array([[1.0, 0.0]])
    >>> profile = defect_profile(f, x, groups.cyclic_rotations(4))
    >>> [round(float(e), 4) for e in profile]  # |x₁(gx) − x₁(x)| per quarter turn
    [0.0, 1.0, 2.0, 1.0]
    """
    check_choice("reduce", reduce, REDUCTIONS)
    squares = _checked_squares(f, x, group, chunk_size)
    if reduce == "rms":
        return safe_sqrt(jnp.mean(squares, axis=1))
    defects = safe_sqrt(squares)
    return jnp.max(defects, axis=1) if reduce == "max" else jnp.mean(defects, axis=1)


def equivariance_error(
    f: Model,
    x: jax.Array,
    group: TransformationSet,
    reduce: str = "max",
    *,
    chunk_size: int | None = None,
) -> jax.Array:
    """Global equivariance error of ``f`` on the batch (docs/theory.md §2).

    ``reduce="max"``: ``ee_∞ = max_{g, b} e_f(x_b, g)`` (a lower estimate of the
    sup over the domain). ``reduce="rms"``: ``ee_2 = (mean_{g, b} e_f(x_b, g)²)^{1/2}``
    with uniform weights over the elements (the Haar measure of a finite group).
    ``reduce="mean"``: ``mean_{g, b} e_f(x_b, g)``. If μ is G-invariant,
    ``ee_2² = 2 d_2²`` (see :func:`distance_to_equivariance`).

    Returns:
        A scalar, differentiable with respect to parameters closed over by ``f``;
        ``inf`` if the squared defects overflow the dtype.

    Raises:
        As :func:`pointwise_defects`; ``ValueError`` for an unknown ``reduce``.
    """
    check_choice("reduce", reduce, REDUCTIONS)
    squares = _checked_squares(f, x, group, chunk_size)
    if reduce == "rms":
        return safe_sqrt(jnp.mean(squares))
    if reduce == "mean":
        return jnp.mean(safe_sqrt(squares))
    return safe_sqrt(jnp.max(squares))


class OrbitStats(NamedTuple):
    """What one pass of the model over the orbit gives (docs/theory.md §2, §3).

    Attributes:
        outputs: ``f(x)``, shape ``(B, *out)``, in the model's dtype.
        symmetrized: ``Q_G f(x) = mean_g ρ_Y(g)⁻¹ f(ρ_X(g) x)``, shape ``(B, *out)``
            (float, accumulated in at least float32, returned in the model's float dtype).
        d2: ``d_2 = (mean_b ‖f(x_b) − Q_G f(x_b)‖²)^{1/2}``, a scalar.
        ee2_sq: ``ee_2² = mean_{g, b} ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖²``, a scalar
            (the squared RMS defect).
    """

    outputs: jax.Array
    symmetrized: jax.Array
    d2: jax.Array
    ee2_sq: jax.Array


def orbit_stats(
    f: Model,
    x: jax.Array,
    group: TransformationSet,
    *,
    chunk_size: int | None = None,
    num_samples: int | None = None,
    key: jax.Array | None = None,
) -> OrbitStats:
    """``f(x)``, ``Q_G f(x)``, ``d_2`` and ``ee_2²`` from one pass over the orbit (§2, §3).

    The model runs once on the ``B`` inputs (for ``f(x)``) and once on the
    ``|G|·B`` transformed inputs, chunk by chunk (memory bounded by the chunk,
    as in :func:`jaxsym.symmetrize`): ``(|G| + 1)·B`` model rows in all. Both
    ``Q_G f = mean_g ρ_Y(g)⁻¹ f(gx)`` and the defects ``f(gx) − ρ_Y(g) f(x)``
    come from the same outputs ``f(gx)``; ``f(x)`` comes from its own call and,
    in the defects only, stands in for ``f(gx_b)`` wherever ``gx_b`` is bitwise
    ``x_b`` (so the identity's defect is exactly 0; nothing assumes which
    element it is). ``Q_G f`` averages the stacked outputs alone, so a model
    whose rows depend on the batch (e.g. :class:`jaxsym.training.BudgetModel`
    in training) is averaged over one batch.
    With a G-invariant μ (an orbit-closed sample), ``ee2_sq = 2·d2²`` (§2).
    Jit-able and differentiable with respect to parameters closed over by ``f``;
    the gradient of ``d2`` is 0, not NaN, at an exactly equivariant model.

    **Sampled elements** (``num_samples=k``, ``key``): for large groups, ``k``
    elements drawn uniformly with replacement replace the sum over G. Then

    * ``ee2_sq`` is an unbiased estimate of the exact ``ee_2²``, with variance
      ``Var_g(m(g))/k`` where ``m(g) = mean_b e_f(x_b, g)²`` and ``Var_g`` is the
      variance over ``g`` uniform on G;
    * ``symmetrized`` is an unbiased estimate of ``Q_G f(x)``, with per-example
      covariance trace ``V_b/k``, ``V_b = E_g ‖ρ_Y(g)⁻¹ f(g x_b) − Q_G f(x_b)‖²``;
    * ``d2`` is **biased** upward: ``E[d2²] = d_2² + mean_b V_b / k`` (and ``d2``
      itself, a square root, is biased too). Use ``ee2_sq / 2`` as an unbiased
      estimate of ``d_2²`` on orbit-closed samples.

    Args:
        f: batched model ``(B, *input) -> (B, *output)`` returning one array.
        x: batch of inputs ``(B, *input)``.
        group: the group (uniform Haar weights over its elements).
        chunk_size: group elements per model call (``None``: automatic).
        num_samples: ``None`` for the exact pass over all of G, or the number
            ``k`` of sampled elements.
        key: PRNG key for the sampled elements; required with ``num_samples``.

    Returns:
        :class:`OrbitStats` ``(outputs, symmetrized, d2, ee2_sq)``.

    Raises:
        ValueError: bad arguments, ``x`` not fitting the group, concrete NaN/inf in ``x``.
        FloatingPointError: concrete NaN/inf model outputs (module docstring).
        TypeError: ``f`` returning a pytree, ``group`` not a group.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> f = lambda x: x[:, :1]
    >>> stats = orbit_stats(f, jnp.array([[1.0, 0.0]]), groups.cyclic_rotations(4))
    >>> round(float(stats.d2), 4), round(float(stats.ee2_sq), 4)  # d_2 = |1 − 0|, mean of 0,1,4,1
    (1.0, 1.5)
    """
    x, out_dtype, acc_dtype = _prepare(f, x, group, chunk_size)
    element_index = None
    used = group
    if num_samples is not None:
        count = positive_int("num_samples", num_samples)
        if key is None:
            raise ValueError("orbit_stats: num_samples needs a PRNG key: key=jax.random.key(0).")
        element_index = jax.random.randint(key, (count,), 0, group.size)
        picked = jax.tree_util.tree_map(lambda leaf: leaf[element_index], group.elements)
        used = dataclasses.replace(group, elements=picked, is_group=False)
    elif key is not None:
        raise ValueError("orbit_stats: key is only used together with num_samples.")
    batch = x.shape[0]
    fx = f(x)
    plan = plan_chunks(chunk_size, f, used, x)
    fx_acc = fx.astype(acc_dtype)

    def chunk(elements):
        moved, fixed = model_on_orbits(f, used, elements, x, with_fixed=True)  # (B, c, *out)
        back = act_out_each(used, jax.vmap(used.inverse)(elements), moved.astype(acc_dtype))
        moved = reuse_where_fixed(moved, fixed, fx).astype(acc_dtype)
        target = act_out_each(used, elements, jnp.broadcast_to(fx_acc[:, None], moved.shape))
        diff = (moved - target).reshape(batch, moved.shape[1], -1)
        return back, jnp.sum(diff * diff, axis=-1)  # (B, c, *out), (B, c)

    total, squares = sum_chunks(chunk, used.elements, plan)
    symmetrized = total / used.size
    residual = (fx_acc - symmetrized).reshape(batch, -1)
    d2 = safe_sqrt(jnp.mean(jnp.sum(residual * residual, axis=-1)))
    ee2_sq = jnp.mean(squares) / used.size
    stats = OrbitStats(fx, symmetrized.astype(out_dtype), d2, ee2_sq)
    if is_concrete(stats) and not all(
        np.all(np.isfinite(np.asarray(v))) for v in (symmetrized, d2, ee2_sq)
    ):
        # Error path only: find where (a second pass), or let an overflow read inf.
        _raise_on_nonfinite_outputs(group, fx)
        _, finite = _squares_and_flags(f, x, used, fx, plan, acc_dtype)
        _raise_on_nonfinite_outputs(group, fx, finite, element_index)
    return stats


def distance_to_equivariance(
    f: Model, x: jax.Array, group: TransformationSet, *, chunk_size: int | None = None
) -> jax.Array:
    """``d_2(f) = ‖(I − Q_G) f‖_{L²(μ)}`` estimated on the batch (docs/theory.md §2).

    ``(mean_b ‖f(x_b) − Q_G f(x_b)‖²)^{1/2}``; the units of §5 and §8. One pass
    over the orbit (:func:`orbit_stats`).

    Raises:
        As :func:`orbit_stats`.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> x = jnp.array([[1.0, 0.0], [0.0, 2.0]])
    >>> d2 = distance_to_equivariance(lambda x: x[:, :1], x, groups.cyclic_rotations(4))
    >>> round(float(d2), 4)  # Q_G f = 0: the RMS of f, ((1 + 0) / 2)^{1/2}
    0.7071
    """
    return orbit_stats(f, x, group, chunk_size=chunk_size).d2


def stabilizer(profile: jax.Array, eps) -> jax.Array:
    """``Stab_ε = {g : E_f(g) ≤ ε}`` as a boolean mask of shape ``(|G|,)`` (§2).

    A NaN entry of the profile is never inside the stabilizer.

    Raises:
        ValueError: if ``eps`` is negative or not finite, or the profile is not a
            finite 1-D array (concrete values).
    """
    profile = check_profile(profile)
    check_nonnegative("eps", eps)
    return profile <= eps


def stabilizer_measure(profile: jax.Array, eps, temperature=None, weights=None) -> jax.Array:
    """Haar measure ``λ(Stab_ε)`` — the fraction of the group kept at tolerance ε (§2).

    With ``temperature τ > 0`` it returns the smooth surrogate
    ``Σ_g w_g σ((ε − E_f(g)) / τ)``, differentiable in the profile and in ε,
    which tends to the hard measure as ``τ → 0``.

    Args:
        profile: ``(|G|,)`` per-element defects.
        eps: tolerance ``ε ≥ 0``.
        temperature: ``None`` for the exact (hard) measure, or ``τ > 0``.
        weights: ``(|G|,)`` non-negative Haar weights with a positive sum;
            uniform if ``None``.

    Returns:
        A scalar in ``[0, 1]``.

    Raises:
        ValueError: ``eps < 0``, ``temperature ≤ 0``, bad weights (concrete values).
    """
    profile = check_profile(profile)
    check_nonnegative("eps", eps)
    if weights is None:
        weights = jnp.full(profile.shape, 1.0 / profile.shape[0], profile.dtype)
    else:
        weights = check_weights("weights", weights, profile.shape[0])
    if temperature is None:
        inside = (profile <= eps).astype(weights.dtype)
    else:
        check_positive("temperature", temperature)
        inside = jax.nn.sigmoid((eps - profile) / temperature)
    return jnp.sum(weights * inside)
