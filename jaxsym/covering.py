"""Orbit distances and orbit covering numbers of a sample (theory.md §4).

The orbit distance of two examples under a finite set of transformations ``S``
is ``d_S(x, c) = min_{s∈S∪{e}} ‖x − ρ_X(s) c‖`` (examples flattened; the
identity is always counted in ``S``, theory.md §1). The orbit covering number
``N_S(X_n, r)`` is the least number of centers ``c_j ∈ X_n`` such that every
``x_i`` has ``d_S(x_i, c_j) ≤ r`` for some ``j``. ``S = {e}`` gives the ordinary
covering number.

How the numbers are computed:

* **Distances** are blocked matrix products, ``‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b``
  per element, min-reduced over the elements and clamped at 0, in blocks of
  rows so that the temporary ``(|S|·block, n)`` product stays within
  :data:`BLOCK_BYTES`.
* **Covers** come from one *farthest-point traversal* (Gonzalez's greedy
  k-center) per set ``S``: start from ``x_0``; repeatedly make the point
  farthest (in ``d_S``) from the current centers a new center, and record the
  covering radius ``ρ_j = max_i min_{c ∈ first j centers} d_S(x_i, c)``. The
  first ``j`` centers are a cover at every radius ``r ≥ ρ_j``, so
  ``N_S(X_n, r) ≤ min{j : ρ_j ≤ r}`` for **every** radius from one pass; that
  is the greedy count reported (a valid cover by centers in ``X_n``, hence an
  upper bound on the minimum; the traversal stops once ``ρ_j`` is below the
  smallest requested radius). For a group acting by isometries ``d_G`` is a
  pseudo-metric and the counted centers are ``r``-separated, so the classical
  guarantee ``N_S(r) ≤ count(r) ≤ N_S(r/2)`` holds.
* **Rounding is conservative.** The float32 distances are inflated by a bound
  on the rounding error of the dot-product formula,
  ``(d + 4)·u·(‖a‖ + ‖b‖)²`` on the squares (``u`` the unit round-off), so a
  pair is only counted as within ``r`` if its exact distance is; the counts
  stay upper bounds.
* **Consistency.** Because ``{e} ⊂ S``, a cover for ``{e}`` is a cover for
  ``S``: every count for ``S`` is the minimum of its own greedy count and the
  greedy counts of all smaller sets computed in the same call (the identity
  alone, or the earlier prefixes in :func:`prefix_covering_numbers`), and the
  counts are made non-increasing in ``r`` by a running minimum (a cover at
  ``r`` is one at every ``r' ≥ r``). Both steps keep them upper bounds.

The full ``n × n`` matrix of (conservative) orbit distances is held once
(float32, ``4n²`` bytes: 1.6 GB at ``n = 20 000``) while the traversal runs;
:data:`MAX_MATRIX_BYTES` caps it.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import check_batch, check_finite, is_concrete
from jaxsym.groups import TransformationSet, transform_batch

#: Bytes of the temporary ``(|S|·block, n)`` product per block of rows.
BLOCK_BYTES = 2 * 2**20
#: Largest ``n × n`` float32 orbit-distance matrix :func:`covering_numbers` allocates.
MAX_MATRIX_BYTES = 4 * 2**30


class CoveringTable(NamedTuple):
    """Greedy orbit covering numbers of one sample at several radii (theory.md §4).

    A pytree, so it passes into jitted code such as
    :func:`jaxsym.bounds.generalization_bound_from_table`.

    Attributes:
        radii: ``(K,)`` radii ``r_k``, increasing.
        counts: ``(K,)`` integer upper bounds on ``N_S(X_n, r_k)``,
            non-increasing, each in ``[1, n]``.
        num_points: ``n``, the sample size.
        group_size: ``|S|`` (elements of ``S``, identity included).
    """

    radii: jax.Array
    counts: jax.Array
    num_points: int
    group_size: int


# ----------------------------------------------------------------------------- distances


def _flat_orbit(group: TransformationSet, x: jax.Array, with_identity: bool) -> jax.Array:
    """``ρ_X(s) x_b`` for all elements, flattened: ``(|S|[+1], B, d)``."""
    moved = transform_batch(group, group.elements, x).reshape(group.size, x.shape[0], -1)
    if with_identity:
        moved = jnp.concatenate([x.reshape(1, x.shape[0], -1).astype(moved.dtype), moved])
    return moved


def _identity_elements(group: TransformationSet, x: jax.Array) -> set[int]:
    """Indices of elements that act as the identity on every example of ``x``."""
    if not (is_concrete(group.elements) and is_concrete(x)):
        return set()
    moved = np.asarray(_flat_orbit(group, x, False))
    flat = np.asarray(x, dtype=moved.dtype).reshape(1, x.shape[0], -1)
    return {int(k) for k in np.flatnonzero(np.all(moved == flat, axis=(1, 2)))}


def _needs_identity(group: TransformationSet, x: jax.Array) -> bool:
    """Whether no element of ``group`` acts as the identity on ``x`` (checked if concrete)."""
    if not (is_concrete(group.elements) and is_concrete(x)):
        return True
    probe = x[: min(x.shape[0], 64)]
    moved = np.asarray(_flat_orbit(group, probe, False))
    flat = np.asarray(probe).reshape(1, probe.shape[0], -1)
    return not bool(np.any(np.all(moved == flat, axis=(1, 2))))


def _tolerance(dim: int, dtype) -> float:
    """Relative rounding bound ``τ = (d + 4)·u`` of ``‖a‖² + ‖b‖² − 2a·b``.

    The rounding error is at most ``τ(‖a‖ + ‖b‖)² ≤ 2τ(‖a‖² + ‖b‖²)``, so
    ``(1 + 2τ)(‖a‖² + ‖b‖²) − 2a·b`` is an upper bound on the exact square.
    """
    return (dim + 4) * float(jnp.finfo(dtype).eps) / 2


def _block_rows(block_size: int | None, rows: int, width: int, count: int) -> int:
    """Rows per block: the user's choice, or ``count·block·width·4 ≈`` :data:`BLOCK_BYTES`."""
    if block_size is not None:
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
            raise TypeError(f"block_size must be a positive int or None; got {block_size!r}.")
        if block_size < 1:
            raise ValueError(f"block_size must be a positive number of rows; got {block_size}.")
        return int(min(block_size, rows))
    per_row = max(1, min(count, 8) * width * 4)
    return int(max(1, min(rows, BLOCK_BYTES // per_row)))


def _min_squares(rows: jax.Array, moved_cols_t: jax.Array, col_sq: jax.Array, scale: float):
    """``min_s (scale·(‖r_i‖² + ‖c_sj‖²) − 2 r_i·c_sj)``, clamped at 0: ``(b, m)``.

    Args:
        rows: ``(b, d)``.
        moved_cols_t: ``(|S|, d, m)`` transformed columns, transposed.
        col_sq: ``(|S|, m)`` their squared norms.
        scale: ``1`` for the plain formula, ``1 + 2τ`` for the conservative one.
    """
    row_sq = jnp.sum(rows * rows, axis=-1)[:, None]

    def element(s, acc):
        squares = scale * (row_sq + col_sq[s][None, :]) - 2 * (rows @ moved_cols_t[s])
        return jnp.minimum(acc, squares)

    init = jnp.full((rows.shape[0], col_sq.shape[1]), jnp.inf, rows.dtype)
    acc = jax.lax.fori_loop(0, moved_cols_t.shape[0], element, init)
    return jnp.maximum(acc, 0.0)


@functools.partial(jax.jit, static_argnames=("block", "conservative"))
def _orbit_squares(flat_x, moved_y, block: int, conservative: bool = False):
    """``min_s ‖x_i − ρ(s) y_j‖²`` for all pairs, ``lax.map`` over blocks of rows."""
    n, dim = flat_x.shape
    scale = 1 + 2 * _tolerance(dim, flat_x.dtype) if conservative else 1.0
    moved_t = jnp.swapaxes(moved_y, 1, 2)  # (|S|, d, m)
    col_sq = jnp.sum(moved_y * moved_y, axis=-1)
    num_blocks = -(-n // block)
    padded = jnp.pad(flat_x, ((0, num_blocks * block - n), (0, 0)))
    out = jax.lax.map(
        lambda rows: _min_squares(rows, moved_t, col_sq, scale),
        padded.reshape(num_blocks, block, dim),
    )
    return out.reshape(num_blocks * block, -1)[:n]


def orbit_distances(
    x: jax.Array, y: jax.Array, S: TransformationSet, *, block_size: int | None = None
) -> jax.Array:
    """Orbit distances ``d_S(x_i, y_j) = min_{s∈S∪{e}} ‖x_i − ρ_X(s) y_j‖`` (theory.md §4).

    Examples are flattened. Computed as blocked matrix products
    ``‖a‖² + ‖b‖² − 2a·b`` per element (clamped at 0 and min-reduced over the
    elements), ``jax.lax.map`` over blocks of rows of ``x``; on the 2-core CPU
    this was as fast as a Python loop of jitted blocks and needs one dispatch.
    Accurate to float32 rounding of that formula (about ``√(d·u)·‖a‖`` absolute
    for nearly equal points, ``u`` the unit round-off).

    Args:
        x: ``(n, *example)``.
        y: ``(m, *example)``.
        S: the transformations (the identity is added if no element acts as it).
        block_size: rows of ``x`` per block; ``None`` keeps each element's
            ``(block, m)`` product near :data:`BLOCK_BYTES`.

    Returns:
        ``(n, m)`` distances.

    Raises:
        ValueError: on shapes the set cannot act on, empty or non-finite inputs.
    """
    x = check_batch(S, x, "x")
    y = check_batch(S, y, "y")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must hold examples of one shape; got {x.shape} and {y.shape}.")
    dtype = jnp.result_type(x.dtype, jnp.float32)
    x, y = x.astype(dtype), y.astype(dtype)
    moved_y = _flat_orbit(S, y, _needs_identity(S, y))  # (|S|, m, d)
    block = _block_rows(block_size, x.shape[0], y.shape[0], 1)
    return jnp.sqrt(_orbit_squares(x.reshape(x.shape[0], -1), moved_y, block))


# ----------------------------------------------------------------------------- covers


@functools.partial(jax.jit, static_argnames=("block",), donate_argnums=(0,))
def _lower_matrix(matrix: jax.Array, moved: jax.Array, flat_x: jax.Array, block: int):
    """``matrix[c, i] ← min(matrix[c, i], min_s ‖x_i − ρ(s) x_c‖²)``, conservatively.

    Row ``c`` is a center, column ``i`` a covered point; ``matrix`` is
    ``(n_pad, n)`` with ``n_pad`` a multiple of ``block`` and is updated in
    place (donated), one block of center rows per loop step.
    """
    n, dim = flat_x.shape
    scale = 1 + 2 * _tolerance(dim, flat_x.dtype)
    flat_t = flat_x.T[None]  # (1, d, n): the covered points, untransformed
    col_sq = jnp.sum(flat_x * flat_x, axis=-1)[None]
    padded = jnp.pad(moved, ((0, 0), (0, matrix.shape[0] - n), (0, 0)))

    def step(index, matrix):
        start = index * block
        centers = jax.lax.dynamic_slice_in_dim(padded, start, block, axis=1)  # (|S|, b, d)

        def element(s, acc):
            rows = centers[s]
            squares = scale * (jnp.sum(rows * rows, -1)[:, None] + col_sq) - 2 * (rows @ flat_t[0])
            return jnp.minimum(acc, squares)

        current = jax.lax.dynamic_slice_in_dim(matrix, start, block, axis=0)
        lowered = jax.lax.fori_loop(0, centers.shape[0], element, current)
        return jax.lax.dynamic_update_slice_in_dim(matrix, lowered, start, axis=0)

    return jax.lax.fori_loop(0, matrix.shape[0] // block, step, matrix)


@jax.jit
def _farthest_first(squares: jax.Array, stop_square: jax.Array) -> jax.Array:
    """Squared covering radii ``ρ_j²`` of a farthest-point traversal, ``(n,)``.

    ``squares[c, i]`` (``c < n``) is the conservative squared orbit distance
    from point ``i`` to center ``c``. Entry ``j − 1`` is the squared covering
    radius of the first ``j`` centers; entries after the stop (``ρ² ≤ stop``)
    are 0. The argmax is a masked min over indices (faster on XLA:CPU).
    """
    n = squares.shape[1]
    iota = jnp.arange(n)

    def cond(state):
        j, _, top, _ = state
        return (j < n) & (top > stop_square)

    def body(state):
        j, nearest, top, radii = state
        center = jnp.min(jnp.where(nearest == top, iota, n))
        nearest = jnp.minimum(nearest, squares[center])
        nearest = jnp.where(iota == center, 0.0, nearest)
        top = jnp.max(nearest)
        return j + 1, nearest, top, radii.at[j].set(top)

    nearest = jnp.maximum(squares[0], 0.0).at[0].set(0.0)
    top = jnp.max(nearest)
    radii = jnp.zeros((n,), squares.dtype).at[0].set(top)
    _, _, _, radii = jax.lax.while_loop(cond, body, (jnp.asarray(1), nearest, top, radii))
    return radii


def _counts_from_radii(cover_squares: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """``min{j : ρ_j ≤ r}`` for each radius (``ρ`` non-increasing)."""
    cover = np.sqrt(np.maximum(np.asarray(cover_squares, dtype=np.float64), 0.0))
    return 1 + np.sum(cover[None, :] > radii[:, None], axis=1)


def _check_radii(radii) -> np.ndarray:
    radii = np.asarray(radii, dtype=np.float64).reshape(-1)
    if radii.size == 0:
        raise ValueError("radii must hold at least one radius; got an empty array.")
    check_finite("radii", radii)
    if np.any(radii < 0):
        raise ValueError(f"radii must be non-negative; got min {radii.min()}.")
    return radii


def _nested_counts(x, S, radii, stages, block_size) -> np.ndarray:
    """Greedy counts for nested sets ``{e} ∪ S[stages[0]] ⊂ {e} ∪ S[stages[1]] ⊂ …``.

    ``stages`` lists, for each nested set, the indices of the elements it adds.
    Returns ``(len(stages), K)`` counts, consistent across sets and radii.
    """
    x = check_batch(S, x, "x")
    if not is_concrete(x):
        raise ValueError("covering numbers are computed host-side: x must not be traced.")
    radii = _check_radii(radii)
    n = x.shape[0]
    if 4 * n * n > MAX_MATRIX_BYTES:
        raise ValueError(
            f"x has {n} points: the {n}×{n} orbit-distance matrix needs "
            f"{4 * n * n / 2**30:.1f} GiB, over MAX_MATRIX_BYTES = "
            f"{MAX_MATRIX_BYTES / 2**30:.1f} GiB; subsample x or raise the limit."
        )
    x = x.astype(jnp.result_type(x.dtype, jnp.float32))
    flat = x.reshape(n, -1)
    stop = jnp.asarray(float(radii.min()) ** 2, x.dtype)
    identities = _identity_elements(S, x)
    block = _block_rows(block_size, n, n, 1)
    matrix = jnp.full((-(-n // block) * block, n), jnp.inf, x.dtype)
    matrix = _lower_matrix(matrix, flat[None], flat, block)  # the identity
    counts = []
    for added in stages:
        added = np.asarray([k for k in added if k not in identities], dtype=np.int64)
        if added.size:
            moved = _flat_orbit(S.subset(added), x, False)
            matrix = _lower_matrix(matrix, moved, flat, block)
        cover = _farthest_first(matrix, stop)
        counts.append(_counts_from_radii(np.asarray(cover), radii))
    del matrix
    counts = np.minimum.accumulate(np.stack(counts), axis=0)  # smaller sets cover too
    order = np.argsort(radii, kind="stable")
    ordered = np.minimum.accumulate(counts[:, order], axis=1)  # covers at r serve r' ≥ r
    result = np.empty_like(ordered)
    result[:, order] = ordered
    return np.minimum(result, n).astype(np.int32)


def covering_numbers(
    x: jax.Array, S: TransformationSet, radii, *, block_size: int | None = None
) -> np.ndarray:
    """Greedy upper bounds on the orbit covering numbers ``N_S(X_n, r)`` (theory.md §4).

    One pass of blocked distance products builds the ``n × n`` orbit-distance
    matrix, and one farthest-point traversal gives a cover at every radius (see
    the module docstring). The count for ``S`` is the minimum of the greedy
    counts for ``{e}`` and ``S`` (both are valid covers for ``S``), made
    non-increasing in ``r``.

    Args:
        x: ``(n, *example)`` sample ``X_n`` (host-side: not traced).
        S: finite set of transformations; the identity is always counted.
            ``groups.cyclic_rotations(1)`` gives ordinary covering numbers.
        radii: ``(K,)`` non-negative radii (any order).
        block_size: rows per distance block; ``None`` picks it from
            :data:`BLOCK_BYTES`.

    Returns:
        ``(K,)`` int32 counts, each in ``[1, n]``, non-increasing in ``r``.

    Raises:
        ValueError: on bad shapes, empty/non-finite inputs, negative radii, or
            when the ``n × n`` matrix would exceed :data:`MAX_MATRIX_BYTES`.
    """
    stages = [np.zeros((0,), np.int64), np.arange(S.size)]
    return _nested_counts(x, S, radii, stages, block_size)[-1]


def prefix_covering_numbers(
    x: jax.Array,
    S: TransformationSet,
    radii,
    *,
    order=None,
    block_size: int | None = None,
) -> np.ndarray:
    """Greedy orbit covering numbers of the nested prefixes ``S_k = {s_order[0..k]}``.

    ``S_1 ⊂ S_2 ⊂ … ⊂ S_|S|`` (each with the identity) share one distance pass:
    the orbit-distance matrix is lowered element by element. Row ``k`` is an
    upper bound on ``N_{S_{k+1}}(X_n, r)`` and is guaranteed ``≤`` every earlier
    row (a cover for a subset is a cover for the superset), so comparisons such
    as subgroup vs group are consistent (theory.md §4).

    Args:
        x: ``(n, *example)`` sample.
        S: finite set of transformations.
        radii: ``(K,)`` non-negative radii.
        order: a permutation of ``range(|S|)``; ``None`` is the stored order.
        block_size: rows per distance block.

    Returns:
        ``(|S|, K)`` int32 counts.

    Raises:
        ValueError: if ``order`` is not a permutation, and as :func:`covering_numbers`.
    """
    order = np.arange(S.size) if order is None else np.asarray(order).reshape(-1)
    if sorted(order.tolist()) != list(range(S.size)):
        raise ValueError(f"order must be a permutation of range({S.size}); got {order.tolist()}.")
    stages = [order[k : k + 1] for k in range(S.size)]
    return _nested_counts(x, S, radii, stages, block_size)


def nested_covering_numbers(
    x: jax.Array, S: TransformationSet, radii, stages, *, block_size: int | None = None
) -> np.ndarray:
    """Greedy orbit covering numbers of nested sets given by the elements each adds.

    Set ``k`` is ``{e} ∪ S[stages[0]] ∪ … ∪ S[stages[k]]``; rows are consistent
    (non-increasing down the rows and along the radii).

    Args:
        x: ``(n, *example)`` sample.
        S: finite set of transformations.
        radii: ``(K,)`` non-negative radii.
        stages: list of index arrays into ``S`` (may be empty for the identity alone).
        block_size: rows per distance block.

    Returns:
        ``(len(stages), K)`` int32 counts.
    """
    stages = [np.asarray(stage, dtype=np.int64).reshape(-1) for stage in stages]
    if not stages:
        raise ValueError("stages must list at least one set of elements.")
    for stage in stages:
        if stage.size and (stage.min() < 0 or stage.max() >= S.size):
            raise ValueError(f"stages index elements of S in [0, {S.size}); got {stage}.")
    return _nested_counts(x, S, radii, stages, block_size)


def default_radii(x: jax.Array, num: int = 30, *, max_radius: float | None = None) -> np.ndarray:
    """A geometric grid of ``num`` radii up to the sample's diameter bound.

    ``r_max = min(max_radius, 2·max_i ‖x_i − x̄‖)`` and the grid runs from
    ``r_max·10⁻³`` to ``r_max``. Covering numbers are deterministic functions of
    the sample, so a data-dependent grid costs nothing in the bound (theory.md §4).

    Args:
        x: ``(n, *example)``.
        num: number of radii.
        max_radius: optional cap (e.g. the scale ``M√d_y / L`` beyond which
            the entropy is 0 anyway).

    Returns:
        ``(num,)`` float64 radii, increasing.
    """
    flat = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    diameter = 2 * float(np.max(np.linalg.norm(flat - flat.mean(0), axis=1)))
    top = diameter if max_radius is None else min(diameter, float(max_radius))
    top = max(top, 1e-12)
    return np.geomspace(top * 1e-3, top, int(num))


def covering_table(
    x: jax.Array,
    S: TransformationSet,
    radii=None,
    *,
    block_size: int | None = None,
) -> CoveringTable:
    """:func:`covering_numbers` packed as a :class:`CoveringTable`.

    Args:
        x: ``(n, *example)`` sample.
        S: finite set of transformations.
        radii: ``(K,)`` radii; ``None`` uses :func:`default_radii`.
        block_size: rows per distance block.
    """
    radii = default_radii(x) if radii is None else _check_radii(radii)
    order = np.argsort(radii, kind="stable")
    radii = radii[order]
    counts = covering_numbers(x, S, radii, block_size=block_size)
    size = S.size + int(_needs_identity(S, jnp.asarray(x)))
    return CoveringTable(
        radii=np.asarray(radii, np.float32),
        counts=np.asarray(counts, np.int32),
        num_points=int(np.shape(x)[0]),
        group_size=size,
    )


def tables_from_counts(radii, counts, num_points: int, group_sizes) -> list[CoveringTable]:
    """Split ``(P, K)`` nested counts into one :class:`CoveringTable` per set."""
    radii = np.asarray(radii, np.float64)
    order = np.argsort(radii, kind="stable")
    return [
        CoveringTable(
            radii=np.asarray(radii[order], np.float32),
            counts=np.asarray(row[order], np.int32),
            num_points=int(num_points),
            group_size=int(size),
        )
        for row, size in zip(np.asarray(counts), group_sizes, strict=True)
    ]
