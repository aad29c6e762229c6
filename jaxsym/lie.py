"""Lie derivatives: the infinitesimal equivariance defect, from one ``jax.jvp``.

docs/theory.md §10: for a one-parameter subgroup ``exp(tA)``,

``L_A f(x) = d/dt ρ_Y(exp(tA))⁻¹ f(ρ_X(exp(tA)) x) |_{t=0} = J_f(x) · dρ_X(A) x − dρ_Y(A) f(x)``,

computed with one forward-mode pass ``jax.jvp(f, (x,), (dρ_X(A) x,))``. Its norm
is the slope of the finite defect at the identity:
``e_f(x, exp(tA)) = |t| ‖L_A f(x)‖ + O(t²)``.

Reference: Gruver et al., "The Lie Derivative for Measuring Learned
Equivariance", ICLR 2023; Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym._src.types import Model
from jaxsym._src.validation import (
    as_float,
    check_callable,
    check_choice,
    check_finite,
    check_model_output,
)
from jaxsym.defects import safe_sqrt
from jaxsym.groups.images import LAYOUTS, check_layout_shape

__all__ = ["IMAGE_GENERATORS", "image_tangent", "lie_derivative"]


#: Named generators of transformations of images ``(B, H, W[, C])`` (or ``(B, C, H, W)``).
IMAGE_GENERATORS = ("rotation", "translate_x", "translate_y", "scale")


def _central_gradient(x: jax.Array, axis: int) -> jax.Array:
    """``(x[i+1] − x[i−1]) / 2`` along ``axis``, with zeros outside the grid."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    padded = jnp.pad(x, pad)
    size = x.shape[axis]
    ahead = jax.lax.slice_in_dim(padded, 2, size + 2, axis=axis)
    behind = jax.lax.slice_in_dim(padded, 0, size, axis=axis)
    return (ahead - behind) / 2


def image_tangent(x: jax.Array, generator: str, *, layout: str = "channels_last") -> jax.Array:
    """``dρ_X(A) x`` for images ``(B, H, W)``, ``(B, H, W, C)`` or ``(B, C, H, W)`` (§10).

    The generator moves pixel ``p`` (centred ``(row, col)`` coordinates) with
    velocity ``v(p)``; the image changes as ``−v · ∇x``, with ``∇x`` from central
    differences and zeros outside the grid (the zero padding of
    :func:`jaxsym.groups.image_rotations`). The velocities, in the conventions
    of :func:`~jaxsym.groups.image_rotations` and
    :func:`~jaxsym.groups.image_translations`:

    - ``"rotation"``: ``v(p) = (−p_col, p_row)`` (rotation by ``+t`` radians);
    - ``"translate_y"``: ``v = (1, 0)`` (a shift ``(dy, dx) = (t, 0)``);
    - ``"translate_x"``: ``v = (0, 1)`` (a shift ``(0, t)``);
    - ``"scale"``: ``v(p) = p`` (``x(e^{−t} p)``: magnification by ``e^t`` about the centre).

    Central differences make this equal to the central finite difference of the
    bilinear action for small ``t`` (a JVP through the interpolation would be
    one-sided at ``t = 0``, where sample points lie on the grid's kinks).

    Args:
        x: images ``(B, H, W)``, or ``(B, H, W, C)`` under ``layout="channels_last"``
            (flax, NHWC), ``(B, C, H, W)`` under ``layout="channels_first"``
            (equinox ``Conv2d``, NCHW).
        generator: one of :data:`IMAGE_GENERATORS`.
        layout: where the channel axis is; the channels-first tangent is the
            channels-last one transposed.

    Returns:
        The tangent, shaped like ``x``.

    Raises:
        ValueError: if ``generator`` or ``layout`` is unknown, or an example looks
            like the other layout (e.g. ``(1, 28, 28)`` under ``"channels_last"``).

    >>> import jax.numpy as jnp
    >>> from jaxsym.lie import image_tangent
    >>> x = jnp.zeros((1, 1, 5, 5)).at[0, 0, 2, 2].set(1.0)  # (B, C, H, W)
    >>> tangent = image_tangent(x, "translate_y", layout="channels_first")  # shift down
    >>> (tangent[0, 0, :, 2] + 0.0).tolist()  # the column through the pixel
    [0.0, -0.5, 0.0, 0.5, 0.0]
    """
    if not isinstance(generator, str) or generator not in IMAGE_GENERATORS:
        raise ValueError(
            f"generator must be one of {IMAGE_GENERATORS} (image_tangent takes names only; "
            f"lie_derivative also takes a (d, d) matrix); got {generator!r:.80}."
        )
    check_choice("layout", layout, LAYOUTS)
    if x.ndim == 4:
        check_layout_shape(
            tuple(x.shape[1:]),
            f"x (batch of shape {tuple(x.shape)})",
            layout,
            subject="image generators act on",
            fix="pass layout={layout!r}",
        )
    if layout == "channels_first" and x.ndim == 4:
        moved = image_tangent(jnp.moveaxis(x, 1, -1), generator)
        return jnp.moveaxis(moved, -1, 1)
    images = x if x.ndim == 4 else x[..., None]
    d_row, d_col = _central_gradient(images, 1), _central_gradient(images, 2)
    height, width = images.shape[1], images.shape[2]
    rows = (jnp.arange(height, dtype=images.dtype) - (height - 1) / 2)[None, :, None, None]
    cols = (jnp.arange(width, dtype=images.dtype) - (width - 1) / 2)[None, None, :, None]
    if generator == "rotation":
        tangent = cols * d_row - rows * d_col
    elif generator == "translate_y":
        tangent = -d_row
    elif generator == "translate_x":
        tangent = -d_col
    else:
        tangent = -(rows * d_row + cols * d_col)
    return tangent if x.ndim == 4 else tangent[..., 0]


