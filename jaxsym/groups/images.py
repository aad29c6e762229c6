"""Transformations of images: exact grid symmetries and interpolated rotations/shifts.

``rot90`` (C4) and ``flip_rot90`` (D4): elements are 2 × 2 integer orthogonal
matrices ``A`` acting on pixel coordinates centred on the grid. Pixel maps must
be left actions (docs/theory.md §1), so the image is moved as
``(A·x)(p) = x(A⁻¹ p)``; these are exact permutations of the pixels.

``image_rotations`` and ``image_translations``: continuous angles and sub-pixel
shifts by bilinear interpolation with zero padding. They are not exact group
actions on the pixel grid (docs/theory.md §11); :func:`interpolation_floor`
measures the defect the interpolation alone produces.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import check_batch, check_choice, float_dtype, is_concrete, positive_int
from jaxsym.groups._base import Action, TransformationSet, format_matrix
from jaxsym.groups.planar import rotation_range

__all__ = [
    "GridAction",
    "ImageRotationAction",
    "ImageTranslationAction",
    "bilinear_sample",
    "disc_mask",
    "flip_rot90",
    "image_rotations",
    "image_translations",
    "interpolation_floor",
    "invariant_probe",
    "rot90",
    "translation_grid",
]


@dataclasses.dataclass(frozen=True)
class GridAction(Action):
    """Integer orthogonal 2 × 2 matrices acting on square grids ``(H, W[, C])``."""

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        n = x.shape[0]
        doubled = 2 * jnp.arange(n, dtype=jnp.int32) - (n - 1)  # 2 × centred coordinate
        grid = jnp.stack(jnp.meshgrid(doubled, doubled, indexing="ij"))  # (2, n, n)
        source = jnp.einsum("ji,jhw->ihw", element.astype(jnp.int32), grid)  # Aᵀ p = A⁻¹ p
        rows, cols = (source + (n - 1)) // 2
        return x[rows, cols]

    def inverse(self, element):
        return jnp.swapaxes(element, -1, -2)

    def compose(self, a, b):
        return a @ b

    def check_example_shape(self, shape, name):
        if len(shape) not in (2, 3) or shape[0] != shape[1]:
            raise ValueError(
                f"{name}: rot90/flip groups act on square images of shape (H, H) or "
                f"(H, H, C); got one example of shape {shape}."
            )

    def describe(self) -> str:
        return "rot90/flips of square image grids"

    def format_element(self, element) -> str:
        return format_matrix(np.asarray(element, dtype=np.float64))


_QUARTER_TURN = np.array([[0, -1], [1, 0]], dtype=np.int32)
_FLIP = np.array([[1, 0], [0, -1]], dtype=np.int32)


def _turns() -> list[np.ndarray]:
    return [np.linalg.matrix_power(_QUARTER_TURN, k) for k in range(4)]


def rot90() -> TransformationSet:
    """C4 acting on square images by quarter turns (element 0 is the identity)."""
    return TransformationSet(
        elements=jnp.asarray(np.stack(_turns())), action=GridAction(), name="C4(rot90)"
    )


def flip_rot90() -> TransformationSet:
    """D4 acting on square images: four quarter turns, then the four with a flip."""
    turns = _turns()
    elements = np.stack(turns + [t @ _FLIP for t in turns])
    return TransformationSet(elements=jnp.asarray(elements), action=GridAction(), name="D4(img)")


# ----------------------------------------------------------------------------- interpolation


def _float_image(x: jax.Array, element_dtype) -> jax.Array:
    """``x`` in its float dtype (integer and boolean images promote to the elements' float)."""
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return x.astype(float_dtype(jnp.zeros((), element_dtype)))


def _coordinate_dtype(image_dtype) -> jnp.dtype:
    """Sample coordinates in at least float32 (half-precision images keep exact pixel indices)."""
    return jnp.promote_types(image_dtype, jnp.float32)


def _centred_grid(height: int, width: int, dtype) -> jax.Array:
    """Pixel centres ``p = (row − (H−1)/2, col − (W−1)/2)``, shape ``(2, H, W)``."""
    rows = jnp.arange(height, dtype=dtype) - (height - 1) / 2
    cols = jnp.arange(width, dtype=dtype) - (width - 1) / 2
    return jnp.stack(jnp.meshgrid(rows, cols, indexing="ij"))


def bilinear_sample(x: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Sample an image ``(H, W[, C])`` at fractional pixel indices, zero outside the grid.

    ``out[i, j] = Σ w · x[r, c]`` over the four pixels around ``(rows[i, j], cols[i, j])``
    with the bilinear weights; pixels outside ``[0, H) × [0, W)`` read as 0 (zero
    padding). At integer indices the weights are exactly 1 and 0, so the result is
    an exact copy of the pixel. Differentiable in ``x`` and in the indices (away
    from integer indices, where the interpolant has kinks).

    Args:
        x: one image ``(H, W)`` or ``(H, W, C)``, float.
        rows, cols: fractional pixel indices, any equal shapes ``S``.

    Returns:
        ``S`` (or ``S + (C,)``) in ``x``'s dtype.
    """
    height, width = x.shape[0], x.shape[1]
    r0, c0 = jnp.floor(rows), jnp.floor(cols)
    fr, fc = (rows - r0).astype(x.dtype), (cols - c0).astype(x.dtype)
    r0, c0 = r0.astype(jnp.int32), c0.astype(jnp.int32)
    total = None
    for dr, wr in ((0, 1 - fr), (1, fr)):
        for dc, wc in ((0, 1 - fc), (1, fc)):
            r, c = r0 + dr, c0 + dc
            inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            value = x[jnp.clip(r, 0, height - 1), jnp.clip(c, 0, width - 1)]
            weight = jnp.where(inside, wr * wc, 0).astype(x.dtype)
            term = value * (weight if x.ndim == 2 else weight[..., None])
            total = term if total is None else total + term
    return total


def _check_image(shape, name: str, what: str, *, square: bool) -> None:
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{name}: {what} act on images of shape (H, W) or (H, W, C); got one example "
            f"of shape {shape}."
        )
    if square and shape[0] != shape[1]:
        raise ValueError(
            f"{name}: {what} include quarter turns, which map an image grid onto itself only "
            f"when it is square (H == W); got one example of shape {shape}. Pad or crop the "
            f"images to a square, or use a set without ±90° (e.g. image_rotations(num, "
            f"max_angle=...) with max_angle < π/2)."
        )


QUARTER_TURN_TOLERANCE = 1e-5
"""Angles within this many radians of a multiple of 90° act as the exact grid quarter turn."""


def _wrap_angle(theta: jax.Array) -> jax.Array:
    """The angle in ``(−π, π]``; values within 1e-5 of ``−π`` map to ``π``."""
    two_pi = 2 * math.pi
    wrapped = theta - two_pi * jnp.round(theta / two_pi)
    return jnp.where(wrapped <= -math.pi + QUARTER_TURN_TOLERANCE, wrapped + two_pi, wrapped)


def _snapped_cos_sin(theta: jax.Array):
    """``(cos θ, sin θ)``, exactly 0 or ±1 at quarter turns (within the tolerance).

    The value is snapped; the derivative in ``θ`` is the unsnapped one (straight-through).
    """
    turns = theta / (math.pi / 2)
    snapped = jnp.abs(turns - jnp.round(turns)) * (math.pi / 2) < QUARTER_TURN_TOLERANCE
    out = []
    for value in (jnp.cos(theta), jnp.sin(theta)):
        exact = jax.lax.stop_gradient(jnp.round(value)) + (value - jax.lax.stop_gradient(value))
        out.append(jnp.where(snapped, exact, value))
    return out


@dataclasses.dataclass(frozen=True)
class ImageRotationAction(Action):
    """An angle ``θ`` rotates an image about its centre by bilinear interpolation.

    ``(θ·x)(p) = x(R_θ⁻¹ p)`` on centred ``(row, col)`` pixel coordinates ``p``,
    with ``R_θ = [[cos θ, −sin θ], [sin θ, cos θ]]`` (the convention of
    :func:`rot90`, so that ``θ = k·π/2`` is element ``k`` of ``rot90()``), zero
    padding outside the grid (docs/theory.md §11).

    Attributes:
        square: whether the set holds a quarter turn ``±π/2``, so that images must be square.
    """

    square: bool = True

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        element = jnp.asarray(element)
        x = _float_image(x, element.dtype)
        coord = _coordinate_dtype(x.dtype)
        theta = element.astype(coord)
        cos, sin = _snapped_cos_sin(theta)
        p = _centred_grid(x.shape[0], x.shape[1], coord)
        # Source R_θ⁻¹ p = R_θᵀ p.
        rows = cos * p[0] + sin * p[1] + (x.shape[0] - 1) / 2
        cols = -sin * p[0] + cos * p[1] + (x.shape[1] - 1) / 2
        return bilinear_sample(x, rows, cols)

    def inverse(self, element):
        return _wrap_angle(-element)

    def compose(self, a, b):
        return _wrap_angle(a + b)

    def check_example_shape(self, shape, name):
        _check_image(shape, name, "image rotations", square=self.square)

    def describe(self) -> str:
        return "rotations of images about their centre (bilinear, zero padding)"

    def format_element(self, element) -> str:
        return f"rotation by {math.degrees(float(np.asarray(element))):.4g}°"


@dataclasses.dataclass(frozen=True)
class ImageTranslationAction(Action):
    """A shift ``s = (dy, dx)`` in pixels moves an image: ``(s·x)(p) = x(p − s)``.

    Bilinear interpolation, zero padding outside the grid (docs/theory.md §11).
    Integer shifts move pixels exactly.
    """

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        element = jnp.asarray(element)
        x = _float_image(x, element.dtype)
        coord = _coordinate_dtype(x.dtype)
        shift = element.astype(coord)
        rows = jnp.arange(x.shape[0], dtype=coord)[:, None] - shift[0]
        cols = jnp.arange(x.shape[1], dtype=coord)[None, :] - shift[1]
        rows, cols = jnp.broadcast_arrays(rows, cols)
        return bilinear_sample(x, rows, cols)

    def inverse(self, element):
        return -element

    def compose(self, a, b):
        return a + b

    def check_example_shape(self, shape, name):
        _check_image(shape, name, "image translations", square=False)

    def describe(self) -> str:
        return "sub-pixel translations of images (bilinear, zero padding)"

    def format_element(self, element) -> str:
        dy, dx = (float(v) for v in np.asarray(element))
        return f"shift by (dy={dy:.4g}, dx={dx:.4g}) px"


def _check_angle(name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of radians; got {value!r:.80}.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of radians; got {value}.")
    return value


def image_rotations(num: int, *, max_angle: float | None = None) -> TransformationSet:
    """Rotations of images about their centre on a grid of angles (docs/theory.md §11).

    Elements are angles ``θ`` in radians (a float array, wrapped to ``(−π, π]``);
    ``θ`` acts on one image ``(H, W)`` or ``(H, W, C)`` by
    ``(θ·x)(p) = x(R_θ⁻¹ p)`` with bilinear interpolation about the image centre
    and **zero padding** outside the grid: content rotated in from outside the
    grid is 0, content rotated out of it is lost (corners). Angles within
    ``1e-5`` of a multiple of 90° act as the exact grid quarter turn, equal to
    the matching element of :func:`rot90` (θ = π/2 is ``rot90()`` element 1).

    The angles form a group under ``compose = θ_a + θ_b`` and
    ``inverse = −θ``, but the interpolated action is only approximately a
    homomorphism: ``act(θ_a + θ_b, x) ≈ act(θ_a, act(θ_b, x))`` up to the
    interpolation error (exact for quarter turns). So the set is flagged
    ``is_group`` only when it holds quarter turns alone (``num`` in 1, 2, 4 on
    the whole circle), where the action is exact; otherwise averaging over it is
    the approximate ``Q_ν`` of docs/theory.md §3. Measure how much the
    interpolation alone contributes with :func:`interpolation_floor`.

    Args:
        num: number of angles, at least 1.
        max_angle: ``None`` for the whole circle, angles ``2πk/num``,
            ``k = 0..num−1``; or a largest angle in ``[0, π]`` radians for the
            partial set ``θ_k = k·h``, ``k = −m..m`` (``num = 2m + 1`` odd), on the
            grid of :func:`jaxsym.groups.rotation_range` (identity, then
            ``+h..+m·h``, then ``−h..−m·h``).

    Returns:
        A transformation set named ``RotImg[num]`` (or ``RotImg[num,partial]``)
        whose element 0 is the identity ``θ = 0``. Images must be square when
        the set holds a quarter turn ``θ = ±π/2`` (which maps an ``H × W`` grid
        onto itself only when ``H == W``); otherwise any ``H × W`` works (the
        half turn of any grid is exact).

    Raises:
        ValueError: if ``num < 1``, ``max_angle`` is NaN/inf or outside ``[0, π]``,
            or ``num`` is even with ``max_angle``.
    """
    num = positive_int("num", num)
    if max_angle is None:
        angles = 2 * np.pi * np.arange(num) / num
        name, exact = f"RotImg[{num}]", num in (1, 2, 4)
    else:
        max_angle = _check_angle("max_angle", max_angle)
        partial = rotation_range(max_angle, num)  # validates max_angle and num
        matrices = np.asarray(partial.elements, dtype=np.float64)
        angles = np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0])
        name, exact = f"RotImg[{num},partial]", False
    angles = np.asarray(jax.device_get(_wrap_angle(jnp.asarray(angles))), dtype=np.float64)
    square = bool(np.any(np.abs(np.abs(angles) - np.pi / 2) < QUARTER_TURN_TOLERANCE))
    return TransformationSet(
        elements=jnp.asarray(angles),
        action=ImageRotationAction(square=square),
        is_group=exact,
        name=name,
    )


def image_translations(shifts) -> TransformationSet:
    """Sub-pixel translations of images ``(H, W[, C])`` (docs/theory.md §11).

    Element ``s = (dy, dx)`` (pixels; ``dy`` down the rows, ``dx`` along the
    columns) acts by ``(s·x)(p) = x(p − s)``, bilinear interpolation, zero
    padding: content shifted out of the grid is lost and zeros come in. Not a
    group (translations of a finite grid are not closed, and the set is
    whatever is given): averaging over it is the approximate ``Q_ν``.

    Args:
        shifts: ``(k, 2)`` finite shifts ``(dy, dx)``. The identity ``(0, 0)`` is
            element 0: if the first row is not ``(0, 0)``, it is prepended (so the
            set has ``k + 1`` elements); a ``(0, 0)`` anywhere else is an error.

    Returns:
        A transformation set named ``Shift[size]``.

    Raises:
        ValueError: if ``shifts`` is not ``(k, 2)``, is empty, holds NaN/inf, or
            repeats the identity.
    """
    try:
        shifts = np.asarray(shifts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"shifts must be a (k, 2) array of numbers; got {shifts!r:.80}.") from None
    if shifts.ndim != 2 or shifts.shape[1] != 2 or shifts.shape[0] == 0:
        raise ValueError(
            f"shifts must be a non-empty (k, 2) array of (dy, dx); got {shifts.shape}."
        )
    if not np.all(np.isfinite(shifts)):
        raise ValueError("shifts holds NaN or inf; every shift (dy, dx) must be finite.")
    zero = np.all(shifts == 0, axis=1)
    if not zero[0]:
        shifts = np.concatenate([np.zeros((1, 2)), shifts])
        zero = np.concatenate([[True], zero])
    if zero[1:].any():
        index = int(np.flatnonzero(zero[1:])[0]) + 1
        raise ValueError(
            f"shifts repeats the identity (0, 0) at row {index} (after the identity in row "
            f"0); element 0 is the identity, give it once, first or not at all."
        )
    return TransformationSet(
        elements=jnp.asarray(shifts),
        action=ImageTranslationAction(),
        is_group=False,
        name=f"Shift[{shifts.shape[0]}]",
    )


def translation_grid(num: int, max_shift: float = 1.0) -> TransformationSet:
    """:func:`image_translations` on the ``num × num`` grid ``[−max_shift, max_shift]²``.

    Args:
        num: odd number of shifts per axis (so that ``(0, 0)`` is on the grid).
        max_shift: largest shift per axis, in pixels, positive and finite.
    """
    num = positive_int("num", num)
    if num % 2 == 0:
        raise ValueError(f"num must be odd so that the grid holds the shift (0, 0); got {num}.")
    max_shift = _check_angle("max_shift", max_shift)
    if max_shift <= 0:
        raise ValueError(f"max_shift must be a positive number of pixels; got {max_shift}.")
    steps = np.linspace(-max_shift, max_shift, num) if num > 1 else np.zeros(1)
    grid = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
    grid = grid[np.argsort(np.abs(grid).sum(1), kind="stable")]  # (0, 0) first
    return image_translations(grid)


# ----------------------------------------------------------------------------- floor


def disc_mask(height: int, width: int) -> np.ndarray:
    """``(H, W)`` booleans: pixel centres within the inscribed disc, radius ``min(H, W)/2``."""
    rows = np.arange(height) - (height - 1) / 2
    cols = np.arange(width) - (width - 1) / 2
    radius = min(height, width) / 2
    return rows[:, None] ** 2 + cols[None, :] ** 2 <= radius**2


def invariant_probe(group: TransformationSet, shape) -> Callable[[jax.Array], jax.Array]:
    """The exactly invariant probe of :func:`interpolation_floor` for ``group``'s action.

    Rotations: the total intensity per channel inside the inscribed disc (a
    continuous rotation about the centre maps the disc onto itself). Other
    actions (translations, grids): the total intensity per channel of the whole
    image (exactly invariant under continuous translations of images whose
    content stays inside the grid; the zero padding shows up as a defect where
    it does not).

    Returns:
        A batched function ``(B, H, W[, C]) -> (B, C)`` (``(B, 1)`` for ``(H, W)``).
    """
    height, width = shape[0], shape[1]
    if isinstance(group.action, ImageRotationAction | GridAction):
        mask = disc_mask(height, width)
    else:
        mask = np.ones((height, width), bool)

    def probe(x: jax.Array) -> jax.Array:
        images = x if x.ndim == 4 else x[..., None]
        weights = jnp.asarray(mask, images.dtype)[None, :, :, None]
        return jnp.sum(images * weights, axis=(1, 2))

    return probe


def interpolation_floor(x: jax.Array, group: TransformationSet, reduce: str = "max") -> jax.Array:
    """Per-element relative defect of an exactly invariant probe: the interpolation floor.

    ``floor(g) = reduce_b ‖P(ρ_X(g) x_b) − P(x_b)‖ / ‖P(|x_b|)‖`` with ``P`` the
    probe of :func:`invariant_probe` (total intensity per channel inside the
    inscribed disc for rotations, of the whole image for translations); the
    denominator, the total absolute intensity there, equals ``‖P(x_b)‖`` for
    non-negative images and stays meaningful for signed ones. ``P`` is exactly
    invariant under the continuous transformations, so any defect it shows comes
    from the interpolation and the boundary rule alone (docs/theory.md §11).
    It is 0 (up to summation rounding) at exact quarter turns and integer shifts
    of content away from the border.

    Read a model's relative defect ``E_f(g) / ‖f(x)‖`` against it: where the
    two are of the same size, the measured defect cannot be told apart from the
    interpolation error; a model is "at the floor" there.

    Args:
        x: images ``(B, H, W)`` or ``(B, H, W, C)``, finite; examples that are 0
            in the probe's region (e.g. blank images) are skipped.
        group: the transformations, e.g. :func:`image_rotations`.
        reduce: ``"max"``, ``"mean"`` or ``"rms"`` over the examples.

    Returns:
        ``(|G|,)`` dimensionless relative defects, 0 at element 0.

    Raises:
        ValueError: if ``x`` does not fit the group, holds NaN/inf, is not a batch
            of images, or every probe value is 0.
    """
    check_choice("reduce", reduce, ("max", "mean", "rms"))
    x = check_batch(group, x)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"x: interpolation_floor needs images (B, H, W) or (B, H, W, C); got {x.shape}."
        )
    probe = invariant_probe(group, x.shape[1:])
    base = probe(jnp.abs(x))  # total absolute intensity in the probe's region
    base_norm = jnp.linalg.norm(base.reshape(base.shape[0], -1), axis=-1)
    keep = base_norm > 0
    if is_concrete(keep) and not bool(np.any(np.asarray(keep))):
        raise ValueError("x: every image is 0 in the probe's region (blank images); no floor.")
    # P is linear: P(ρ(g) x) − P(x) = P(ρ(g) x − x), exactly 0 where g fixes x.
    moved = jax.vmap(lambda g: probe(jax.vmap(group.act_in, in_axes=(None, 0))(g, x) - x))(
        group.elements
    )  # (|G|, B, C)
    diff = jnp.linalg.norm(moved.reshape(moved.shape[0], moved.shape[1], -1), axis=-1)
    relative = jnp.where(keep[None], diff / jnp.where(keep, base_norm, 1)[None], 0.0)
    count = jnp.sum(keep)
    if reduce == "max":
        return jnp.max(relative, axis=1)
    if reduce == "mean":
        return jnp.sum(relative, axis=1) / count
    return jnp.sqrt(jnp.sum(relative**2, axis=1) / count)
