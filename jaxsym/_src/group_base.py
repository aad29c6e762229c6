"""The shared abstraction: a set of transformations as a pytree of elements.

A :class:`TransformationSet` holds its elements as arrays with a leading element
axis and knows how ONE element acts on ONE example (``act_in`` / ``act_out``).
Everything batched comes from :func:`jax.vmap`. Because it is an
:class:`equinox.Module`, it passes through :func:`jax.jit` as an ordinary
argument: the elements are traced, the action and the flags are static.

Conventions (docs/theory.md §1): actions are left actions, ``act(compose(a, b), x)
== act(a, act(b, x))``, and they are isometries of the Euclidean norm. By
construction element 0 of every set built by this package is the identity.

Dtypes: matrix elements (rotations, reflections) are built in float64 and
stored in JAX's default float when the set is built (float32, or float64 under
``jax_enable_x64``). A matrix action computes in the input's float dtype
(elements are cast to it; float16/bfloat16 inputs stay half precision) and
promotes integer and boolean inputs to the elements' float dtype, never casting
the elements down to integers; it multiplies at ``Precision.HIGHEST`` so that
accelerators do not round it to TF32. Gathering actions (image grids,
permutations, shifts) move values without arithmetic and keep the input's dtype.

Static fields hold structure only (the action, sizes, flags, a value-free name):
sets that differ only in their elements share one ``jit`` trace.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.validation import (
    SymmetrySet,
    check_batch,
    check_group,
    float_dtype,
    is_concrete,
    positive_int,
)

__all__ = [
    "Action",
    "MatrixAction",
    "TransformationSet",
    "cayley_table",
    "element_indices",
    "element_labels",
    "identity_elements",
    "inverse_indices",
    "orbit_augment",
    "transform_batch",
]

Array = jax.Array
OutputAction = Callable[[Any, Array], Array]


@dataclasses.dataclass(frozen=True)
class Action:
    """How an element acts on one example, and the algebra of its elements.

    Subclasses implement ``__call__`` (the action on one example), ``inverse``,
    ``compose`` and ``check_example_shape``. Instances are hashable and live in
    static fields.
    """

    def __call__(self, element: Any, x: Array) -> Array:
        raise NotImplementedError

    def inverse(self, element: Any) -> Any:
        raise NotImplementedError

    def compose(self, a: Any, b: Any) -> Any:
        raise NotImplementedError

    def check_example_shape(self, shape: tuple[int, ...], name: str) -> None:
        """Raise ``ValueError`` if one example of this shape cannot be acted on."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def format_element(self, element: Any) -> str:
        """A short human-readable rendering of one element (for error messages)."""
        leaves = [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(element)]
        return ", ".join(_format_array(leaf) for leaf in leaves)


def _format_array(array: np.ndarray) -> str:
    return np.array2string(
        np.asarray(array), precision=4, suppress_small=True, separator=", ", max_line_width=200
    ).replace("\n", "")


def _compute_dtype(element_dtype, x_dtype) -> jnp.dtype:
    """The dtype a matrix acts in: the input's float dtype; integers promote.

    Float inputs keep their precision (elements are cast to the input's float
    dtype); integer and boolean inputs are promoted to the elements' float dtype
    (float64 elements under ``jax_enable_x64``), never the other way round.
    """
    if jnp.issubdtype(x_dtype, jnp.inexact):
        return jnp.dtype(x_dtype)
    return float_dtype(jnp.zeros((), element_dtype))


