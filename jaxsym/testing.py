"""Test helpers for users' models: :func:`assert_equivariant`.

For unit tests of a model, in the spirit of ``e3nn_jax.utils.assert_equivariant``
and escnn's ``check_equivariance``: one call checks every element of a group on
a batch, fails with a readable report, and returns the per-element profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.group_base import check_argument_order
from jaxsym._src.validation import (
    check_batch,
    check_callable,
    check_model_output,
    check_nonnegative,
    check_scalar,
    float_dtype,
)
from jaxsym.defects import pointwise_defects
from jaxsym.groups import TransformationSet

__all__ = ["EquivarianceProfile", "assert_equivariant", "default_tolerance"]

MAX_REPORTED_ELEMENTS = 10


class EquivarianceProfile(NamedTuple):
    """Per-element equivariance defects of a model on a batch (docs/theory.md §2).

    Attributes:
        abs_defect: ``(|G|,)`` the sample sup ``max_b e_f(x_b, g)`` with
            ``e_f(x, g) = ‖f(ρ_X(g) x) − ρ_Y(g) f(x)‖``.
        rel_defect: ``(|G|,)`` ``abs_defect / scale``.
        worst_example: ``(|G|,)`` the index ``b`` attaining each maximum.
        scale: ``max_b ‖f(x_b)‖``, the output scale used by ``rtol``.
        atol: the absolute tolerance used.
        rtol: the relative tolerance used.
        tolerance: ``atol + rtol · scale``; the check is ``abs_defect ≤ tolerance``.
    """

    abs_defect: np.ndarray
    rel_defect: np.ndarray
    worst_example: np.ndarray
    scale: float
    atol: float
    rtol: float
    tolerance: float


def default_tolerance(dtype) -> float:
    """The default ``atol`` and ``rtol`` for outputs of ``dtype``: ``ε_mach^{3/4}``.

    ``ε_mach`` is the dtype's machine epsilon (``jnp.finfo(dtype).eps``), which
    gives about 1.8e-12 for float64, 6.4e-6 for float32, 5.5e-3 for float16 and
    2.6e-2 for bfloat16: a few hundred to a few thousand roundings of slack,
    growing with the rounding unit. Integer outputs use the default float.
    """
    dtype = jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.inexact):
        dtype = float_dtype(jnp.zeros((), dtype))
    return float(jnp.finfo(dtype).eps) ** 0.75


def _tolerance_argument(name: str, value, default: float) -> float:
    if value is None:
        return default
    check_scalar(name, value)
    check_nonnegative(name, value)
    return float(value)


def _nonfinite_as_inf(f: Callable) -> Callable:
    """``f`` with NaN/inf outputs replaced by ``+inf``, so that they cannot cancel."""

    def wrapped(z):
        y = f(z)
        if hasattr(y, "dtype") and jnp.issubdtype(y.dtype, jnp.inexact):
            return jnp.where(jnp.isfinite(y), y, jnp.inf)
        return y

    return wrapped


def _describe(group: TransformationSet, index: int) -> str:
    try:
        text = group.action.format_element(group.element(index))
    except Exception:  # a custom action's formatter must not hide the report
        text = "(element could not be formatted)"
    return f"element {index}: {text}"


def assert_equivariant(
    f: Callable[[jax.Array], jax.Array],
    x: jax.Array,
    group: TransformationSet,
    *,
    atol: float | None = None,
    rtol: float | None = None,
    chunk_size: int | None = None,
) -> EquivarianceProfile:
    """Assert ``max_b ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖ ≤ atol + rtol · scale`` for every g.

    ``scale = max_b ‖f(x_b)‖``. The defects are ``e_f(x_b, g)`` of
    docs/theory.md §2, from :func:`jaxsym.pointwise_defects`. Invariance is the
    case of a group with trivial output action (the default); call
    ``group.equivariant()`` to act on outputs too.

    Default tolerances follow the dtype of ``f``'s outputs:
    ``atol = rtol = ε_mach^{3/4}`` (see :func:`default_tolerance`; about 1.8e-12
    for float64, 6.4e-6 for float32, 5.5e-3 for float16, 2.6e-2 for bfloat16).

    Args:
        f: batched model ``(B, *input) -> (B, *output)``.
        x: a concrete batch ``(B, *input)`` (integer inputs are promoted to float).
        group: the elements to check.
        atol: absolute tolerance, finite and ≥ 0 (``None``: by dtype).
        rtol: tolerance relative to ``scale``, finite and ≥ 0 (``None``: by dtype).
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        The :class:`EquivarianceProfile` (per-element absolute and relative
        defects and worst examples), when every element passes.

    Raises:
        AssertionError: if some element exceeds the tolerance (the report lists
            up to 10 failing elements, worst first, each with its absolute and
            relative defect, the element itself and the worst example's index),
            or if ``f`` returns NaN or inf on ``x`` or on a transformed input.
        TypeError, ValueError: for invalid arguments (named).
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> x = jnp.array([[1.0, 2.0], [3.0, -1.0]])
    >>> radius = lambda x: jnp.linalg.norm(x, axis=1, keepdims=True)
    >>> profile = assert_equivariant(radius, x, groups.cyclic_rotations(8))
    >>> bool(profile.abs_defect.max() <= profile.tolerance)  # it raised nothing: it passed
    True
    """
    check_callable("f", f)
    check_argument_order("assert_equivariant(f, x, group)", x)
    x = check_batch(group, x)
    y = jax.jit(f)(x)  # f is traced by pointwise_defects below anyway
    check_model_output(y, x.shape[0])
    outputs = np.asarray(y)
    atol = _tolerance_argument("atol", atol, default_tolerance(outputs.dtype))
    rtol = _tolerance_argument("rtol", rtol, default_tolerance(outputs.dtype))
    if np.issubdtype(outputs.dtype, np.inexact) and not np.all(np.isfinite(outputs)):
        bad = np.flatnonzero(~np.all(np.isfinite(outputs.reshape(len(outputs), -1)), axis=1))
        raise AssertionError(
            f"f returned non-finite values (NaN or inf) on the original inputs x, at "
            f"{bad.size} of {len(outputs)} examples (first: {bad[:10].tolist()})."
        )
    try:
        # One compiled program instead of op-by-op dispatch; the concrete checks
        # of x and of f(x) are done above, the transformed outputs via the +inf map.
        wrapped = _nonfinite_as_inf(f)
        defects = np.asarray(
            jax.jit(lambda x, group: pointwise_defects(wrapped, x, group, chunk_size=chunk_size))(
                x, group
            )
        )
    except FloatingPointError as error:
        raise AssertionError(f"f returned non-finite values: {error}") from error
    if not np.all(np.isfinite(defects)):
        elements, examples = np.nonzero(~np.isfinite(defects))
        first = int(elements[0])
        raise AssertionError(
            f"f returned non-finite values (NaN or inf) on transformed inputs ρ_X(g) x_b "
            f"(or the defect overflowed {outputs.dtype}), for {elements.size} (element, "
            f"example) pairs under {group.name}; first at {_describe(group, first)}, "
            f"example {int(examples[0])}."
        )
    scale = float(
        np.max(np.linalg.norm(outputs.reshape(len(outputs), -1).astype(np.float64), axis=1))
    )
    abs_defect = defects.max(axis=1).astype(np.float64)
    worst_example = defects.argmax(axis=1)
    rel_defect = abs_defect / scale if scale > 0 else np.where(abs_defect > 0, np.inf, 0.0)
    tolerance = atol + rtol * scale
    profile = EquivarianceProfile(
        abs_defect, rel_defect, worst_example, scale, atol, rtol, float(tolerance)
    )
    failing = np.flatnonzero(abs_defect > tolerance)
    if failing.size:
        raise AssertionError(_failure_report(group, profile, failing, outputs.dtype))
    return profile


def _failure_report(group, profile: EquivarianceProfile, failing: np.ndarray, dtype) -> str:
    kind = "invariant" if group.is_invariant else "equivariant"
    order = failing[np.argsort(-profile.abs_defect[failing], kind="stable")]
    lines = [
        f"f is not {kind} under {group.name}: {failing.size} of {group.size} elements exceed "
        f"the tolerance {profile.tolerance:.3g} = atol {profile.atol:.3g} + rtol "
        f"{profile.rtol:.3g} × scale {profile.scale:.3g} ({dtype} outputs; scale = "
        f"max_b ‖f(x_b)‖; defect = max_b ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖)."
    ]
    for index in order[:MAX_REPORTED_ELEMENTS]:
        lines.append(
            f"  {_describe(group, int(index))}: defect {profile.abs_defect[index]:.4g} "
            f"(relative {profile.rel_defect[index]:.4g}), worst at example "
            f"{int(profile.worst_example[index])}"
        )
    if failing.size > MAX_REPORTED_ELEMENTS:
        lines.append(f"  ... and {failing.size - MAX_REPORTED_ELEMENTS} more failing elements.")
    return "\n".join(lines)