def _matrix(name: str, value, dim: int, what: str) -> jax.Array:
    matrix = jnp.asarray(value)
    if matrix.shape != (dim, dim):
        raise ValueError(
            f"{name} must be a ({dim}, {dim}) matrix acting on the last axis of {what} "
            f"(size {dim}), or one of {IMAGE_GENERATORS} for images; got shape {matrix.shape}."
        )
    if not jnp.issubdtype(matrix.dtype, jnp.inexact):
        matrix = matrix.astype(jnp.result_type(float))
    check_finite(name, matrix)
    return matrix


def _check_generator(name: str, generator) -> None:
    """A generator is a name in :data:`IMAGE_GENERATORS` or an array-like ``(d, d)`` matrix."""
    valid = f"one of {IMAGE_GENERATORS} (images) or a (d, d) matrix (points)"
    if isinstance(generator, str):
        if generator not in IMAGE_GENERATORS:
            raise ValueError(f"{name} must be {valid}; got {generator!r}.")
        return
    if not (hasattr(generator, "shape") or isinstance(generator, list | tuple)):
        kind = type(generator).__name__
        raise TypeError(f"{name} must be {valid}; got {kind}: {generator!r:.80}.")


def _tangent(name: str, generator, z: jax.Array, what: str, layout: str) -> jax.Array:
    """``dρ(A) z`` for a named image generator or a matrix on the last axis."""
    if isinstance(generator, str):
        if z.ndim not in (3, 4):
            images = "(B, C, H, W)" if layout == "channels_first" else "(B, H, W, C)"
            raise ValueError(
                f"{name}={generator!r} acts on images (B, H, W) or {images}; {what} has "
                f"shape {z.shape}. Use a (d, d) matrix for points."
            )
        if z.ndim == 4 and generator in IMAGE_GENERATORS:
            check_layout_shape(
                tuple(z.shape[1:]),
                f"{what} (batch of shape {tuple(z.shape)})",
                layout,
                subject=f"{name}={generator!r} acts on",
                fix="pass layout={layout!r}",
            )
        return image_tangent(z, generator, layout=layout)
    if z.ndim < 2:
        raise ValueError(
            f"{what} must have a batch axis and a last axis for {name}; got {z.shape}."
        )
    matrix = _matrix(name, generator, z.shape[-1], what).astype(z.dtype)
    return jnp.matmul(z, matrix.T, precision=jax.lax.Precision.HIGHEST)