@dataclasses.dataclass(frozen=True)
class MatrixAction(Action):
    """Orthogonal ``d × d`` matrices acting on the last axis: ``x ↦ x Rᵀ``."""

    dim: int

    def __call__(self, element: Array, x: Array) -> Array:
        dtype = _compute_dtype(element.dtype, x.dtype)
        # HIGHEST: no TF32/bf16 rounding of the action on accelerators, so that
        # the identity acts exactly and an invariant model has a rounding-level defect.
        return jnp.matmul(
            x.astype(dtype), element.T.astype(dtype), precision=jax.lax.Precision.HIGHEST
        )

    def inverse(self, element: Array) -> Array:
        return jnp.swapaxes(element, -1, -2)

    def compose(self, a: Array, b: Array) -> Array:
        return a @ b

    def check_example_shape(self, shape, name):
        if len(shape) < 1 or shape[-1] != self.dim:
            raise ValueError(
                f"{name}: this group acts on points in R^{self.dim}, i.e. arrays whose "
                f"last axis has size {self.dim}; got one example of shape {shape}."
            )

    def describe(self) -> str:
        return f"rotation/reflection matrices on the last axis (R^{self.dim})"

    def format_element(self, element: Any) -> str:
        return format_matrix(np.asarray(element, dtype=np.float64))


def format_matrix(matrix: np.ndarray) -> str:
    """A matrix, with its angle in degrees for 2 × 2 and 3 × 3 orthogonal matrices."""
    text = _format_array(matrix)
    if matrix.shape == (2, 2):
        det = float(np.linalg.det(matrix))
        if det > 0:
            degrees = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
            return f"rotation by {degrees:.4g}° {text}"
        # R_φ F with F = diag(1, −1) reflects across the line at angle φ/2.
        degrees = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0])) / 2
        return f"reflection across the line at {degrees:.4g}° {text}"
    if matrix.shape == (3, 3) and np.linalg.det(matrix) > 0:
        cosine = np.clip((np.trace(matrix) - 1) / 2, -1.0, 1.0)
        return f"rotation by {math.degrees(math.acos(cosine)):.4g}° {text}"
    return text


@dataclasses.dataclass(frozen=True)
class CustomOutputAction:
    """Wraps a user function ``(element, y) -> y`` acting on one output."""

    fn: OutputAction

    def __call__(self, element: Any, y: Array) -> Array:
        return self.fn(element, y)


# ----------------------------------------------------------------------------- distinct elements

WORKING_DTYPE = np.float32
"""The default working dtype: elements must be distinct once cast to it."""

DUPLICATE_SPACING = 1e-6
"""Angles or shifts closer than this, relative to ``max(1, largest |value|)``, are one element."""


def _working_rows(elements: Any, size: int) -> np.ndarray:
    """Each element as one float64 row of its values as stored in :data:`WORKING_DTYPE`.

    Floating leaves are cast to float32 first (the working dtype); integer and
    boolean leaves are kept exact.
    """
    rows = []
    for leaf in jax.tree_util.tree_leaves(elements):
        array = np.asarray(jax.device_get(leaf))
        if np.issubdtype(array.dtype, np.inexact):
            array = array.astype(WORKING_DTYPE)
        rows.append(array.astype(np.float64).reshape(size, -1))
    return np.concatenate(rows, 1) if rows else np.zeros((size, 0))


def _first_repeat(rows: np.ndarray) -> tuple[int, int] | None:
    """The first pair ``(i, j)``, ``i < j``, of equal rows (``-0.0 == 0.0``), or ``None``."""
    if len(rows) < 2:
        return None
    rows = np.asarray(rows, np.float64).reshape(len(rows), -1) + 0.0  # −0.0 → 0.0
    order = np.lexsort(rows.T[::-1])  # stable: equal rows in index order
    same = np.flatnonzero(np.all(rows[order[1:]] == rows[order[:-1]], axis=1))
    if same.size == 0:
        return None
    k = same[np.argmin(order[same + 1])]  # the repeat that comes first in element order
    return int(order[k]), int(order[k + 1])


def repeated_elements(elements: Any, size: int) -> tuple[int, int] | None:
    """The first pair of elements equal after the cast to :data:`WORKING_DTYPE`, or ``None``."""
    return _first_repeat(_working_rows(elements, size))


