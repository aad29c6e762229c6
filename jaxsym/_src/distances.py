"""One blocked squared-distance kernel for orbit distances, covers and nearest neighbours.

Every pairwise distance in the package goes through :func:`min_squares`:
``min_e  scale·(‖a_e‖² + ‖b_e‖²) − 2 a_e·b_e`` over a stack of ``E`` paired
transformed copies (``E = 1`` for plain distances), one matrix product per
element. The products run at ``jax.lax.Precision.HIGHEST``: these distances
certify something (covering numbers, nearest neighbours), and the default
precision on recent NVIDIA GPUs (TF32, 10-bit mantissa) rounds about 10⁴×
coarser than the rounding allowance :func:`tolerance` budgets for float32.

**Rounding allowance** (docs/theory.md §4). In floating point with unit
round-off ``u``, ``‖a‖² + ‖b‖² − 2a·b`` computed in ``d`` dimensions is off
by at most ``τ(‖a‖ + ‖b‖)² ≤ 2τ(‖a‖² + ‖b‖²)`` with ``τ = (d + 4)·u``; so
``scale = 1 + 2τ`` turns the formula into an upper bound on the exact square
(the *conservative* squares used by covers: a pair counts as within ``r`` only
if its exact distance is).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxsym._src.validation import optional_positive_int

__all__: list[str] = []  # private module

#: Bytes of the temporary ``(block, m)`` product per element and block of rows.
BLOCK_BYTES = 2 * 2**20
#: Precision of every distance matrix product (full float32 on every backend).
PRECISION = jax.lax.Precision.HIGHEST


def tolerance(dim: int, dtype) -> float:
    """Relative rounding bound ``τ = (d + 4)·u`` of ``‖a‖² + ‖b‖² − 2a·b`` (``u = eps/2``)."""
    return (dim + 4) * float(jnp.finfo(dtype).eps) / 2


def conservative_scale(dim: int, dtype) -> float:
    """``1 + 2τ``: with it the dot-product formula is an upper bound on the exact square."""
    return 1 + 2 * tolerance(dim, dtype)


def block_rows(block_size: int | None, rows: int, width: int) -> int:
    """Rows per block: the user's choice, or ``block·width·4 ≈`` :data:`BLOCK_BYTES`."""
    block_size = optional_positive_int("block_size", block_size)
    if block_size is not None:
        return min(block_size, rows)
    return int(max(1, min(rows, BLOCK_BYTES // max(1, width * 4))))


def min_squares(left: jax.Array, right: jax.Array, scale: float = 1.0) -> jax.Array:
    """``out[i, j] = min_e scale·(‖l_ei‖² + ‖r_ej‖²) − 2 l_ei·r_ej`` (not clamped): ``(b, m)``.

    Args:
        left: ``(E_l, b, d)`` rows, one stack per element (``E_l`` is ``E`` or 1).
        right: ``(E_r, m, d)`` columns (``E_r`` is ``E`` or 1; a stack of 1 is
            shared by every element).
        scale: ``1`` for the plain formula, :func:`conservative_scale` for an
            upper bound on the exact squares.
    """
    count = max(left.shape[0], right.shape[0])
    left_sq = jnp.sum(left * left, axis=-1)  # (E_l, b)
    right_sq = jnp.sum(right * right, axis=-1)  # (E_r, m)

    def element(e, acc):
        el = jnp.minimum(e, left.shape[0] - 1)
        er = jnp.minimum(e, right.shape[0] - 1)
        rows, cols = left[el], right[er]
        dots = jnp.matmul(rows, cols.T, precision=PRECISION)
        squares = scale * (left_sq[el][:, None] + right_sq[er][None, :]) - 2 * dots
        return jnp.minimum(acc, squares)

    init = jnp.full((left.shape[1], right.shape[1]), jnp.inf, left.dtype)
    if count == 1:
        return element(0, init)
    return jax.lax.fori_loop(0, count, element, init)


@functools.partial(jax.jit, static_argnames=("block", "conservative"))
def orbit_squares(flat_x, moved_y, block: int, conservative: bool = False):
    """``min_s ‖x_i − ρ(s) y_j‖²`` for all pairs, clamped at 0, ``lax.map`` over row blocks.

    Args:
        flat_x: ``(n, d)``.
        moved_y: ``(E, m, d)`` the transformed columns.
        block: rows of ``x`` per block.
        conservative: inflate by the rounding allowance (an upper bound).
    """
    n, dim = flat_x.shape
    scale = conservative_scale(dim, flat_x.dtype) if conservative else 1.0
    num_blocks = -(-n // block)
    padded = jnp.pad(flat_x, ((0, num_blocks * block - n), (0, 0)))
    out = jax.lax.map(
        lambda rows: jnp.maximum(min_squares(rows[None], moved_y, scale), 0.0),
        padded.reshape(num_blocks, block, dim),
    )
    return out.reshape(num_blocks * block, -1)[:n]


@functools.partial(jax.jit, static_argnames=("block_size",))
def nearest_other(
    queries: jax.Array, owners: jax.Array, points: jax.Array, block_size: int = 256
) -> tuple[jax.Array, jax.Array]:
    """Nearest point to each query, excluding the query's owner, by blocked GEMM.

    ``j(q) = argmin_{j ≠ owner(q)} ‖points_j − q‖²`` with
    ``‖q − p‖² = ‖q‖² + ‖p‖² − 2 q·p`` (full float32 matrix products),
    computed ``block_size`` queries at a time (memory ``O(block_size · n)``).

    Args:
        queries: ``(Q, d)`` query points.
        owners: ``(Q,)`` integer index in ``points`` to exclude for each query.
        points: ``(n, d)`` sample, ``n ≥ 2``.
        block_size: queries per block.

    Returns:
        ``(indices, squared_distances)``, both of shape ``(Q,)``; the squares
        are clamped at 0.
    """
    num_queries, num_points = queries.shape[0], points.shape[0]
    block = min(block_size, num_queries)
    padded = -(-num_queries // block) * block
    pad = padded - num_queries
    queries = jnp.pad(queries, ((0, pad), (0, 0)))
    owners = jnp.pad(owners, (0, pad))
    columns = jnp.arange(num_points)

    def one_block(piece):
        q, owner = piece
        squares = min_squares(q[None], points[None])
        squares = jnp.where(columns[None, :] == owner[:, None], jnp.inf, squares)
        index = jnp.argmin(squares, axis=1)
        best = jnp.take_along_axis(squares, index[:, None], axis=1)[:, 0]
        return index, jnp.maximum(best, 0.0)

    dims = queries.shape[1]
    index, squares = jax.lax.map(
        one_block, (queries.reshape(-1, block, dims), owners.reshape(-1, block))
    )
    return index.reshape(-1)[:num_queries], squares.reshape(-1)[:num_queries]
