"""Subsets of a transformation set: closure, and nested ranges of a partial symmetry.

A candidate symmetry is a subset ``H`` of a set ``G``. It is flagged a group
only when its elements are closed under composition and inverse, checked on the
elements (docs/theory.md §1, §3): the flag decides whether averaging over ``H``
is the exact projection ``Q_H`` or the partial average ``Q_ν``.

For a *range* of transformations (rotations by at most an angle, shifts by at
most a distance: a partial symmetry, not a group) the natural candidates are the
nested sub-ranges ``{g : |g| ≤ r}`` (docs/theory.md §9), with ``|g|`` the
element's distance from the identity (:func:`element_magnitudes`).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxsym._src.group_base import MatrixAction, TransformationSet, element_indices
from jaxsym._src.validation import check_group
from jaxsym.groups.images import ImageRotationAction, ImageTranslationAction

__all__ = ["MAX_RANGES", "element_magnitudes", "is_closed", "nested_ranges", "subset_of"]

#: At most this many nested sub-ranges (plus the identity) are proposed for one set.
MAX_RANGES = 8
_SAME = 1e-5  # magnitudes this close are one level (float32 elements)


def is_closed(group: TransformationSet, members) -> bool:
    """Whether the elements ``members`` of ``group`` are closed under composition and inverse.

    ``H`` is closed when ``g_a g_b ∈ H`` and ``g_a⁻¹ ∈ H`` for all ``a, b ∈ H``,
    computed with the action's own ``compose`` and ``inverse`` and matched to
    elements of ``group`` (:func:`jaxsym.groups.element_indices`).

    Args:
        group: the parent set.
        members: element indices of ``H`` in ``group``.

    >>> from jaxsym import groups
    >>> c8 = groups.cyclic_rotations(8)
    >>> is_closed(c8, [0, 2, 4, 6]), is_closed(c8, [0, 1])
    (True, False)
    """
    check_group(group)
    members = np.unique(np.asarray(members, np.int64).reshape(-1))
    elements = jax.tree_util.tree_map(lambda leaf: leaf[members], group.elements)
    products = jax.vmap(jax.vmap(group.compose, in_axes=(None, 0)), in_axes=(0, None))(
        elements, elements
    )
    count = len(members)
    flat = jax.tree_util.tree_map(
        lambda leaf: leaf.reshape(count * count, *leaf.shape[2:]), products
    )
    inverses = jax.vmap(group.inverse)(elements)
    try:
        found = np.concatenate([element_indices(group, flat), element_indices(group, inverses)])
    except ValueError:  # a product or an inverse is not even in the parent set
        return False
    return bool(np.isin(found, members).all())


def subset_of(group: TransformationSet, members, *, name: str | None = None) -> TransformationSet:
    """The elements ``members`` of ``group``, flagged a group only if they form one.

    ``is_group`` is ``group.is_group and is_closed(group, members)``: a subset of
    a set whose action is not an exact group action (interpolated image
    rotations) is never flagged a group, and neither is an unclosed subset of a
    group (``{e, rot 45°}`` of C8).

    Args:
        group: the parent set.
        members: element indices in ``group``.
        name: the subset's name (default: the set's name and size).

    >>> from jaxsym import groups
    >>> subset_of(groups.cyclic_rotations(8), [0, 1]).is_group
    False
    """
    members = np.asarray(members, np.int64).reshape(-1)
    if len(np.unique(members)) == group.size:
        return group
    subset = group.subset(members, name=name)
    closed = bool(group.is_group) and is_closed(group, members)
    return dataclasses.replace(subset, is_group=closed)


def _matrix_angles(elements: np.ndarray) -> np.ndarray | None:
    """Rotation angle of each proper rotation matrix (2-D or 3-D), else ``None``."""
    if (
        elements.ndim != 3
        or elements.shape[1] != elements.shape[2]
        or elements.shape[1] not in (2, 3)
    ):
        return None
    if np.any(np.linalg.det(elements) < 0):
        return None  # reflections are not a neighbourhood of the identity
    trace = np.trace(elements, axis1=1, axis2=2)
    cosine = trace / 2 if elements.shape[1] == 2 else (trace - 1) / 2
    return np.arccos(np.clip(cosine, -1.0, 1.0))


def element_magnitudes(group: TransformationSet) -> np.ndarray | None:
    """Each element's distance from the identity, where the set is a range; else ``None``.

    * image rotations: ``|θ|`` (radians);
    * image translations: ``‖s‖₂`` (pixels);
    * rotation matrices in 2-D or 3-D: the rotation angle ``arccos((tr R − 1)/2)``
      (``arccos(tr R / 2)`` in 2-D), radians.

    Other actions (permutations, reflections, grids) have no such order: ``None``.

    >>> from jaxsym import groups
    >>> import numpy as np
    >>> angles = element_magnitudes(groups.image_rotations(5, max_angle=np.pi / 6))
    >>> np.degrees(angles).round(1).tolist()
    [0.0, 15.0, 30.0, 15.0, 30.0]
    """
    check_group(group)
    elements = np.asarray(jax.device_get(jax.tree_util.tree_leaves(group.elements)[0]), np.float64)
    if isinstance(group.action, ImageRotationAction):
        return np.abs(elements.reshape(-1))
    if isinstance(group.action, ImageTranslationAction):
        return np.linalg.norm(elements.reshape(len(elements), -1), axis=1)
    if isinstance(group.action, MatrixAction):
        return _matrix_angles(elements)
    return None


def nested_ranges(group: TransformationSet, *, max_ranges: int = MAX_RANGES) -> list[np.ndarray]:
    """Nested sub-ranges ``{g : |g| ≤ r}`` of a range of transformations (docs/theory.md §9).

    One range per distinct magnitude ``r`` (:func:`element_magnitudes`), the last
    the whole set; with more than ``max_ranges`` distinct magnitudes, ``max_ranges``
    of them evenly spread (the whole set always kept). The identity ``{e}`` comes
    first.

    Args:
        group: a set whose elements have magnitudes (e.g. rotations within ±90°).
        max_ranges: the most sub-ranges proposed (the identity not counted).

    Returns:
        Sorted element-index arrays, strictly nested, smallest (``[0]``) first.

    Raises:
        ValueError: if the set's elements have no magnitude (not a range).

    >>> from jaxsym import groups
    >>> import numpy as np
    >>> ranges = nested_ranges(groups.image_rotations(13, max_angle=np.pi / 2))
    >>> sizes = tuple(len(r) for r in ranges)
    >>> sizes
    (1, 3, 5, 7, 9, 11, 13)
    """
    magnitudes = element_magnitudes(group)
    if magnitudes is None:
        raise ValueError(
            f"nested_ranges: {group.name} acts by {group.action.describe()}, whose elements "
            "have no distance from the identity (not a range of rotations or shifts)."
        )
    levels = np.unique(np.round(magnitudes[magnitudes > _SAME], 5))
    if len(levels) > max_ranges:
        picks = np.unique(np.round(np.linspace(0, len(levels) - 1, max_ranges)).astype(int))
        levels = levels[picks]
    ranges = [np.zeros(1, np.int64)]
    for radius in levels:
        members = np.flatnonzero(magnitudes <= radius + _SAME)
        members = np.union1d(members, [0]).astype(np.int64)
        if len(members) > len(ranges[-1]):
            ranges.append(members)
    return ranges