def close_pair(values, *, period: float | None = None) -> tuple[int, int] | None:
    """The first pair ``(i, j)``, ``i < j``, of values that are one element, or ``None``.

    Two values (angles, or shifts as rows) are one element when they are equal
    after the cast to :data:`WORKING_DTYPE`, or closer than
    :data:`DUPLICATE_SPACING` ``× max(1, largest |value|)`` in the max-norm (on a
    circle of circumference ``period`` when given, for 1-D angles).

    Args:
        values: ``(k,)`` or ``(k, d)`` finite numbers, one row per element.
        period: the circumference for angles (``2π``), or ``None``.
    """
    values = np.asarray(values, np.float64)
    rows = values.reshape(len(values), -1).astype(WORKING_DTYPE).astype(np.float64)
    pair = _first_repeat(rows)
    if pair is not None or len(rows) < 2:
        return pair
    tolerance = DUPLICATE_SPACING * max(1.0, float(np.max(np.abs(rows))))
    if rows.shape[1] == 1:
        order = np.argsort(rows[:, 0], kind="stable")
        ordered = rows[order, 0]
        gaps = np.diff(ordered)
        if period is not None:
            gaps = np.append(gaps, ordered[0] + period - ordered[-1])
        close = np.flatnonzero(gaps < tolerance)
        left, right = order[close], order[(close + 1) % len(order)]
    else:
        from scipy.spatial import cKDTree  # a dependency of jax

        distances, neighbours = cKDTree(rows).query(rows, k=2, p=np.inf)
        close = np.flatnonzero(distances[:, 1] < tolerance)
        left, right = close, neighbours[close, 1]
    if close.size == 0:
        return None
    low, high = np.minimum(left, right), np.maximum(left, right)
    k = int(np.lexsort((low, high))[0])  # the pair that comes first in element order
    return int(low[k]), int(high[k])