def lie_derivative(
    f: Model,
    x: jax.Array,
    generator,
    *,
    output_generator=None,
    layout: str = "channels_last",
) -> jax.Array:
    """Per-example norm of the Lie derivative ``‖L_A f(x_b)‖`` (docs/theory.md §10).

    ``L_A f(x) = d/dt ρ_Y(exp(tA))⁻¹ f(ρ_X(exp(tA)) x)`` at ``t = 0``
    ``= J_f(x) · dρ_X(A) x − dρ_Y(A) f(x)``, from one forward-mode
    pass (``jax.jvp``; its cost is in docs/benchmarks.md). For small ``t`` the finite defect is
    ``e_f(x, exp(tA)) = |t| ‖L_A f(x)‖ + O(t²)``; it is 0 for a model invariant
    (equivariant) under the whole one-parameter group. Pure and traceable: use
    it under ``jit``, ``vmap`` and ``grad`` (e.g. as a penalty; the gradient of
    the norm is 0, not NaN, where it vanishes). ``f`` should be differentiable
    at ``x``: at a kink (e.g. a ReLU whose pre-activation is exactly 0, as on a
    blank background in a network without biases) the JVP takes JAX's
    one-sided convention and differs from central finite differences.

    Args:
        f: batched model ``(B, *input) -> (B, *output)`` returning one array.
        x: a batch of inputs: images ``(B, H, W[, C])`` (``(B, C, H, W)`` with
            ``layout="channels_first"``) for a named generator, points
            ``(B, ..., d)`` for a matrix.
        generator: ``"rotation"``, ``"translate_x"``, ``"translate_y"`` or
            ``"scale"`` (images; see :func:`image_tangent` for the directions,
            which match :func:`jaxsym.groups.image_rotations` and
            :func:`jaxsym.groups.image_translations`), or a ``(d, d)`` matrix
            ``A`` (e.g. ``[[0, −1], [1, 0]]`` for planar rotations) acting on the
            last axis of points: ``dρ_X(A) x = x Aᵀ``.
        output_generator: ``None`` for invariance (trivial ``ρ_Y``); a
            ``(k, k)`` matrix ``dρ_Y(A)`` acting on the last axis of the output;
            or a named image generator for image-valued outputs
            ``(B, H', W'[, C'])`` (in the same ``layout``). For equivariance
            under the same matrix action pass the same ``A``.
        layout: for named image generators, where the channel axis of ``x``
            (and of image-valued outputs) is: ``"channels_last"`` (flax, NHWC)
            or ``"channels_first"`` (equinox ``Conv2d``, NCHW). A 4-D batch
            whose examples look like the other layout (e.g. ``(B, 1, 28, 28)``
            under the default) is refused, never guessed. Ignored for matrices.

    Returns:
        ``(B,)`` norms ``‖L_A f(x_b)‖`` in the model's float dtype.

    Raises:
        ValueError: if the generator does not fit ``x`` (wrong shape, unknown
            name, images needed, examples that look like the other ``layout``),
            the output generator does not fit ``f(x)``, ``layout`` is unknown, or
            a concrete ``x`` holds NaN/inf.
        TypeError: if ``f`` is not callable, returns a pytree or integer/boolean
            outputs (no derivative), or ``generator`` is neither a name nor a
            matrix (``None`` included).

    >>> import jax.numpy as jnp
    >>> import jaxsym
    >>> x = jnp.zeros((1, 1, 9, 9)).at[0, 0, 4, 2:7].set(1.0)  # (B, C, H, W)
    >>> total = lambda z: z.sum(axis=(1, 2, 3))[:, None]  # invariant to small shifts
    >>> jaxsym.lie_derivative(total, x, "translate_x", layout="channels_first").tolist()
    [0.0]
    """
    check_callable("f", f)
    _check_generator("generator", generator)
    if output_generator is not None:
        _check_generator("output_generator", output_generator)
    check_choice("layout", layout, LAYOUTS)
    x = as_float(jnp.asarray(x) if not hasattr(x, "shape") else x)
    check_finite("x", x)
    tangent = _tangent("generator", generator, x, "x", layout)
    out = jax.eval_shape(f, x)  # checked before the derivative is computed
    check_model_output(out, x.shape[0])
    if not jnp.issubdtype(out.dtype, jnp.inexact):
        raise TypeError(
            f"f must return floating-point outputs for a Lie derivative; it returns "
            f"{out.dtype} (e.g. an argmax or a comparison), which has no derivative: "
            "differentiate the scores (logits) instead."
        )
    y, dy = jax.jvp(f, (x,), (tangent.astype(x.dtype),))
    if output_generator is not None:
        dy = dy - _tangent(
            "output_generator", output_generator, as_float(y), "f(x)", layout
        ).astype(dy.dtype)
    flat = dy.reshape(dy.shape[0], -1)
    return safe_sqrt(jnp.sum(flat * flat, axis=-1))
