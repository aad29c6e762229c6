"""Orbit distances and orbit covering numbers of a sample or of a domain (docs/theory.md §4).

The orbit distance of two examples under a finite set of transformations
``group = S`` is ``d_S(x, c) = min_{s∈S∪{e}} ‖x − ρ_X(s) c‖`` (examples
flattened; the identity is always counted, docs/theory.md §1). The orbit
covering number ``N_S(X_n, r)`` is the least number of centers ``c_j`` such
that every ``x_i`` has ``d_S(x_i, c_j) ≤ r`` for some ``j``. ``S = {e}`` gives
the ordinary covering number.

How the numbers are computed:

* **Distances** go through one blocked kernel (``jaxsym._src.distances``):
  ``‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b`` per element with full-float32 matrix
  products (``Precision.HIGHEST`` on every backend), min-reduced over the
  elements. The transformed copies ``ρ_X(s) x`` that each nested set adds are
  computed in one compiled call, shared by both paths below; an element that
  fixes every example (bitwise) adds nothing and is skipped.
* **Covers** come from one *farthest-point traversal* (Gonzalez's greedy
  k-center) per set ``S``: start from ``x_0``; repeatedly make the point
  farthest (in ``d_S``) from the current centers a new center (ties: the
  lowest index), and record the covering radius ``ρ_j``. The first ``j``
  centers cover at every ``r ≥ ρ_j``, so ``N_S(X_n, r) ≤ min{j : ρ_j ≤ r}`` for
  **every** radius from one pass; the traversal stops once ``ρ_j`` is below the
  smallest requested radius. For a group acting by isometries the counted
  centers are ``r``-separated, so ``N_S(r) ≤ count(r) ≤ N_S(r/2)``.
* **Two paths, one traversal.** The *matrix* path holds the ``n × n`` matrix
  of conservative squared orbit distances (``4n²`` bytes, capped by
  :data:`MAX_MATRIX_BYTES`). The *streaming* path holds ``O(n·|S|)``: the
  transformed sample and the distance rows of a small batch of candidate
  centers, computed by one GEMM when needed. The candidates are the ``b``
  farthest points (``lax.top_k``); a candidate is taken as the next center
  only while its distance beats the largest distance outside the batch at the
  time the batch was formed (distances only decrease), so it picks exactly the
  center the matrix path picks, and the counts agree. The batch size adapts
  (×8 when a batch is used up, ÷8 when little of it is). ``method="auto"`` uses
  the matrix path up to :data:`STREAMING_THRESHOLD` points. The streaming path
  takes a ``jax.sharding.Mesh``: the points (and every per-point array) are
  sharded over its first axis, and XLA adds the reductions.
* **Rounding is conservative.** The squares are inflated by the rounding
  allowance ``(d + 4)·u·(‖a‖ + ‖b‖)²`` (``u`` the unit round-off), so a pair is
  only counted as within ``r`` if its exact distance is; counts stay upper bounds.
* **Consistency.** Because ``{e} ⊂ S``, a cover for ``{e}`` is a cover for
  ``S``: every count for ``S`` is the minimum of its own greedy count and those
  of all smaller sets computed in the same call, and counts are made
  non-increasing in ``r`` by a running minimum. Both steps keep upper bounds.
* **Fixed-domain covers** (:func:`domain_covering_numbers`) cover a whole
  ball or box of radius ``R`` without the sample: a greedy orbit cover at
  ``r − ρ`` of a lattice ``ρ``-net of the domain covers the domain at ``r``.
  :func:`covering_table` with ``domain=`` takes, per radius, the smaller of the
  sample cover and (domain cover + a sample cover of the points outside the
  domain). Both are covers of the sample, so no union bound is needed
  (docs/theory.md §4).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import functools
import math
import zlib
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src import distances
from jaxsym._src.validation import (
    check_batch,
    check_choice,
    check_finite,
    check_group,
    check_positive,
    is_concrete,
    positive_int,
)
from jaxsym.groups import TransformationSet, identity_elements, transform_batch

__all__ = [
    "MAX_MATRIX_BYTES",
    "STREAMING_THRESHOLD",
    "CoveringTable",
    "Domain",
    "covering_numbers",
    "covering_table",
    "default_radii",
    "domain_covering_numbers",
    "nested_covering_numbers",
    "orbit_distances",
    "prefix_covering_numbers",
    "tables_from_counts",
]

#: Largest ``n × n`` float32 orbit-distance matrix the matrix path allocates.
MAX_MATRIX_BYTES = 4 * 2**30
#: ``method="auto"`` streams past this many points (matrix ``4n²`` bytes ≈ 1 GiB).
STREAMING_THRESHOLD = 16_384
#: Candidate batch sizes of the streaming traversal (adapted while it runs). Batches
#: and the matrix path's blocks share one GEMM shape class (``≥ 64`` rows), whose
#: per-entry rounding does not depend on the number of rows on XLA:CPU; smaller
#: products take other kernels and round differently.
STREAM_BATCHES = (64, 512)
#: Rows per block of the matrix path (see :data:`STREAM_BATCHES`).
MATRIX_BLOCK = 64
#: Most lattice points :func:`domain_covering_numbers` builds by default.
MAX_NET_POINTS = 200_000


class CoveringTable(NamedTuple):
    """Greedy orbit covering numbers of one sample at several radii (docs/theory.md §4).

    A pytree, so it passes into jitted code such as
    :func:`jaxsym.bounds.generalization_bound_from_table`.

    Attributes:
        radii: ``(K,)`` radii ``r_k``, increasing.
        counts: ``(K,)`` integer upper bounds on ``N_S(X_n, r_k)``,
            non-increasing, each in ``[1, n]``.
        num_points: ``n``, the sample size.
        group_size: ``|S|`` (elements of ``S``, identity included).
        fingerprint: ``(n, digest)`` of the sample the counts were computed on,
            recorded by this module's builders (``None`` for a hand-made table).
            :func:`jaxsym.bounds.generalization_bound_from_table` uses it to refuse
            tables of different samples and a ``num_points`` that is not the sample's.
    """

    radii: jax.Array
    counts: jax.Array
    num_points: int
    group_size: int
    fingerprint: tuple[int, int] | None = None


class Domain(NamedTuple):
    """A known input domain: the ball ``‖x‖ ≤ radius`` or the box ``max_k |x_k| ≤ radius``.

    Examples are flattened. The domain must be fixed before the data
    (docs/theory.md §4); sample points outside it are covered by the sample.
    """

    kind: str
    radius: float


# ----------------------------------------------------------------------------- distances


def _flat_orbit(group: TransformationSet, x: jax.Array, with_identity: bool) -> jax.Array:
    """``ρ_X(s) x_b`` for all elements, flattened: ``(|S|[+1], B, d)``."""
    moved = transform_batch(group, group.elements, x).reshape(group.size, x.shape[0], -1)
    if with_identity:
        moved = jnp.concatenate([x.reshape(1, x.shape[0], -1).astype(moved.dtype), moved])
    return moved


def orbit_distances(
    x: jax.Array, y: jax.Array, group: TransformationSet, *, block_size: int | None = None
) -> jax.Array:
    """Orbit distances ``d_S(x_i, y_j) = min_{s∈S∪{e}} ‖x_i − ρ_X(s) y_j‖`` (docs/theory.md §4).

    Examples are flattened. Blocked full-precision matrix products
    ``‖a‖² + ‖b‖² − 2a·b`` per element, clamped at 0 and min-reduced over the
    elements. Accurate to float32 rounding of that formula (about ``√(d·u)·‖a‖``
    absolute for nearly equal points, ``u`` the unit round-off).

    Args:
        x: ``(n, *example)``.
        y: ``(m, *example)``.
        group: the transformations (the identity is added if no element acts as it).
        block_size: rows of ``x`` per block; ``None`` keeps each element's
            ``(block, m)`` product near 2 MiB.

    Returns:
        ``(n, m)`` distances.

    Raises:
        ValueError: on shapes the set cannot act on, empty or non-finite inputs.
    """
    x = check_batch(group, x, "x")
    y = check_batch(group, y, "y")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must hold examples of one shape; got {x.shape} and {y.shape}.")
    dtype = jnp.result_type(x.dtype, jnp.float32)
    x, y = x.astype(dtype), y.astype(dtype)
    moved_y = _flat_orbit(group, y, len(identity_elements(group, y)) == 0)  # (|S|, m, d)
    block = distances.block_rows(block_size, x.shape[0], y.shape[0])
    return jnp.sqrt(distances.orbit_squares(x.reshape(x.shape[0], -1), moved_y, block))


# ----------------------------------------------------------------------------- matrix path


@functools.partial(jax.jit, static_argnames=("block",), donate_argnums=(0,))
def _lower_matrix(matrix: jax.Array, moved: jax.Array, flat_x: jax.Array, block: int):
    """``matrix[c, i] ← min(matrix[c, i], min_s ‖x_i − ρ(s) x_c‖²)``, conservatively.

    Row ``c`` is a center, column ``i`` a covered point; ``matrix`` is
    ``(n_pad, n)`` with ``n_pad`` a multiple of ``block`` and is updated in
    place (donated), one block of center rows per loop step.
    """
    n, dim = flat_x.shape
    scale = distances.conservative_scale(dim, flat_x.dtype)
    padded = jnp.pad(moved, ((0, 0), (0, matrix.shape[0] - n), (0, 0)))

    def step(index, matrix):
        start = index * block
        centers = jax.lax.dynamic_slice_in_dim(padded, start, block, axis=1)  # (|S|, b, d)
        rows = distances.min_squares(centers, flat_x[None], scale)
        current = jax.lax.dynamic_slice_in_dim(matrix, start, block, axis=0)
        return jax.lax.dynamic_update_slice_in_dim(
            matrix, jnp.minimum(current, rows), start, axis=0
        )

    return jax.lax.fori_loop(0, matrix.shape[0] // block, step, matrix)


@jax.jit
def _orbit_stack(group: TransformationSet, indices: jax.Array, x: jax.Array) -> jax.Array:
    """``ρ_X(s_k) x_b`` flattened, ``(k, n, d)``, for ``s_k = group[indices]``: one compiled call
    (per stage size) instead of the action's operations one by one."""
    elements = jax.tree_util.tree_map(lambda leaf: leaf[indices], group.elements)
    return transform_batch(group, elements, x).reshape(indices.shape[0], x.shape[0], -1)