class TransformationSet(eqx.Module):
    """A finite set of transformations with an action on inputs and outputs.

    Attributes:
        elements: pytree of arrays with a leading element axis of length ``size``.
        action: the (static) input action and element algebra.
        output_action: ``None`` for invariance (trivial action on outputs), the
            input action for equivariance, or any ``(element, y) -> y``.
        is_group: ``True`` when the elements form a group (closed under
            composition and inverses) and uniform weights are its Haar measure,
            so that averaging gives the exact projection ``Q_G`` (docs/theory.md §3).
        name: a human-readable name, e.g. ``"C8"``. It is a static field (part
            of the ``jit`` cache key), so it holds sizes only, never values such
            as angles or seeds.
    """

    elements: Any
    action: Action = eqx.field(static=True)
    output_action: Any = eqx.field(static=True, default=None)
    is_group: bool = eqx.field(static=True, default=True)
    name: str = eqx.field(static=True, default="G")

    def __check_init__(self):
        """A set flagged a group holds each element once (after the cast to float32)."""
        if not self.is_group or not is_concrete(self.elements):
            return
        leaves = jax.tree_util.tree_leaves(self.elements)
        if not leaves or any(not hasattr(leaf, "shape") or not leaf.shape for leaf in leaves):
            return
        pair = repeated_elements(self.elements, leaves[0].shape[0])
        if pair is not None:
            i, j = pair
            element = self.action.format_element(self.element(j))
            raise ValueError(
                f"elements: {self.name} is flagged a group but elements {i} and {j} are the "
                f"same after the cast to float32 ({element}); a group holds each element once."
            )

    @property
    def size(self) -> int:
        """Number of elements ``|S|``."""
        return int(jax.tree_util.tree_leaves(self.elements)[0].shape[0])

    def element(self, index: int) -> Any:
        """The element at ``index`` (a pytree without the element axis)."""
        return jax.tree_util.tree_map(lambda leaf: leaf[index], self.elements)

    def act_in(self, element: Any, x: Array) -> Array:
        """``ρ_X(g) x`` for one element and one example."""
        return self.action(element, x)

    def act_out(self, element: Any, y: Array) -> Array:
        """``ρ_Y(g) y`` for one element and one output (identity if invariant)."""
        if self.output_action is None:
            return y
        return self.output_action(element, y)

    def inverse(self, element: Any) -> Any:
        """The element ``g⁻¹``."""
        return self.action.inverse(element)

    def compose(self, a: Any, b: Any) -> Any:
        """The element ``ab``, acting as ``act(ab, x) = act(a, act(b, x))``."""
        return self.action.compose(a, b)

    @property
    def is_invariant(self) -> bool:
        """Whether outputs are acted on trivially."""
        return self.output_action is None

    def invariant(self) -> TransformationSet:
        """The same set, acting trivially on outputs (invariance)."""
        return dataclasses.replace(self, output_action=None)

    def equivariant(self) -> TransformationSet:
        """The same set, acting on outputs by the input action."""
        return dataclasses.replace(self, output_action=self.action)

    def with_output_action(self, act_out: OutputAction) -> TransformationSet:
        """The same set with a custom output action ``act_out(element, y)``.

        The action must be a linear isometry and a left action with the same
        element algebra as the input action (docs/theory.md §1).
        """
        if not callable(act_out):
            raise TypeError(f"act_out must be callable (element, y) -> y; got {act_out!r}.")
        return dataclasses.replace(self, output_action=CustomOutputAction(act_out))

    def subset(self, indices_or_mask, *, name: str | None = None) -> TransformationSet:
        """The subset of elements picked by integer indices or a boolean mask.

        The subset keeps the action; it is not assumed to be a group.

        Raises:
            ValueError: if the selection is empty, out of range, or picks an element twice.
        """
        selection = np.asarray(indices_or_mask)
        if selection.dtype == bool:
            if selection.shape != (self.size,):
                raise ValueError(
                    f"subset: a boolean mask must have shape ({self.size},), got {selection.shape}."
                )
            selection = np.flatnonzero(selection)
        selection = selection.reshape(-1)
        if selection.size == 0:
            raise ValueError(f"subset: the selection of elements of {self.name} is empty.")
        if not np.issubdtype(selection.dtype, np.integer):
            raise ValueError(f"subset: indices must be integers, got dtype {selection.dtype}.")
        if selection.min() < -self.size or selection.max() >= self.size:
            raise ValueError(
                f"subset: indices must lie in [0, {self.size}); got {selection.tolist()}."
            )
        repeat = _first_repeat((selection % self.size).astype(np.float64)[:, None])
        if repeat is not None:
            index = int(selection[repeat[1]]) % self.size
            raise ValueError(
                f"subset: indices pick element {index} of {self.name} twice (at positions "
                f"{repeat[0]} and {repeat[1]} of {selection.tolist()}); a set holds each "
                "element once."
            )
        elements = jax.tree_util.tree_map(lambda leaf: leaf[selection], self.elements)
        return dataclasses.replace(
            self,
            elements=elements,
            is_group=False,
            name=name or f"{self.name}[{len(selection)} elements]",
        )

    def check_inputs(self, x: Array, name: str = "x") -> None:
        """Check a batch ``(B, *example_shape)`` that this set can act on."""
        shape = tuple(np.shape(x))
        if len(shape) < 1:
            raise ValueError(f"{name}: expected a batch with a leading batch axis, got a scalar.")
        self.action.check_example_shape(shape[1:], f"{name} (batch of shape {shape})")

    def __repr__(self) -> str:
        kind = "group" if self.is_group else "transformation set"
        out = "invariant" if self.is_invariant else "equivariant"
        return f"{self.name}({kind}, {self.size} elements, {out} outputs)"


SymmetrySet.register(TransformationSet)  # what jaxsym._src.validation.check_group accepts


def check_argument_order(signature: str, x) -> None:
    """Raise a ``TypeError`` pointing at the order when a group is passed as ``x``."""
    if isinstance(x, TransformationSet):
        raise TypeError(
            f"{signature}: the group comes after the data; got the group {x.name} in the "
            f"place of x (the order changed from (group, x) to (x, group))."
        )


