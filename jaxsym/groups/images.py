"""Transformations of images: exact grid symmetries and interpolated rotations/shifts.

``rot90`` (C4) and ``flip_rot90`` (D4): elements are 2 × 2 integer orthogonal
matrices ``A`` acting on pixel coordinates centred on the grid. Pixel maps must
be left actions (docs/theory.md §1), so the image is moved as
``(A·x)(p) = x(A⁻¹ p)``; these are exact permutations of the pixels.

``image_rotations`` and ``image_translations``: continuous angles and sub-pixel
shifts by bilinear interpolation with zero padding. They are not exact group
actions on the pixel grid (docs/theory.md §11); :func:`interpolation_floor`
measures the defect the interpolation alone produces.

Layouts: every builder takes ``layout="channels_last"`` (one example is
``(H, W)`` or ``(H, W, C)``, as in flax, NHWC) or ``layout="channels_first"``
(``(C, H, W)`` or ``(H, W)``, as equinox's ``Conv2d``, NCHW). The layout is
stored on the action (a static field: part of the set's identity) and checked
on every example: a shape that looks like the other layout (a first axis of at
most :data:`LAYOUT_CHANNEL_LIMIT` before two larger ones, or the mirror image)
is refused with a message naming ``layout=``; it is never guessed.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.group_base import (
    DUPLICATE_SPACING,
    Action,
    TransformationSet,
    close_pair,
    format_matrix,
)
from jaxsym._src.validation import check_batch, check_choice, float_dtype, is_concrete, positive_int
from jaxsym.groups.planar import check_distinct_angles, rotation_range

__all__ = [
    "GridAction",
    "ImageRotationAction",
    "ImageTranslationAction",
    "bilinear_sample",
    "check_layout_shape",
    "disc_mask",
    "flip_rot90",
    "image_rotations",
    "image_translations",
    "interpolation_floor",
    "invariant_probe",
    "rot90",
    "translation_grid",
]

# ----------------------------------------------------------------------------- layouts

LAYOUTS = ("channels_last", "channels_first")
"""The image layouts: ``(H, W[, C])`` (flax, NHWC) and ``(C, H, W)`` (equinox ``Conv2d``, NCHW)."""

LAYOUT_CHANNEL_LIMIT = 4
"""A 3-D example ``(A, B, C)`` with ``A ≤ 4 < min(B, C)`` looks channels-first (and mirrored)."""

_PATTERN = {"channels_last": "(H, W, C)", "channels_first": "(C, H, W)"}
_FRAMEWORK = {"channels_last": "flax, NHWC", "channels_first": "equinox Conv2d, NCHW"}


class _LayoutError(ValueError):
    """An example that looks like the other layout; ``suggested_layout`` names that layout."""

    def __init__(self, message: str, suggested_layout: str, example_shape: tuple[int, ...]):
        super().__init__(message)
        self.suggested_layout = suggested_layout
        self.example_shape = example_shape


def _layout_words(layout: str) -> str:
    """``""`` for the default layout, else a note for :meth:`Action.describe`."""
    return ", channels-first (C, H, W)" if layout == "channels_first" else ""


def _layout_name(name: str, layout: str) -> str:
    """A set's name, with ``,channels_first`` before its closing bracket for that layout."""
    if layout != "channels_first":
        return name
    return f"{name[:-1]},channels_first{name[-1]}"


def _looks_like(shape: tuple[int, ...], layout: str) -> str | None:
    """The other layout when one 3-D example ``shape`` looks like it under ``layout``."""
    if len(shape) != 3:
        return None
    limit = LAYOUT_CHANNEL_LIMIT
    if layout == "channels_last" and shape[0] <= limit < min(shape[1], shape[2]):
        return "channels_first"
    if layout == "channels_first" and shape[2] <= limit < min(shape[0], shape[1]):
        return "channels_last"
    return None