@jax.jit
def _fixes(moved: jax.Array, x: jax.Array) -> jax.Array:
    """``(k,)``: whether each stack fixes every example bitwise (as ``identity_elements`` tests).

    A separate call: fused with :func:`_orbit_stack`, XLA would compute the
    action inside the test as well, in another loop order that also rounds
    differently.
    """
    flat = x.reshape(1, x.shape[0], -1).astype(moved.dtype)
    return jnp.all(_bits(moved) == _bits(flat), axis=(1, 2))


def _bits(values: jax.Array) -> jax.Array:
    """The bit patterns of float values (a bitwise comparison)."""
    width = {2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint64}[values.dtype.itemsize]
    return jax.lax.bitcast_convert_type(values, width)


def _stage_stack(group: TransformationSet, added: np.ndarray, x: jax.Array) -> jax.Array | None:
    """The stack ``(k, n, d)`` a stage adds: its elements but those that fix every example
    (the identity's squares are already counted), or ``None`` when none is left."""
    if not added.size:
        return None
    moved = _orbit_stack(group, np.asarray(added, np.int32), x)
    keep = np.flatnonzero(~np.asarray(_fixes(moved, x)))
    if keep.size == added.size:
        return moved
    return moved[keep] if keep.size else None


@jax.jit
def _farthest_first(squares: jax.Array, stop_square: jax.Array) -> jax.Array:
    """Squared covering radii ``ρ_j²`` of a farthest-point traversal, ``(n,)``.

    ``squares[c, i]`` (``c < n``) is the conservative squared orbit distance
    from point ``i`` to center ``c``. Entry ``j − 1`` is the squared covering
    radius of the first ``j`` centers; entries after the stop (``ρ² ≤ stop``)
    are 0. The argmax is a masked min over indices (lowest index on ties).
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


# ----------------------------------------------------------------------------- streaming path


def _stacked_rows(stacks, cand, flat, scale):
    """``min`` over the stacks of :func:`distances.min_squares` rows of the centers ``cand``.

    The same per-stack products as :func:`_lower_matrix` lowers the matrix with,
    so both paths see the same squares.
    """
    rows = [distances.min_squares(stack[:, cand], flat[None], scale) for stack in stacks]
    return functools.reduce(jnp.minimum, rows)


def _stream_phase(size: int, stacks, flat, scale, stop_square, state):
    """One batch: rows of the ``size`` farthest points by one GEMM, then consume them.

    ``state = (j, nearest, top, radii, padding)``; returns the new state and
    the number of centers taken from the batch.
    """
    j, nearest, top, radii, padding = state
    n = flat.shape[0]
    iota = jnp.arange(n)
    values, cand = jax.lax.top_k(nearest, size + 1) if size < n else jax.lax.top_k(nearest, n)
    cand = cand[:size]
    outside = values[size] if size < n else jnp.asarray(-jnp.inf, nearest.dtype)
    # The barrier keeps XLA from slicing single rows out of the product (a GEMV rounds
    # differently from the GEMM the matrix path uses).
    rows = jax.lax.optimization_barrier(_stacked_rows(stacks, cand, flat, scale))
    slots = jnp.arange(cand.shape[0])

    def cond(inner):
        j, nearest, top, _, used, taken = inner
        vals = jnp.where(used, -jnp.inf, nearest[cand])
        return (j < n) & (top > stop_square) & ((taken == 0) | (jnp.max(vals) > outside))

    def body(inner):
        j, nearest, top, radii, used, taken = inner
        vals = jnp.where(used, -jnp.inf, nearest[cand])
        slot = jnp.argmin(jnp.where(vals == top, cand, n))  # lowest global index at the top
        center = cand[slot]
        nearest = jnp.minimum(nearest, rows[slot])
        nearest = jnp.where((iota == center) | padding, 0.0, nearest)
        top = jnp.max(nearest)
        return j + 1, nearest, top, radii.at[j].set(top), used | (slots == slot), taken + 1

    used = jnp.zeros(cand.shape, bool)
    j, nearest, top, radii, _, taken = jax.lax.while_loop(
        cond, body, (j, nearest, top, radii, used, jnp.asarray(0))
    )
    return (j, nearest, top, radii, padding), taken


@functools.partial(jax.jit, static_argnames=("sizes",))
def _stream_traversal(stacks, flat, padding, stop_square, sizes: tuple[int, ...]):
    """Squared covering radii of the farthest-point traversal, ``O(n·|S|)`` memory.

    Same output as :func:`_farthest_first` on the matrix of the same squares.
    ``padding`` marks padded points (never centers, always covered).
    """
    n, dim = flat.shape
    scale = distances.conservative_scale(dim, flat.dtype)
    # No center yet: x_0 first (+inf), then every point at the largest float, so the
    # first batch picks x_0 and computes its row with the same GEMM shape as the rest.
    iota = jnp.arange(n)
    big = jnp.finfo(flat.dtype).max
    nearest = jnp.where(padding, 0.0, jnp.where(iota == 0, jnp.inf, big)).astype(flat.dtype)
    top = jnp.asarray(jnp.inf, flat.dtype)
    radii = jnp.zeros((n,), flat.dtype)

    def running(state):
        j, _, top, _, _ = state
        return (j < n) & (top > stop_square)

    def at_level(index: int, size: int):
        # One while loop per batch size (no lax.switch: XLA:CPU compiles the products
        # inside conditionals with another kernel, which rounds differently).
        def cond(outer):
            state, level = outer
            return running(state) & (level == index)

        def body(outer):
            state, level = outer
            state, taken = _stream_phase(size, stacks, flat, scale, stop_square, state)
            grow = (taken >= size).astype(jnp.int32)
            shrink = (8 * taken < size).astype(jnp.int32)
            return state, jnp.clip(level + grow - shrink, 0, len(sizes) - 1)

        return cond, body

    def cond(outer):
        return running(outer[0])

    def body(outer):
        for index, size in enumerate(sizes):
            outer = jax.lax.while_loop(*at_level(index, size), outer)
        return outer

    state = (jnp.asarray(0), nearest, top, radii, padding)
    (_, _, _, radii, _), _ = jax.lax.while_loop(cond, body, (state, jnp.asarray(0)))
    return radii


def _shard(mesh, *arrays_and_axes):
    """Place arrays on ``mesh`` sharded along the given axis (the points axis)."""
    from jax.sharding import NamedSharding, PartitionSpec

    axis_name = mesh.axis_names[0]
    out = []
    for array, axis in arrays_and_axes:
        spec = [None] * array.ndim
        spec[axis] = axis_name
        out.append(jax.device_put(array, NamedSharding(mesh, PartitionSpec(*spec))))
    return out


def _stream_cover(stacks, flat, stop, mesh) -> jax.Array:
    """Run :func:`_stream_traversal`, padding and sharding the points over ``mesh``."""
    n = flat.shape[0]
    padding = jnp.zeros((n,), bool)
    if mesh is not None:
        devices = mesh.devices.shape[0]
        extra = -n % devices
        if extra:  # copies of x_0, marked as padding: never centers, always covered
            flat = jnp.concatenate([flat, jnp.repeat(flat[:1], extra, 0)])
            stacks = [jnp.concatenate([m, jnp.repeat(m[:, :1], extra, 1)], 1) for m in stacks]
            padding = jnp.concatenate([padding, jnp.ones((extra,), bool)])
        flat, padding = _shard(mesh, (flat, 0), (padding, 0))
        stacks = _shard(mesh, *[(m, 1) for m in stacks])
    sizes = tuple(min(s, flat.shape[0]) for s in STREAM_BATCHES)
    return _stream_traversal(tuple(stacks), flat, padding, stop, sizes)[:n]


# ----------------------------------------------------------------------------- counts


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


def _choose_method(method: str, n: int, mesh) -> str:
    check_choice("method", method, ("auto", "matrix", "streaming"))
    if mesh is not None:
        if method == "matrix":
            raise ValueError("mesh= shards the streaming path; use method='streaming' or 'auto'.")
        return "streaming"
    if method == "auto":
        return "matrix" if n <= STREAMING_THRESHOLD else "streaming"
    if method == "matrix" and 4 * n * n > MAX_MATRIX_BYTES:
        raise ValueError(
            f"x has {n} points: the {n}×{n} orbit-distance matrix needs "
            f"{4 * n * n / 2**30:.1f} GiB, over MAX_MATRIX_BYTES = "
            f"{MAX_MATRIX_BYTES / 2**30:.1f} GiB; use method='streaming' (or 'auto')."
        )
    return method


def _finish(counts: list[np.ndarray], radii: np.ndarray, n: int) -> np.ndarray:
    counts = np.minimum.accumulate(np.stack(counts), axis=0)  # smaller sets cover too
    order = np.argsort(radii, kind="stable")
    ordered = np.minimum.accumulate(counts[:, order], axis=1)  # covers at r serve r' ≥ r
    result = np.empty_like(ordered)
    result[:, order] = ordered
    return np.minimum(result, n).astype(np.int32)


def _nested_counts(x, group, radii, stages, block_size, method="auto", mesh=None) -> np.ndarray:
    """Greedy counts for nested sets ``{e} ∪ S[stages[0]] ⊂ {e} ∪ S[stages[1]] ⊂ …``.

    ``stages`` lists, for each nested set, the indices of the elements it adds.
    Returns ``(len(stages), K)`` counts, consistent across sets and radii.
    """
    x = check_batch(group, x, "x")
    if not is_concrete(x):
        raise ValueError("covering numbers are computed host-side: x must not be traced.")
    radii = _check_radii(radii)
    n = x.shape[0]
    method = _choose_method(method, n, mesh)
    x = x.astype(jnp.result_type(x.dtype, jnp.float32))
    flat = x.reshape(n, -1)
    stop = jnp.asarray(float(radii.min()) ** 2, x.dtype)
    counts = []
    if method == "matrix":
        block = MATRIX_BLOCK if block_size is None else block_size
        block = distances.block_rows(block, n, n)
        matrix = jax.device_put(np.full((-(-n // block) * block, n), np.inf, x.dtype))
        matrix = _lower_matrix(matrix, flat[None], flat, block)  # the identity
        for added in stages:
            moved = _stage_stack(group, added, x)
            if moved is not None:
                matrix = _lower_matrix(matrix, moved, flat, block)
            cover = _farthest_first(matrix, stop)
            counts.append(_counts_from_radii(np.asarray(cover), radii))
        del matrix
    else:
        stacks = [flat[None]]  # the identity, then one stack per stage (as the matrix path)
        for added in stages:
            moved = _stage_stack(group, added, x)
            if moved is not None:
                stacks.append(moved)
            cover = _stream_cover(stacks, flat, stop, mesh)
            counts.append(_counts_from_radii(np.asarray(cover), radii))
    return _finish(counts, radii, n)


def covering_numbers(
    x: jax.Array,
    group: TransformationSet,
    radii,
    *,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
) -> np.ndarray:
    """Greedy upper bounds on the orbit covering numbers ``N_S(X_n, r)`` (docs/theory.md §4).

    One farthest-point traversal gives a cover at every radius (see the module
    docstring). The count for ``S`` is the minimum of the greedy counts for
    ``{e}`` and ``S`` (both are valid covers for ``S``), made non-increasing in ``r``.

    Args:
        x: ``(n, *example)`` sample ``X_n`` (host-side: not traced).
        group: finite set of transformations; the identity is always counted.
            ``groups.cyclic_rotations(1)`` gives ordinary covering numbers.
        radii: ``(K,)`` non-negative radii (any order).
        block_size: rows per distance block of the matrix path.
        method: ``"matrix"`` (``n × n`` matrix), ``"streaming"`` (``O(n·|S|)``
            memory) or ``"auto"`` (matrix up to :data:`STREAMING_THRESHOLD` points).
            Both give the same counts.
        mesh: a ``jax.sharding.Mesh`` to shard the streaming path's points over
            (its first axis).

    Returns:
        ``(K,)`` int32 counts, each in ``[1, n]``, non-increasing in ``r``.

    Raises:
        ValueError: on bad shapes, empty/non-finite inputs, negative radii, or
            when the matrix path's ``n × n`` matrix would exceed :data:`MAX_MATRIX_BYTES`.
    >>> import jax.numpy as jnp
    >>> from jaxsym import groups
    >>> x = jnp.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
    >>> covering_numbers(x, groups.cyclic_rotations(1), [0.5]).tolist()  # no symmetry
    [4]
    >>> covering_numbers(x, groups.cyclic_rotations(4), [0.5]).tolist()  # one orbit
    [1]
    """
    check_group(group)
    stages = [np.zeros((0,), np.int64), np.arange(group.size)]
    return _nested_counts(x, group, radii, stages, block_size, method, mesh)[-1]


def prefix_covering_numbers(
    x: jax.Array,
    group: TransformationSet,
    radii,
    *,
    order=None,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
) -> np.ndarray:
    """Greedy orbit covering numbers of the nested prefixes ``S_k = {s_order[0..k]}``.

    Row ``k`` is an upper bound on ``N_{S_{k+1}}(X_n, r)`` and is ``≤`` every
    earlier row (a cover for a subset is a cover for the superset), so
    comparisons such as subgroup vs group are consistent (docs/theory.md §4).

    Args:
        x: ``(n, *example)`` sample.
        group: finite set of transformations.
        radii: ``(K,)`` non-negative radii.
        order: a permutation of ``range(|S|)``; ``None`` is the stored order.
        block_size: as in :func:`covering_numbers`.
        method: as in :func:`covering_numbers`.
        mesh: as in :func:`covering_numbers`.

    Returns:
        ``(|S|, K)`` int32 counts.

    Raises:
        ValueError: if ``order`` is not a permutation, and as :func:`covering_numbers`.
    """
    check_group(group)
    order = np.arange(group.size) if order is None else np.asarray(order).reshape(-1)
    if sorted(order.tolist()) != list(range(group.size)):
        raise ValueError(
            f"order must be a permutation of range({group.size}); got {order.tolist()}."
        )
    stages = [order[k : k + 1] for k in range(group.size)]
    return _nested_counts(x, group, radii, stages, block_size, method, mesh)


def nested_covering_numbers(
    x: jax.Array,
    group: TransformationSet,
    radii,
    stages,
    *,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
    domain: Domain | None = None,
) -> np.ndarray:
    """Greedy orbit covering numbers of nested sets given by the elements each adds.

    Set ``k`` is ``{e} ∪ S[stages[0]] ∪ … ∪ S[stages[k]]``; rows are consistent
    (non-increasing down the rows and along the radii). With ``domain``, each
    count is the smaller of the sample cover and the fixed-domain cover plus a
    sample cover of the points outside the domain (docs/theory.md §4).

    Args:
        x: ``(n, *example)`` sample.
        group: finite set of transformations.
        radii: ``(K,)`` non-negative radii.
        stages: list of index arrays into ``group`` (may be empty for the identity alone).
        block_size: as in :func:`covering_numbers`.
        method: as in :func:`covering_numbers`.
        mesh: as in :func:`covering_numbers`.
        domain: optional :class:`Domain` fixed before the data.

    Returns:
        ``(len(stages), K)`` int32 counts.
    """
    check_group(group)
    stages = [np.asarray(stage, dtype=np.int64).reshape(-1) for stage in stages]
    if not stages:
        raise ValueError("stages must list at least one set of elements.")
    for stage in stages:
        if stage.size and (stage.min() < 0 or stage.max() >= group.size):
            raise ValueError(f"stages index elements of group in [0, {group.size}); got {stage}.")
    counts = _nested_counts(x, group, radii, stages, block_size, method, mesh)
    if domain is not None:
        counts = _with_domain(x, group, radii, stages, counts, domain, method, mesh)
    return counts


def default_radii(x: jax.Array, num: int = 30, *, max_radius: float | None = None) -> np.ndarray:
    """A geometric grid of ``num`` radii up to the sample's diameter bound.

    ``r_max = min(max_radius, 2·max_i ‖x_i − x̄‖)`` and the grid runs from
    ``r_max·10⁻³`` to ``r_max``. Covering numbers are deterministic functions of
    the sample, so a data-dependent grid costs nothing in the bound (docs/theory.md §4).

    Args:
        x: ``(n, *example)``.
        num: number of radii.
        max_radius: optional cap (e.g. the scale ``M√d_y / L`` beyond which
            the entropy is 0 anyway).

    Returns:
        ``(num,)`` float64 radii, increasing.
    """
    num = positive_int("num", num)
    flat = np.asarray(x, dtype=np.float64).reshape(np.shape(x)[0], -1)
    diameter = 2 * float(np.max(np.linalg.norm(flat - flat.mean(0), axis=1)))
    top = diameter if max_radius is None else min(diameter, float(max_radius))
    top = max(top, 1e-12)
    return np.geomspace(top * 1e-3, top, num)


# ----------------------------------------------------------------------------- fixed domains


def _check_domain(domain) -> Domain:
    if not isinstance(domain, Domain):
        raise TypeError(f"domain must be a jaxsym.covering.Domain; got {domain!r:.80}.")
    check_choice("domain.kind", domain.kind, ("ball", "box"))
    check_positive("domain.radius", domain.radius)
    return domain


def _inside(domain: Domain, flat: np.ndarray) -> np.ndarray:
    """Points surely inside the domain (a relative margin of 10⁻⁹ against rounding)."""
    limit = float(domain.radius) * (1 - 1e-9)
    if domain.kind == "ball":
        return np.linalg.norm(flat, axis=1) <= limit
    return np.max(np.abs(flat), axis=1) <= limit


def _lattice_net(domain: Domain, dim: int, step: float) -> tuple[np.ndarray, float]:
    """A ``ρ``-net of the domain: cell centers of a cubic lattice, projected into it.

    Every point of the domain lies in a cell of side ``step`` whose center is
    within ``ρ = step·√d/2``; projecting the centers onto the (convex) domain is
    non-expansive and fixes the domain's points, so the net stays a ``ρ``-net.
    """
    radius = float(domain.radius)
    half = math.ceil(radius / step)
    axis = (np.arange(-half, half) + 0.5) * step
    grid = np.stack(np.meshgrid(*([axis] * dim), indexing="ij"), -1).reshape(-1, dim)
    rho = step * math.sqrt(dim) / 2
    if domain.kind == "ball":
        norms = np.linalg.norm(grid, axis=1)
        grid = grid[norms <= radius + rho]
        norms = np.linalg.norm(grid, axis=1, keepdims=True)
        grid = np.where(norms > radius, grid * (radius / np.maximum(norms, 1e-300)), grid)
    else:
        grid = np.clip(grid, -radius, radius)
    return grid, rho


def domain_covering_numbers(
    group: TransformationSet,
    radii,
    example_shape,
    domain: Domain,
    *,
    net_step: float | None = None,
    max_net_points: int = MAX_NET_POINTS,
    mesh=None,
) -> np.ndarray:
    """Upper bounds on the orbit covering numbers of a whole domain, without a sample.

    A lattice ``ρ``-net ``Z`` of the ball/box (:class:`Domain`) is covered
    greedily at orbit radius ``r − ρ`` (streaming path); its centers then cover
    every point of the domain at ``r``, whatever the sample (docs/theory.md §4).
    Radii ``r < 3ρ`` get no cover (there the net is too coarse to beat a sample
    cover, and the traversal would run through most of the net): their count
    is reported as ``2³¹ − 1``.

    Args:
        group: finite set of transformations acting on ``example_shape``.
        radii: ``(K,)`` non-negative radii.
        example_shape: shape of one example (flattened dimension ``d``).
        domain: the :class:`Domain`.
        net_step: lattice step; ``None`` picks the finest with at most
            ``max_net_points`` points.
        max_net_points: cap on the net size (``(2R/step)^d`` points).
        mesh: shard the traversal over this mesh.

    Returns:
        ``(K,)`` int32 counts (non-increasing in ``r``).
    """
    check_group(group)
    domain = _check_domain(domain)
    radii = _check_radii(radii)
    max_net_points = positive_int("max_net_points", max_net_points)
    example_shape = tuple(int(k) for k in example_shape)
    dim = int(np.prod(example_shape))
    if net_step is None:
        net_step = 2 * float(domain.radius) / math.floor(max_net_points ** (1 / dim))
    check_positive("net_step", net_step)
    if (2 * float(domain.radius) / net_step + 1) ** dim > 4 * max_net_points:
        raise ValueError(
            f"a lattice net of step {net_step} in {dim} dimensions exceeds max_net_points = "
            f"{max_net_points}; fixed-domain covers are for low-dimensional inputs."
        )
    stages = [np.zeros((0,), np.int64), np.arange(group.size)]
    return _domain_counts(group, radii, example_shape, domain, stages, float(net_step), mesh)[-1]


def _domain_counts(group, radii, example_shape, domain, stages, net_step, mesh) -> np.ndarray:
    """Nested-set counts of the domain: greedy covers of its net at ``r − ρ``, ``(P, K)``."""
    dim = int(np.prod(example_shape))
    net, rho = _lattice_net(domain, dim, net_step)
    z = jnp.asarray(net.reshape(-1, *example_shape), jnp.float32)
    group.check_inputs(z, "the domain's lattice net")
    shifted = radii - rho
    usable = shifted >= 2 * rho
    counts = np.full((len(stages), radii.size), np.iinfo(np.int32).max, np.int64)
    if np.any(usable):
        counts[:, usable] = _nested_counts(
            z, group, shifted[usable], stages, None, "streaming", mesh
        )
    order = np.argsort(radii, kind="stable")
    counts[:, order] = np.minimum.accumulate(counts[:, order], axis=1)
    return counts.astype(np.int32)


# ----------------------------------------------------------------------------- tables


def covering_table(
    x: jax.Array,
    group: TransformationSet,
    radii=None,
    *,
    domain: Domain | None = None,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
) -> CoveringTable:
    """:func:`covering_numbers` packed as a :class:`CoveringTable`.

    With ``domain``, each count is the smaller of the sample cover and the
    fixed-domain cover plus a sample cover of the points outside the domain
    (both cover the sample; docs/theory.md §4).

    Args:
        x: ``(n, *example)`` sample.
        group: finite set of transformations.
        radii: ``(K,)`` radii; ``None`` uses :func:`default_radii`.
        domain: optional :class:`Domain` fixed before the data.
        block_size: as in :func:`covering_numbers`.
        method: as in :func:`covering_numbers`.
        mesh: as in :func:`covering_numbers`.
    """
    x = check_batch(group, x, "x")
    radii = default_radii(x) if radii is None else _check_radii(radii)
    radii = radii[np.argsort(radii, kind="stable")]
    stages = [np.zeros((0,), np.int64), np.arange(group.size)]
    counts = nested_covering_numbers(
        x, group, radii, stages, block_size=block_size, method=method, mesh=mesh, domain=domain
    )
    size = group.size + int(len(identity_elements(group, x)) == 0)
    trivial, symmetric = tables_from_counts(radii, counts, x.shape[0], [1, size], sample=x)
    del trivial
    return symmetric


def _with_domain(x, group, radii, stages, counts, domain, method, mesh) -> np.ndarray:
    """``min(sample counts, domain counts + counts of the points outside)``, per set."""
    domain = _check_domain(domain)
    flat = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    inside = _inside(domain, flat)
    dim = int(np.prod(x.shape[1:]))
    step = 2 * float(domain.radius) / math.floor(MAX_NET_POINTS ** (1 / dim))
    domain_rows = _domain_counts(group, radii, x.shape[1:], domain, stages, step, mesh)
    domain_rows = domain_rows.astype(np.int64)
    if np.all(inside):
        outside = np.zeros_like(domain_rows)
    else:
        outside = _nested_counts(x[~inside], group, radii, stages, None, method, mesh)
    combined = np.minimum(counts.astype(np.int64), domain_rows + outside)
    return _finish(list(combined), radii, x.shape[0])


def tables_from_counts(
    radii, counts, num_points: int, group_sizes, *, sample=None
) -> list[CoveringTable]:
    """Split ``(P, K)`` nested counts into one :class:`CoveringTable` per set.

    ``sample``: the ``(n, *example)`` sample the counts were computed on; when
    given, each table records its :attr:`CoveringTable.fingerprint`.
    """
    radii = np.asarray(radii, np.float64)
    order = np.argsort(radii, kind="stable")
    fingerprint = None if sample is None else _sample_fingerprint(sample)
    return [
        CoveringTable(
            radii=np.asarray(radii[order], np.float32),
            counts=np.asarray(row[order], np.int32),
            num_points=int(num_points),
            group_size=int(size),
            fingerprint=fingerprint,
        )
        for row, size in zip(np.asarray(counts), group_sizes, strict=True)
    ]


def _sample_fingerprint(x) -> tuple[int, int]:
    """``(n, CRC-32 of the sample's bytes and shape)``: which sample a table describes."""
    data = np.ascontiguousarray(np.asarray(x))
    digest = zlib.crc32(repr((data.shape, data.dtype.str)).encode())
    return int(data.shape[0]), zlib.crc32(data.tobytes(), digest) & 0x7FFFFFFF