def transform_batch(group: TransformationSet, elements: Any, x: Array) -> Array:
    """All transformed inputs ``ρ_X(g) x_b``, shape ``(num_elements, B, *example)``.

    A low-level helper (no checks on ``x``; it works on traced values): matrix
    actions promote integer inputs to a float dtype, gathering actions (grids,
    permutations, shifts) keep the input's dtype.
    """
    check_group(group)
    per_element = jax.vmap(group.act_in, in_axes=(None, 0))
    return jax.vmap(per_element, in_axes=(0, None))(elements, x)


def orbit_augment(x: Array, group: TransformationSet) -> Array:
    """All copies ``ρ_X(g) x_b`` of a batch, element-major: a G-invariant sample.

    Row ``i·B + b`` of the result is ``ρ_X(g_i) x_b`` (element-major: the first
    ``B`` rows are ``x`` itself moved by element 0, the identity). The uniform
    distribution on the result is invariant under a finite group ``G``
    (docs/theory.md §1).

    Args:
        x: a batch ``(B, *example)``; integer inputs are promoted to a float dtype.
        group: the elements to apply.

    Returns:
        ``(|G|·B, *example)``.

    Raises:
        TypeError: if ``group`` is not a group.
        ValueError: if ``group`` cannot act on ``x`` or a concrete ``x`` is not finite.
    """
    check_argument_order("orbit_augment(x, group)", x)
    x = check_batch(group, x)
    moved = transform_batch(group, group.elements, x)
    return moved.reshape((-1,) + x.shape[1:])


IDENTITY_PROBE_ROWS = 64
_VERIFY_BUDGET = 1 << 22  # values per verification call