def check_layout_shape(
    shape: tuple[int, ...],
    name: str,
    layout: str,
    *,
    subject: str = "image sets act on",
    fix: str = "build the set with layout={layout!r}",
) -> None:
    """Refuse one example whose shape looks like the other layout (never guess it).

    Shared by the image sets and :func:`jaxsym.lie.image_tangent`.

    Args:
        shape: one example's shape (without the batch axis).
        name: what the example is called in the message, e.g. ``"x (batch of shape …)"``.
        layout: the layout the caller expects, one of :data:`LAYOUTS`.
        subject: the message's words before the expected layout.
        fix: the remedy; ``{layout!r}`` is filled with the layout the shape looks like.

    Raises:
        ValueError: if the 3-D ``shape`` looks like the other layout (see
            :data:`LAYOUT_CHANNEL_LIMIT`); its ``suggested_layout`` attribute names that
            layout.
    """
    other = _looks_like(tuple(shape), layout)
    if other is None:
        return
    words = {key: key.replace("_", "-") for key in LAYOUTS}
    default = " by default" if layout == "channels_last" else f" (layout={layout!r})"
    where = "last" if other == "channels_first" else "first"
    raise _LayoutError(
        f"{name}: one example has shape {tuple(shape)}, which looks {words[other]} "
        f"{_PATTERN[other]}; {subject} {words[layout]} {_PATTERN[layout]}{default}: "
        f"{fix.format(layout=other)} ({_FRAMEWORK[other]}), or move the channel axis {where}.",
        other,
        tuple(shape),
    )


