"""Planar rotation groups acting on points or point sets ``(..., 2)``.

C_n (also SO(2) discretized by its evenly spaced subgroup: exact averaging only
for functions band-limited below ``n``), D_n, and the partial-symmetry subset
"rotations by at most θ" (docs/theory.md §1, §3).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from jaxsym._src.group_base import DUPLICATE_SPACING, MatrixAction, TransformationSet, close_pair
from jaxsym._src.validation import positive_int

__all__ = [
    "check_distinct_angles",
    "cyclic_rotations",
    "dihedral",
    "rotation_matrices",
    "rotation_range",
]


def rotation_matrices(angles) -> np.ndarray:
    """Rotation matrices ``[[cos, −sin], [sin, cos]]``, shape ``(len(angles), 2, 2)``."""
    angles = np.asarray(angles, dtype=np.float64)
    cos, sin = np.cos(angles), np.sin(angles)
    return np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)


def check_distinct_angles(angles, argument: str, remedy: str) -> None:
    """Refuse a grid of angles holding one rotation twice in the working dtype (float32).

    Two angles are one rotation when their rotations are equal after the cast to
    float32, or when they lie closer on the circle than
    ``DUPLICATE_SPACING × max(1, largest |angle|)`` radians.

    Args:
        angles: the ``(k,)`` angles in radians, in element order.
        argument: the arguments that made them, for the message (e.g. ``"n=3000000"``).
        remedy: what to change, for the message.

    Raises:
        ValueError: naming ``argument`` and the two elements that coincide.
    """
    angles = np.asarray(angles, np.float64)
    wrapped = angles - 2 * math.pi * np.round(angles / (2 * math.pi))  # [−π, π]
    pair = close_pair(wrapped, period=2 * math.pi)
    if pair is None:
        return
    i, j = pair
    degrees = np.degrees(wrapped)
    raise ValueError(
        f"{argument}: elements {i} and {j} (rotations by {degrees[i]:.6g}° and "
        f"{degrees[j]:.6g}°) are the same rotation in float32 (equal there, or closer than "
        f"{DUPLICATE_SPACING:g} relative); every element of a set must be distinct: {remedy}."
    )


def _planar(matrices: np.ndarray, *, is_group: bool, name: str) -> TransformationSet:
    # Built in float64 and stored in JAX's default float: float32, or float64
    # under ``jax_enable_x64`` (the dtype is fixed when the group is built).
    return TransformationSet(
        elements=jnp.asarray(np.asarray(matrices, dtype=np.float64)),
        action=MatrixAction(2),
        is_group=is_group,
        name=name,
    )


def cyclic_rotations(n: int) -> TransformationSet:
    """C_n: rotations by ``2πk/n``, ``k = 0..n−1``, acting on ``(..., 2)``.

    Args:
        n: group order, at least 1.

    Returns:
        A group with elements of shape ``(n, 2, 2)``; element 0 is the identity.

    Raises:
        ValueError: if ``n`` is so large that two rotations are one in float32
            (:func:`check_distinct_angles`).
    """
    n = positive_int("n", n)
    angles = 2 * np.pi * np.arange(n) / n
    check_distinct_angles(angles, f"n={n}", "use a smaller n")
    return _planar(rotation_matrices(angles), is_group=True, name=f"C{n}")


def dihedral(n: int) -> TransformationSet:
    """D_n: the ``n`` rotations of C_n and the ``n`` reflections ``R_k F``.

    ``F = diag(1, −1)`` reflects across the first axis. Acts on ``(..., 2)``.

    Args:
        n: number of rotations, at least 1 (``|D_n| = 2n``).

    Returns:
        A group with elements of shape ``(2n, 2, 2)``; element 0 is the identity.

    Raises:
        ValueError: if ``n`` is so large that two rotations are one in float32
            (:func:`check_distinct_angles`).
    """
    n = positive_int("n", n)
    angles = 2 * np.pi * np.arange(n) / n
    check_distinct_angles(angles, f"n={n}", "use a smaller n")
    rotations = rotation_matrices(angles)
    reflections = rotations @ np.diag([1.0, -1.0])
    return _planar(np.concatenate([rotations, reflections]), is_group=True, name=f"D{n}")


def rotation_range(max_angle: float, num: int) -> TransformationSet:
    """The subset ``{R_θ : |θ| ≤ max_angle}`` of SO(2), on an even grid of angles.

    Not a group (partial symmetry, docs/theory.md §3): averaging over it is
    ``Q_ν``, only approximately equivariant.

    The angles are ``θ_k = k·h`` for ``k = −m..m`` (``num = 2m + 1``), with step
    ``h = min(max_angle / m, 2π / num)``. The cap keeps the grid from wrapping
    around the circle: with ``h = max_angle / m`` the two ends ``±max_angle``
    would lie closer to each other (across ``±π``) than the step, and at
    ``max_angle = π`` they would be the same rotation twice. Once
    ``max_angle ≥ 2π·m / num`` the grid is therefore the evenly spaced ``C_num``
    (every rotation in it has ``|θ| ≤ max_angle``), which is a group and is
    flagged as one. So all ``num`` elements are distinct, at least ``h`` apart
    on the circle (``max_angle = 0`` is accepted only with ``num = 1``), and a
    step too small to keep them distinct in float32 is refused.

    Args:
        max_angle: largest rotation angle in radians, in ``[0, π]``.
        num: number of angles, odd so that the grid is symmetric and holds the
            identity (element 0), then ``+h, …, +m·h``, then ``−h, …, −m·h``.

    Returns:
        A transformation set named ``Rot[num]`` (the name holds no angle, so
        sets that differ only in ``max_angle`` share one ``jit`` trace).

    Raises:
        TypeError: if ``max_angle`` is not a number.
        ValueError: if ``max_angle`` is outside ``[0, π]``, ``num`` is even, or
            the step ``h`` is so small that two angles are one rotation in
            float32 (e.g. ``max_angle=1e-300``; :func:`check_distinct_angles`).
    """
    num = positive_int("num", num)
    try:
        max_angle = float(max_angle)
    except (TypeError, ValueError):
        raise TypeError(f"max_angle must be a number of radians; got {max_angle!r:.80}.") from None
    if not math.isfinite(max_angle) or not 0.0 <= max_angle <= math.pi:
        raise ValueError(f"max_angle must be in [0, π] radians; got {max_angle}.")
    if num % 2 == 0:
        raise ValueError(
            f"num must be odd so that the grid of angles is symmetric and contains "
            f"the identity; got {num}."
        )
    half_count = num // 2
    if half_count == 0:
        return _planar(rotation_matrices([0.0]), is_group=True, name="Rot[1]")
    if max_angle == 0.0:
        raise ValueError(
            f"max_angle = 0 leaves only the identity, which num={num} would repeat "
            f"{num} times; pass num=1."
        )
    step = min(max_angle / half_count, 2 * math.pi / num)
    whole_circle = step == 2 * math.pi / num
    half = step * np.arange(1, half_count + 1)
    angles = np.concatenate([[0.0], half, -half])
    check_distinct_angles(
        angles, f"max_angle={max_angle:g} with num={num}", "raise max_angle or lower num"
    )
    return _planar(rotation_matrices(angles), is_group=whole_circle, name=f"Rot[{num}]")