def identity_elements(
    group: TransformationSet, x: Array, *, probe_rows: int = IDENTITY_PROBE_ROWS
) -> np.ndarray:
    """Indices of the elements that act as the identity on every example of ``x``.

    Element ``g`` is reported when ``ρ_X(g) x_b == x_b`` exactly (bitwise-equal
    flattened values, after the action's float promotion) for every example
    ``b``. The test is screened on the first ``probe_rows`` examples, and the
    (few) survivors are then confirmed on the whole sample, so that the cost is
    ``O(|G| · probe_rows + survivors · B)`` actions.

    Element 0 of every group built by this package is the identity, so the
    result is normally ``[0]``; it also lists elements that happen to fix the
    sample (e.g. a reflection of points on its axis), and is empty for sets
    without the identity (e.g. a user's :meth:`TransformationSet.subset`).

    Args:
        group: the elements to test.
        x: a concrete batch ``(B, *example)``.
        probe_rows: number of leading examples used to screen the elements.

    Returns:
        Sorted ``int64`` indices. If the elements or ``x`` are traced (inside
        ``jit``), nothing can be proved and the result is empty.
    """
    probe_rows = positive_int("probe_rows", probe_rows)
    x = check_batch(group, x)
    if not (is_concrete(group.elements) and is_concrete(x)):
        return np.zeros((0,), np.int64)
    candidates = _fixing(group, np.arange(group.size), x[:probe_rows])
    rest = x[probe_rows:]
    if rest.shape[0] == 0 or candidates.size == 0:
        return candidates
    per_call = max(1, _VERIFY_BUDGET // max(1, int(np.prod(rest.shape))))
    kept = [
        _fixing(group, candidates[start : start + per_call], rest)
        for start in range(0, candidates.size, per_call)
    ]
    return np.concatenate(kept)


def _fixing(group: TransformationSet, indices: np.ndarray, x: Array) -> np.ndarray:
    """The subset of ``indices`` whose elements fix every example of ``x`` exactly."""
    elements = jax.tree_util.tree_map(lambda leaf: leaf[indices], group.elements)
    moved = np.asarray(transform_batch(group, elements, x))
    flat = np.asarray(x).astype(moved.dtype).reshape(1, x.shape[0], -1)
    same = np.all(moved.reshape(len(indices), x.shape[0], -1) == flat, axis=(1, 2))
    return np.asarray(indices, dtype=np.int64)[same]


def _flat_elements(elements: Any, size: int) -> np.ndarray:
    leaves = jax.tree_util.tree_leaves(elements)
    return np.concatenate(
        [np.asarray(leaf, dtype=np.float64).reshape(size, -1) for leaf in leaves], 1
    )


def element_indices(group: TransformationSet, elements: Any, tol: float = 1e-4) -> np.ndarray:
    """Index in ``group`` of each element in ``elements`` (nearest match within ``tol``).

    Args:
        group: a concrete transformation set.
        elements: a pytree of elements with a leading axis, like ``group.elements``.
        tol: largest max-abs difference of a match.

    Raises:
        ValueError: if an element matches no element of ``group`` within ``tol``.
    """
    reference = _flat_elements(group.elements, group.size)
    count = jax.tree_util.tree_leaves(elements)[0].shape[0]
    query = _flat_elements(elements, count)
    rows = max(1, 2**22 // max(1, reference.size))  # memory O(rows · |G| · d), not O(count · |G|)
    indices = np.empty(count, np.int64)
    for start in range(0, count, rows):
        distances = np.abs(query[start : start + rows, None, :] - reference[None, :, :]).max(-1)
        indices[start : start + rows] = distances.argmin(1)
        if np.any(distances.min(1) > tol):
            raise ValueError(f"{group.name} is not closed: an element falls outside the set.")
    return indices


def inverse_indices(group: TransformationSet) -> np.ndarray:
    """Index of ``g⁻¹`` for every element ``g`` (host-side, finite groups).

    Raises:
        ValueError: if some inverse is not in the set.
    """
    check_group(group)
    inverses = jax.vmap(group.inverse)(group.elements)
    return element_indices(group, inverses)


MAX_TABLE_SIZE = 2048  # |G|² products on the device and |G|³ host comparisons


def cayley_table(group: TransformationSet) -> np.ndarray:
    """``table[i, j]`` = index of ``g_i g_j`` (host-side, finite groups).

    Raises:
        ValueError: if the set is not closed under composition, or has more than
            ``MAX_TABLE_SIZE`` elements.
    """
    check_group(group)
    n = group.size
    if n > MAX_TABLE_SIZE:
        raise ValueError(
            f"cayley_table: {group.name} has {n} elements; the table holds {n}² products and "
            f"takes O(|G|³) time, so it is built for at most {MAX_TABLE_SIZE} elements."
        )
    products = jax.vmap(jax.vmap(group.compose, in_axes=(None, 0)), in_axes=(0, None))(
        group.elements, group.elements
    )
    flat = jax.tree_util.tree_map(lambda leaf: leaf.reshape(n * n, *leaf.shape[2:]), products)
    return element_indices(group, flat).reshape(n, n)


_SHORT_NAMES = (
    ("rotation by ", "rot "),
    ("reflection across the line at ", "flip "),
    ("shift by ", "shift "),
    ("permutation ", "perm "),
)


def element_labels(group: TransformationSet) -> list[str]:
    """Short readable names of the elements, ``"e"`` for element 0 (the identity).

    Built from the action's :meth:`Action.format_element` without the matrix,
    abbreviated (``"rot 90°"``, ``"flip 45°"``, ``"shift 1"``, ``"perm [1, 0, 2]"``),
    for tables and reports.

    Args:
        group: a concrete transformation set.

    Returns:
        ``|S|`` labels.
    """
    labels = ["e"]
    for k in range(1, group.size):
        text = group.action.format_element(group.element(k)).split(" [[")[0]
        for long, short in _SHORT_NAMES:
            if text.startswith(long):
                text = short + text[len(long) :]
                break
        labels.append(text)
    return labels