def _spatial(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """``(H, W)`` of one example ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``."""
    if layout == "channels_first" and len(shape) == 3:
        return shape[1], shape[2]
    return shape[0], shape[1]


def _channels_last(action: Callable[[jax.Array, jax.Array], jax.Array], layout: str):
    """``action(element, x)`` on channels-last images, wrapped for ``layout``.

    A channels-first example ``(C, H, W)`` has its channel axis moved last, is
    acted on, and moved back: the result is the channels-last result transposed.
    """

    def act(element, x: jax.Array) -> jax.Array:
        if layout != "channels_first" or x.ndim != 3:
            return action(element, x)
        return jnp.moveaxis(action(element, jnp.moveaxis(x, 0, -1)), -1, 0)

    return act


def _pattern(layout: str) -> str:
    return "(H, W) or (C, H, W)" if layout == "channels_first" else "(H, W) or (H, W, C)"


@dataclasses.dataclass(frozen=True)
class GridAction(Action):
    """Integer orthogonal 2 × 2 matrices acting on square grids ``(H, W[, C])``.

    Attributes:
        layout: ``"channels_last"`` (``(H, W[, C])``) or ``"channels_first"``
            (``(C, H, W)``; ``(H, W)`` too).
    """

    layout: str = "channels_last"

    def __post_init__(self):
        check_choice("layout", self.layout, LAYOUTS)

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        return _channels_last(self._act, self.layout)(element, x)

    def _act(self, element: jax.Array, x: jax.Array) -> jax.Array:
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
        square = "(H, H) or (C, H, H)" if self.layout == "channels_first" else "(H, H) or (H, H, C)"
        if len(shape) not in (2, 3):
            raise ValueError(
                f"{name}: rot90/flip groups act on square images of shape {square}; got one "
                f"example of shape {shape}."
            )
        check_layout_shape(shape, name, self.layout)
        height, width = _spatial(shape, self.layout)
        if height != width:
            raise ValueError(
                f"{name}: rot90/flip groups act on square images of shape {square} "
                f"(layout={self.layout!r}); got one example of shape {shape}."
            )

    def describe(self) -> str:
        return "rot90/flips of square image grids" + _layout_words(self.layout)

    def format_element(self, element) -> str:
        return format_matrix(np.asarray(element, dtype=np.float64))


_QUARTER_TURN = np.array([[0, -1], [1, 0]], dtype=np.int32)
_FLIP = np.array([[1, 0], [0, -1]], dtype=np.int32)


def _turns() -> list[np.ndarray]:
    return [np.linalg.matrix_power(_QUARTER_TURN, k) for k in range(4)]


def rot90(*, layout: str = "channels_last") -> TransformationSet:
    """C4 acting on square images by quarter turns (element 0 is the identity).

    Element ``k`` turns the image by ``k·90°``: ``(A·x)(p) = x(A⁻¹ p)`` with
    ``A = [[0, −1], [1, 0]]^k`` on centred ``(row, col)`` coordinates, an exact
    permutation of the pixels (element 1 equals ``np.rot90(x)`` on the
    ``(H, W)`` axes).

    Args:
        layout: ``"channels_last"``: one example is ``(H, H)`` or ``(H, H, C)``
            (flax, NHWC); ``"channels_first"``: ``(C, H, H)`` or ``(H, H)``
            (equinox ``Conv2d``, NCHW). Examples that look like the other layout
            are refused (see :data:`LAYOUT_CHANNEL_LIMIT`).

    Returns:
        A group named ``C4(rot90)`` (``C4(rot90,channels_first)``).

    Raises:
        ValueError: if ``layout`` is not one of :data:`LAYOUTS`.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> x = jnp.arange(18.0).reshape(2, 3, 3)  # one (C, H, W) image
    >>> c4 = groups.rot90(layout="channels_first")
    >>> bool((c4.act_in(c4.element(2), x) == x[:, ::-1, ::-1]).all())
    True
    """
    check_choice("layout", layout, LAYOUTS)
    return TransformationSet(
        elements=jnp.asarray(np.stack(_turns())),
        action=GridAction(layout=layout),
        name=_layout_name("C4(rot90)", layout),
    )


def flip_rot90(*, layout: str = "channels_last") -> TransformationSet:
    """D4 acting on square images: four quarter turns, then the four with a flip.

    Elements are ``A = R^k`` then ``R^k F`` with ``R = [[0, −1], [1, 0]]`` and
    ``F = diag(1, −1)`` (a left-right flip), acting by ``(A·x)(p) = x(A⁻¹ p)``.

    Args:
        layout: ``"channels_last"`` (``(H, H[, C])``) or ``"channels_first"``
            (``(C, H, H)`` or ``(H, H)``), as in :func:`rot90`.

    Returns:
        A group named ``D4(img)`` (``D4(img,channels_first)``).

    Raises:
        ValueError: if ``layout`` is not one of :data:`LAYOUTS`.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> x = jnp.arange(9.0).reshape(1, 3, 3)  # one (C, H, W) image
    >>> d4 = groups.flip_rot90(layout="channels_first")
    >>> bool((d4.act_in(d4.element(4), x) == x[:, :, ::-1]).all())
    True
    """
    check_choice("layout", layout, LAYOUTS)
    turns = _turns()
    elements = np.stack(turns + [t @ _FLIP for t in turns])
    return TransformationSet(
        elements=jnp.asarray(elements),
        action=GridAction(layout=layout),
        name=_layout_name("D4(img)", layout),
    )


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


def _check_image(
    shape, name: str, what: str, *, square: bool, layout: str = "channels_last"
) -> None:
    if len(shape) not in (2, 3):
        raise ValueError(
            f"{name}: {what} act on images of shape {_pattern(layout)} (layout={layout!r}); "
            f"got one example of shape {shape}."
        )
    check_layout_shape(shape, name, layout)
    height, width = _spatial(shape, layout)
    if square and height != width:
        raise ValueError(
            f"{name}: {what} include quarter turns, which map an image grid onto itself only "
            f"when it is square (H == W); got one example of shape {shape} "
            f"(layout={layout!r}, H = {height}, W = {width}). Pad or crop the "
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
        layout: ``"channels_last"`` (``(H, W[, C])``) or ``"channels_first"``
            (``(C, H, W)``; ``(H, W)`` too).
    """

    square: bool = True
    layout: str = "channels_last"

    def __post_init__(self):
        check_choice("layout", self.layout, LAYOUTS)

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        return _channels_last(self._act, self.layout)(element, x)

    def _act(self, element: jax.Array, x: jax.Array) -> jax.Array:
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
        _check_image(shape, name, "image rotations", square=self.square, layout=self.layout)

    def describe(self) -> str:
        return "rotations of images about their centre (bilinear, zero padding)" + _layout_words(
            self.layout
        )

    def format_element(self, element) -> str:
        return f"rotation by {math.degrees(float(np.asarray(element))):.4g}°"


@dataclasses.dataclass(frozen=True)
class ImageTranslationAction(Action):
    """A shift ``s = (dy, dx)`` in pixels moves an image: ``(s·x)(p) = x(p − s)``.

    Bilinear interpolation, zero padding outside the grid (docs/theory.md §11).
    Integer shifts move pixels exactly.

    Attributes:
        layout: ``"channels_last"`` (``(H, W[, C])``) or ``"channels_first"``
            (``(C, H, W)``; ``(H, W)`` too).
    """

    layout: str = "channels_last"

    def __post_init__(self):
        check_choice("layout", self.layout, LAYOUTS)

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        return _channels_last(self._act, self.layout)(element, x)

    def _act(self, element: jax.Array, x: jax.Array) -> jax.Array:
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
        _check_image(shape, name, "image translations", square=False, layout=self.layout)

    def describe(self) -> str:
        return "sub-pixel translations of images (bilinear, zero padding)" + _layout_words(
            self.layout
        )

    def format_element(self, element) -> str:
        dy, dx = (float(v) for v in np.asarray(element))
        return f"shift by (dy={dy:.4g}, dx={dx:.4g}) px"


def _check_number(name: str, value, unit: str) -> float:
    """``value`` as a finite float, or an error naming ``name`` and the ``unit``."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number of {unit}; got {value!r:.80}.") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of {unit}; got {value}.")
    return value


def _check_angle(name: str, value) -> float:
    """An angle: a finite number of radians."""
    return _check_number(name, value, "radians")


def _check_shift(name: str, value) -> float:
    """A shift: a finite number of pixels."""
    return _check_number(name, value, "pixels")


def image_rotations(
    num: int, *, max_angle: float | None = None, layout: str = "channels_last"
) -> TransformationSet:
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
        layout: ``"channels_last"``: one example is ``(H, W)`` or ``(H, W, C)``
            (flax, NHWC); ``"channels_first"``: ``(C, H, W)`` or ``(H, W)``
            (equinox ``Conv2d``, NCHW), acted on as the channels-last image
            transposed. Examples that look like the other layout are refused
            (see :data:`LAYOUT_CHANNEL_LIMIT`).

    Returns:
        A transformation set named ``RotImg[num]`` (or ``RotImg[num,partial]``;
        ``,channels_first`` is added inside the brackets for that layout)
        whose element 0 is the identity ``θ = 0``. Images must be square when
        the set holds a quarter turn ``θ = ±π/2`` (which maps an ``H × W`` grid
        onto itself only when ``H == W``); otherwise any ``H × W`` works (the
        half turn of any grid is exact).

    Raises:
        ValueError: if ``num < 1``, ``max_angle`` is NaN/inf or outside ``[0, π]``,
            ``num`` is even with ``max_angle``, two angles are one rotation in
            float32 (e.g. ``max_angle=1e-300``, or a huge ``num``), or ``layout``
            is not one of :data:`LAYOUTS`.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> rotations = groups.image_rotations(5, max_angle=0.4, layout="channels_first")
    >>> x = jnp.ones((4, 1, 9, 9))  # (B, C, H, W), e.g. for equinox's Conv2d
    >>> rotations.check_inputs(x)
    >>> rotations.act_in(rotations.element(1), x[0]).shape
    (1, 9, 9)
    """
    num = positive_int("num", num)
    check_choice("layout", layout, LAYOUTS)
    if max_angle is None:
        angles = 2 * np.pi * np.arange(num) / num
        check_distinct_angles(angles, f"num={num}", "use a smaller num")
        name, exact = f"RotImg[{num}]", num in (1, 2, 4)
    else:
        max_angle = _check_angle("max_angle", max_angle)
        partial = rotation_range(max_angle, num)  # validates max_angle, num, distinctness
        matrices = np.asarray(partial.elements, dtype=np.float64)
        angles = np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0])
        name, exact = f"RotImg[{num},partial]", False
    angles = np.asarray(jax.device_get(_wrap_angle(jnp.asarray(angles))), dtype=np.float64)
    square = bool(np.any(np.abs(np.abs(angles) - np.pi / 2) < QUARTER_TURN_TOLERANCE))
    return TransformationSet(
        elements=jnp.asarray(angles),
        action=ImageRotationAction(square=square, layout=layout),
        is_group=exact,
        name=_layout_name(name, layout),
    )


def image_translations(shifts, *, layout: str = "channels_last") -> TransformationSet:
    """Sub-pixel translations of images ``(H, W[, C])`` or ``(C, H, W)`` (docs/theory.md §11).

    Element ``s = (dy, dx)`` (pixels; ``dy`` down the rows, ``dx`` along the
    columns) acts by ``(s·x)(p) = x(p − s)``, bilinear interpolation, zero
    padding: content shifted out of the grid is lost and zeros come in. Not a
    group (translations of a finite grid are not closed, and the set is
    whatever is given): averaging over it is the approximate ``Q_ν``.

    Args:
        shifts: ``(k, 2)`` finite shifts ``(dy, dx)``. The identity ``(0, 0)`` is
            element 0: if the first row is not ``(0, 0)``, it is prepended (so the
            set has ``k + 1`` elements); a ``(0, 0)`` anywhere else is an error.
        layout: ``"channels_last"`` (``(H, W)`` or ``(H, W, C)``, flax) or
            ``"channels_first"`` (``(C, H, W)`` or ``(H, W)``, equinox
            ``Conv2d``); examples that look like the other layout are refused.

    Returns:
        A transformation set named ``Shift[size]`` (``Shift[size,channels_first]``).

    Raises:
        TypeError: if ``shifts`` is not an array of numbers.
        ValueError: if ``shifts`` is not ``(k, 2)``, is empty, holds NaN/inf,
            repeats the identity, holds one shift twice (equal in float32, or
            closer than 1e-6 relative), or ``layout`` is not one of
            :data:`LAYOUTS`. Rows are named 0-based, as given.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> shifts = groups.image_translations([[1, 0]], layout="channels_first")
    >>> x = jnp.zeros((1, 3, 3)).at[0, 0, 1].set(1.0)  # one (C, H, W) image
    >>> shifts.act_in(shifts.element(1), x)[0, 1].tolist()  # moved one row down
    [0.0, 1.0, 0.0]
    """
    check_choice("layout", layout, LAYOUTS)
    try:
        shifts = np.asarray(shifts, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"shifts must be a (k, 2) array of numbers (dy, dx) in pixels; got {shifts!r:.80}."
        ) from None
    if shifts.ndim != 2 or shifts.shape[1] != 2 or shifts.shape[0] == 0:
        raise ValueError(
            f"shifts must be a non-empty array of shape (k, 2), one row (dy, dx) per shift; "
            f"got shape {shifts.shape}."
        )
    finite = np.all(np.isfinite(shifts), axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"shifts row {row} of {len(shifts)} (0-based) holds NaN or inf, "
            f"{shifts[row].tolist()}: every shift (dy, dx) must be a finite number of pixels."
        )
    zero = np.all(shifts == 0, axis=1)
    if zero[1:].any():
        row = int(np.flatnonzero(zero[1:])[0]) + 1
        where = "after the identity in row 0" if zero[0] else "not first"
        raise ValueError(
            f"shifts repeats the identity (0, 0) in row {row} of {len(shifts)} (0-based), "
            f"{where}; element 0 is the identity: give it once, first, or not at all."
        )
    added = 0 if zero[0] else 1  # the identity is prepended as element 0
    if added:
        shifts = np.concatenate([np.zeros((1, 2)), shifts])
    pair = close_pair(shifts)
    if pair is not None:
        i, j = (index - added for index in pair)
        first = "the identity (0, 0) added as element 0" if i < 0 else f"row {i}"
        raise ValueError(
            f"shifts {first} and row {j} (0-based, {shifts[pair[0]].tolist()} and "
            f"{shifts[pair[1]].tolist()}) are the same shift in float32 (equal there, or "
            f"closer than {DUPLICATE_SPACING:g} relative); every shift must be distinct."
        )
    return TransformationSet(
        elements=jnp.asarray(shifts),
        action=ImageTranslationAction(layout=layout),
        is_group=False,
        name=_layout_name(f"Shift[{shifts.shape[0]}]", layout),
    )


def translation_grid(
    num: int, max_shift: float = 1.0, *, layout: str = "channels_last"
) -> TransformationSet:
    """:func:`image_translations` on the ``num × num`` grid ``[−max_shift, max_shift]²``.

    Args:
        num: odd number of shifts per axis (so that ``(0, 0)`` is on the grid).
        max_shift: largest shift per axis, in pixels, positive and finite.
        layout: ``"channels_last"`` (``(H, W[, C])``) or ``"channels_first"``
            (``(C, H, W)`` or ``(H, W)``), as in :func:`image_translations`.

    Raises:
        TypeError: if ``max_shift`` is not a number.
        ValueError: if ``num`` is not a positive odd integer, ``max_shift`` is
            not positive and finite, the steps are too fine to stay distinct in
            float32, or ``layout`` is not one of :data:`LAYOUTS`.

    >>> from jaxsym import groups
    >>> grid = groups.translation_grid(3, layout="channels_first")
    >>> grid.size, grid.name
    (9, 'Shift[9,channels_first]')
    """
    num = positive_int("num", num)
    check_choice("layout", layout, LAYOUTS)
    if num % 2 == 0:
        raise ValueError(f"num must be odd so that the grid holds the shift (0, 0); got {num}.")
    max_shift = _check_shift("max_shift", max_shift)
    if max_shift <= 0:
        raise ValueError(f"max_shift must be a positive number of pixels; got {max_shift}.")
    steps = np.linspace(-max_shift, max_shift, num) if num > 1 else np.zeros(1)
    pair = close_pair(steps)
    if pair is not None:
        raise ValueError(
            f"max_shift={max_shift:g} with num={num}: the steps {steps[pair[0]]:.6g} and "
            f"{steps[pair[1]]:.6g} px are the same shift in float32 (equal there, or closer "
            f"than {DUPLICATE_SPACING:g} relative); raise max_shift or lower num."
        )
    grid = np.stack(np.meshgrid(steps, steps, indexing="ij"), -1).reshape(-1, 2)
    grid = grid[np.argsort(np.abs(grid).sum(1), kind="stable")]  # (0, 0) first
    return image_translations(grid, layout=layout)


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

    The channel axis is the group's: ``(B, H, W[, C])`` for the default
    ``layout="channels_last"``, ``(B, C, H, W)`` for a set built with
    ``layout="channels_first"``; the probe values, ``(B, C)``, are the same
    for the same images in either layout.

    Args:
        group: the transformations (their action's ``layout`` is used).
        shape: one example's shape, ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``.

    Returns:
        A batched function ``(B, *shape) -> (B, C)`` (``(B, 1)`` for ``(H, W)``).

    Raises:
        ValueError: if ``shape`` is not one image's shape, or looks like the other layout.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> probe = groups.images.invariant_probe(groups.translation_grid(3), (5, 5, 2))
    >>> probe(jnp.ones((1, 5, 5, 2))).tolist()
    [[25.0, 25.0]]
    """
    shape = tuple(int(n) for n in shape)
    layout = getattr(group.action, "layout", "channels_last")
    if isinstance(group.action, ImageRotationAction | ImageTranslationAction | GridAction):
        group.action.check_example_shape(shape, "shape")
    elif len(shape) not in (2, 3):
        raise ValueError(f"shape: one image is (H, W) or (H, W, C); got {shape}.")
    height, width = _spatial(shape, layout)
    if isinstance(group.action, ImageRotationAction | GridAction):
        mask = disc_mask(height, width)
    else:
        mask = np.ones((height, width), bool)

    def probe(x: jax.Array) -> jax.Array:
        if x.ndim == 3:
            images = x[..., None]
        else:
            images = jnp.moveaxis(x, 1, -1) if layout == "channels_first" else x
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
        x: images ``(B, H, W)`` or ``(B, H, W, C)`` (``(B, C, H, W)`` for a set
            built with ``layout="channels_first"``: the layout is the group's),
            finite; examples that are 0 in the probe's region (e.g. blank
            images) are skipped.
        group: the transformations, e.g. :func:`image_rotations`.
        reduce: ``"max"``, ``"mean"`` or ``"rms"`` over the examples.

    Returns:
        ``(|G|,)`` dimensionless relative defects, 0 at element 0.

    Raises:
        ValueError: if ``x`` does not fit the group (including an example that
            looks like the other layout), holds NaN/inf, is not a batch of
            images, or every probe value is 0.

    >>> from jaxsym import groups
    >>> import jax.numpy as jnp
    >>> x = jnp.zeros((1, 1, 9, 9)).at[0, 0, 3:6, 3:6].set(1.0)  # (B, C, H, W)
    >>> floor = groups.interpolation_floor(x, groups.image_rotations(4, layout="channels_first"))
    >>> [round(float(v), 6) for v in floor]  # quarter turns are exact
    [0.0, 0.0, 0.0, 0.0]
    """
    check_choice("reduce", reduce, ("max", "mean", "rms"))
    x = check_batch(group, x)
    if x.ndim not in (3, 4):
        layout = getattr(group.action, "layout", "channels_last")
        images = (
            "(B, H, W) or (B, C, H, W)"
            if layout == "channels_first"
            else "(B, H, W) or (B, H, W, C)"
        )
        raise ValueError(f"x: interpolation_floor needs images {images}; got {x.shape}.")
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
