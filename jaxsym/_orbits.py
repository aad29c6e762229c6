"""Evaluating a model on the orbits of a batch, chunk by chunk over the group.

Following the measured baselines (performance-notes.md), the model is never
vmapped over the group axis: a chunk of ``c`` elements transforms the batch
into ``c·B`` inputs folded into the batch axis, calls the model once, and
:func:`jax.lax.map` / :func:`jax.lax.scan` runs over the chunks, so that peak
memory grows with the chunk, not with ``|G|``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxsym._validation import check_model_output
from jaxsym.groups import TransformationSet, transform_batch

#: Rows (transformed examples) per model call when ``chunk_size`` is automatic.
DEFAULT_ROWS_PER_CALL = 1024


def resolve_chunk_size(chunk_size: int | None, num_elements: int, batch_size: int) -> int:
    """Elements per chunk: the user's choice, or a rows-per-call budget."""
    if chunk_size is None:
        chunk_size = max(1, DEFAULT_ROWS_PER_CALL // max(batch_size, 1))
    return int(min(chunk_size, num_elements))


def model_on_orbits(f: Callable, group: TransformationSet, elements: Any, x: jax.Array):
    """``f(ρ_X(g) x_b)`` for a chunk of elements, shape ``(c, B, *out)``."""
    count = jax.tree_util.tree_leaves(elements)[0].shape[0]
    batch = x.shape[0]
    moved = transform_batch(group, elements, x)
    y = f(moved.reshape((count * batch,) + moved.shape[2:]))
    check_model_output(y, count * batch)
    return y.reshape((count, batch) + y.shape[1:])


def act_out_each(group: TransformationSet, elements: Any, y: jax.Array) -> jax.Array:
    """``ρ_Y(g_c) y[c, b]`` for outputs ``(c, B, *out)`` and a chunk of c elements."""
    per_element = jax.vmap(group.act_out, in_axes=(None, 0))
    return jax.vmap(per_element)(elements, y)


def _split(tree: Any, chunk: int):
    """Split leading axes into ``(num_chunks, chunk, ...)`` and a remainder."""
    size = jax.tree_util.tree_leaves(tree)[0].shape[0]
    full = (size // chunk) * chunk
    body = jax.tree_util.tree_map(lambda a: a[:full].reshape((-1, chunk) + a.shape[1:]), tree)
    rest = jax.tree_util.tree_map(lambda a: a[full:], tree)
    return body, rest, full, size - full


def map_chunks(fn: Callable, tree: Any, chunk: int):
    """``concat([fn(tree[i:i+chunk]) for each chunk])`` with one compiled body."""
    body, rest, full, remainder = _split(tree, chunk)
    pieces = []
    if full:
        mapped = jax.lax.map(fn, body)
        pieces.append(jax.tree_util.tree_map(lambda a: a.reshape((full,) + a.shape[2:]), mapped))
    if remainder:
        pieces.append(fn(rest))
    if len(pieces) == 1:
        return pieces[0]
    return jax.tree_util.tree_map(lambda *p: jnp.concatenate(p), *pieces)


def sum_chunks(fn: Callable, tree: Any, chunk: int):
    """``sum(fn(tree[i:i+chunk]) for each chunk)``, accumulated by a scan."""
    body, rest, full, remainder = _split(tree, chunk)
    total = None
    if full:
        first = jax.tree_util.tree_map(lambda a: a[0], body)
        others = jax.tree_util.tree_map(lambda a: a[1:], body)
        total = fn(first)

        def step(carry, piece):
            return jax.tree_util.tree_map(jnp.add, carry, fn(piece)), None

        if full > chunk:
            total, _ = jax.lax.scan(step, total, others)
    if remainder:
        tail = fn(rest)
        total = tail if total is None else jax.tree_util.tree_map(jnp.add, total, tail)
    return total
