"""Evaluating a model on the orbits of a batch, chunk by chunk over the group.

Following the measured baselines (performance-notes.md), the model is never
vmapped over the group axis: a chunk of ``c`` elements transforms the batch
into ``B·c`` inputs folded into the batch axis (batch-major, so that a batch
sharded over devices stays sharded), calls the model once, and
:func:`jax.lax.map` / :func:`jax.lax.scan` runs over the chunks, so that peak
memory grows with the chunk, not with ``|G|``.

The automatic chunk size is a static rule evaluated at trace time (so it also
works inside a user's ``jit``/``grad``): trace the model once more with
:func:`jax.make_jaxpr`, add up the bytes of its intermediate values per example,
and give each call as many rows as fit a byte budget
(:data:`ROW_BYTES_BUDGET`), capped at :data:`MAX_ROWS_PER_CALL` rows (the
budget and the cap come from the measurements in ``benchmarks/run.py``: a few
hundred images per call for a small CNN, a few thousand rows for small MLPs).
Chunks are balanced, so ``|G|`` splits into equal chunks whenever possible;
otherwise the last chunk is padded with the identity and masked, so that every
chunk runs the same compiled body inside one scan.

Under differentiation the chunk body is rematerialized (:func:`jax.checkpoint`),
so gradients of the averages (docs/theory.md §3) and defects (§2) also run in memory
bounded by the chunk, not by ``|G|``. One exception, for speed: convolutional
models on the CPU backend with at most :data:`MAX_UNROLLED_CHUNKS` chunks take
their derivatives in an unrolled loop (:func:`plan_chunks` says why).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.validation import check_model_output
from jaxsym.groups import TransformationSet

__all__: list[str] = []  # private module: the chunked hot path under averaging and defects

#: Rows per model call when the model's intermediates cannot be measured.
DEFAULT_ROWS_PER_CALL = 1024
#: Bytes of intermediate values (summed over the model's operations) per call.
ROW_BYTES_BUDGET = 64 * 2**20
#: At most this many rows (transformed examples) per model call.
MAX_ROWS_PER_CALL = 4096
#: At most this many chunks have their derivatives unrolled (see :func:`plan_chunks`).
MAX_UNROLLED_CHUNKS = 16
#: Backends on which derivatives of convolutional models are unrolled (see :func:`plan_chunks`).
UNROLL_BACKENDS = ("cpu",)


def _sub_jaxprs(eqn) -> list:
    subs = []
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                subs.append(item)
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                subs.append(item.jaxpr)
    return subs


def _walk(jaxpr):
    """Every primitive equation of a jaxpr, nested jaxprs included."""
    for eqn in jaxpr.eqns:
        subs = _sub_jaxprs(eqn)
        if subs:
            for sub in subs:
                yield from _walk(sub)
        else:
            yield eqn


def _intermediate_bytes(jaxpr) -> int:
    """Bytes of all values produced by the primitive operations of a jaxpr."""
    total = 0
    for eqn in _walk(jaxpr):
        for var in eqn.outvars:
            aval = getattr(var, "aval", None)
            if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                total += math.prod(aval.shape) * np.dtype(aval.dtype).itemsize
    return total


class ModelProfile(NamedTuple):
    """What the chunk rule needs to know of a model, read off its jaxpr.

    Attributes:
        row_bytes: bytes of intermediates per example, ``None`` if unknown.
        has_convolution: whether the model runs a convolution.
    """

    row_bytes: float | None
    has_convolution: bool


def model_profile(f: Callable, x: jax.Array) -> ModelProfile:
    """Traces ``f`` on a batch like ``x`` (no compilation, no execution).

    Works on tracers inside ``jit``/``grad``. A model that cannot be traced
    abstractly gets an empty profile (the real call raises the user's error).
    """
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    try:
        jaxpr = jax.make_jaxpr(f)(spec).jaxpr
    except Exception:  # the real call will raise the user's error, if any
        return ModelProfile(None, False)
    return ModelProfile(
        row_bytes=_intermediate_bytes(jaxpr) / max(x.shape[0], 1),
        has_convolution=any(eqn.primitive.name == "conv_general_dilated" for eqn in _walk(jaxpr)),
    )


def balanced_chunk(max_chunk: int, num_elements: int) -> int:
    """A chunk ``≤ max_chunk`` that splits ``num_elements`` evenly, or nearly.

    The largest divisor of ``num_elements`` not above ``max_chunk`` if it is at
    least half of ``max_chunk`` (no padding); otherwise the smallest chunk giving
    the fewest chunks, the last one padded by fewer elements than there are chunks.
    """
    max_chunk = max(1, min(int(max_chunk), num_elements))
    divisor = max(d for d in range(1, max_chunk + 1) if num_elements % d == 0)
    if 2 * divisor >= max_chunk:
        return divisor
    num_chunks = -(-num_elements // max_chunk)
    return -(-num_elements // num_chunks)


def resolve_chunk_size(
    chunk_size: int | None,
    num_elements: int,
    batch_size: int,
    row_bytes: float | None = None,
) -> int:
    """Elements per chunk: the user's choice, or the automatic rule (module docstring).

    Args:
        chunk_size: the user's chunk size, or ``None`` for automatic.
        num_elements: ``|G|``.
        batch_size: ``B``.
        row_bytes: intermediate bytes per example (:func:`model_profile`);
            ``None`` uses :data:`DEFAULT_ROWS_PER_CALL`.
    """
    if chunk_size is not None:
        return int(min(chunk_size, num_elements))
    if row_bytes is None or row_bytes <= 0:
        rows = DEFAULT_ROWS_PER_CALL
    else:
        rows = min(MAX_ROWS_PER_CALL, int(ROW_BYTES_BUDGET // row_bytes))
    return balanced_chunk(max(1, rows // max(batch_size, 1)), num_elements)


class ChunkPlan(NamedTuple):
    """How a loop over the group runs.

    Attributes:
        size: elements per chunk.
        unroll_derivatives: take derivatives chunk by chunk in a loop unrolled
            at trace time instead of through the scan (see :func:`plan_chunks`).
    """

    size: int
    unroll_derivatives: bool


def plan_chunks(
    chunk_size: int | None,
    f: Callable,
    group: TransformationSet,
    x: jax.Array,
    *,
    backend: str | None = None,
) -> ChunkPlan:
    """The chunk size (:func:`resolve_chunk_size`) and how to differentiate the loop.

    Values always come from one :func:`jax.lax.scan` over the chunks (on CPU
    the faster forward than unrolled chunks, ``benchmarks/run.py``). Derivatives are
    unrolled when the backend is the CPU, the model convolves, and there are
    2 to :data:`MAX_UNROLLED_CHUNKS` chunks: XLA:CPU rewrites convolutions
    into its fast (Eigen) form only outside loop bodies, so the transposed
    convolutions of a backward pass inside a scan run a naive kernel, an
    order of magnitude slower or worse. The price is memory: XLA recomputes
    the unrolled chunks side by side, so the backward pass holds about as much
    as one unchunked call.

    ``backend`` defaults to :func:`jax.default_backend`; unrolling happens only
    on the backends in :data:`UNROLL_BACKENDS`.
    """
    profile = model_profile(f, x)
    row_bytes = None if chunk_size is not None else profile.row_bytes
    size = resolve_chunk_size(chunk_size, group.size, x.shape[0], row_bytes)
    num_chunks = -(-group.size // size)
    unroll = (
        profile.has_convolution
        and 1 < num_chunks <= MAX_UNROLLED_CHUNKS
        and (backend or jax.default_backend()) in UNROLL_BACKENDS
    )
    return ChunkPlan(size, unroll)


def describe_output_action(group: TransformationSet) -> str:
    """Words for the output action of ``group``, for error messages."""
    action = group.output_action
    if action is None:
        return "the trivial action (invariant outputs)"
    describe = getattr(action, "describe", None)
    if callable(describe):
        try:
            return describe()
        except NotImplementedError:
            pass
    fn = getattr(action, "fn", action)
    return f"the custom output action {getattr(fn, '__name__', type(fn).__name__)}"


def output_spec(f: Callable, group: TransformationSet, x: jax.Array) -> jax.ShapeDtypeStruct:
    """The shape of ``f(x)``, checked up front from one :func:`jax.eval_shape`.

    Nothing is compiled or run. Checks, in this order, that ``f`` returns one
    array (pytree outputs are refused by name), that it is batched (leading axis
    ``B``, the user's own batch size), and that the group's output action can
    act on one output and returns the same shape.

    Raises:
        TypeError: if ``f`` returns a pytree (dict, tuple, …) instead of one array.
        ValueError: if the output is not batched, or the output action does not
            fit the output shape (the message names the action and both shapes).
    """
    spec = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.eval_shape(f, spec)
    check_model_output(y, x.shape[0])
    if group.is_invariant:
        return y
    example = tuple(y.shape[1:])
    intro = (
        f"f maps examples of shape {tuple(x.shape[1:])} to outputs of shape {example}, but "
        f"the output action of {group.name} ({describe_output_action(group)})"
    )
    advice = (
        "Use group.invariant() if the outputs should not transform, or a model whose "
        "outputs the action can transform."
    )
    checker = getattr(group.output_action, "check_example_shape", None)
    if callable(checker):
        try:
            checker(example, "an output")
        except ValueError as err:
            raise ValueError(f"{intro} cannot act on them: {err} {advice}") from None
    element = jax.tree_util.tree_map(
        lambda leaf: jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype), group.elements
    )
    try:
        moved = jax.eval_shape(group.act_out, element, jax.ShapeDtypeStruct(example, y.dtype))
    except Exception as err:  # the action's own error, re-raised with the shapes
        raise ValueError(
            f"{intro} fails on an output of that shape ({type(err).__name__}: {err}). {advice}"
        ) from err
    if not hasattr(moved, "shape") or tuple(moved.shape) != example:
        got = getattr(moved, "shape", type(moved).__name__)
        raise ValueError(
            f"{intro} returns shape {got} for an output of shape {example}; an output action "
            f"must map each output to an output of the same shape. {advice}"
        )
    return y


@jax.custom_jvp
def _values_with_tangents_of(values: jax.Array, other: jax.Array) -> jax.Array:
    """``values``, differentiated as ``other`` (the two agree in exact arithmetic)."""
    return values


@_values_with_tangents_of.defjvp
def _values_with_tangents_of_jvp(primals, tangents):
    return primals[0], tangents[1]


def fixes_examples(moved: jax.Array, x: jax.Array) -> jax.Array:
    """``(B, c)``: whether ``ρ_X(g_c) x_b`` is bitwise ``x_b`` (moved inputs ``(B, c, *example)``).

    Bitwise, so that ``-0.0`` and ``0.0`` differ; works on traced values.
    """
    flat = moved.reshape(moved.shape[:2] + (-1,))
    ref = jnp.asarray(x, moved.dtype).reshape(x.shape[0], 1, -1)
    if jnp.issubdtype(moved.dtype, jnp.floating):
        bits = jnp.dtype(f"uint{8 * moved.dtype.itemsize}")
        flat = jax.lax.bitcast_convert_type(flat, bits)
        ref = jax.lax.bitcast_convert_type(ref, bits)
    return jnp.all(flat == ref, axis=-1)


def model_on_orbits(
    f: Callable, group: TransformationSet, elements: Any, x: jax.Array, *, with_fixed=False
):
    """``f(ρ_X(g_c) x_b)`` for a chunk of c elements, shape ``(B, c, *out)``.

    The ``B·c`` transformed inputs are folded batch-major into one model call,
    so that a batch sharded over devices stays sharded. Errors quote the user's
    batch ``B`` and the chunk ``c`` that make up the stacked batch. With
    ``with_fixed``, also the ``(B, c)`` mask of :func:`fixes_examples`.
    """
    count = jax.tree_util.tree_leaves(elements)[0].shape[0]
    batch = x.shape[0]
    per_element = jax.vmap(group.act_in, in_axes=(0, None))
    moved = jax.vmap(per_element, in_axes=(None, 0))(elements, x)  # (B, c, *example)
    stacked = f"a batch of {batch * count} rows ({count} group elements × {batch} examples of x)"
    try:
        y = f(moved.reshape((batch * count,) + moved.shape[2:]))
    except Exception as err:
        err.add_note(f"jaxsym: raised while evaluating f on {stacked}; f must be batched.")
        raise
    if not hasattr(y, "shape"):
        check_model_output(y, batch * count)  # raises TypeError naming the pytree
    if len(y.shape) < 1 or y.shape[0] != batch * count:
        raise ValueError(
            f"f must be a batched callable: on {stacked} it returned shape {tuple(y.shape)}, "
            f"expected leading axis {batch * count}. A model must accept any batch size."
        )
    y = y.reshape((batch, count) + y.shape[1:])
    return (y, fixes_examples(moved, x)) if with_fixed else y


def reuse_where_fixed(y: jax.Array, fixed: jax.Array, fx: jax.Array) -> jax.Array:
    """``y`` (``(B, c, *out)``) with ``fx[b]`` (``f(x)``) wherever ``fixed[b, c]``.

    Where ``ρ_X(g) x_b`` is bitwise ``x_b``, ``f(ρ_X(g) x_b)`` and ``f(x_b)``
    agree in exact arithmetic, but XLA may round a ``B·c``-row call differently
    from a ``B``-row one (it does on some CPUs, and in bfloat16). Reading
    ``f(x)`` there makes the identity's defect ``f(x) − ρ_Y(e) f(x)`` exactly 0
    on every backend. Derivatives stay those of ``y`` (of ``f(ρ_X(g) x)``).
    """
    mask = fixed.reshape(fixed.shape + (1,) * (y.ndim - 2))
    reused = jnp.broadcast_to(jnp.asarray(fx, y.dtype)[:, None], y.shape)
    return jnp.where(mask, _values_with_tangents_of(reused, y), y)


def act_out_each(group: TransformationSet, elements: Any, y: jax.Array) -> jax.Array:
    """``ρ_Y(g_c) y[b, c]`` for outputs ``(B, c, *out)`` and a chunk of c elements."""
    if group.is_invariant:
        return y
    per_element = jax.vmap(group.act_out)  # over the chunk axis c
    return jax.vmap(per_element, in_axes=(None, 0))(elements, y)


def _chunked(tree: Any, chunk: int):
    """Pad the leading axes to a multiple of ``chunk`` and fold them into chunks.

    Padding repeats element 0 (the identity in every set of this package); the
    returned mask ``(num_chunks, chunk)`` is False there.

    Returns:
        ``(chunks, mask, size)``: the tree with leading axes
        ``(num_chunks, chunk)``, the validity mask, and the original size.
    """
    size = jax.tree_util.tree_leaves(tree)[0].shape[0]
    padded = -(-size // chunk) * chunk
    index = np.concatenate([np.arange(size), np.zeros(padded - size, dtype=np.int64)])
    mask = jnp.asarray(np.arange(padded) < size).reshape(-1, chunk)

    def fold(leaf):
        leaf = leaf if padded == size else leaf[index]
        return leaf.reshape((-1, chunk) + leaf.shape[1:])

    return jax.tree_util.tree_map(fold, tree), mask, size


def _rematerialized(fn: Callable, num_chunks: int) -> Callable:
    """``fn`` under :func:`jax.checkpoint` when there are several chunks.

    Under differentiation a loop would otherwise keep every chunk's activations
    for the backward pass (memory growing with ``|G|``); recomputing one chunk's
    forward pass instead keeps gradients in bounded memory, and on CPU it was
    not slower in the benchmarks.
    """
    return jax.checkpoint(fn, prevent_cse=False) if num_chunks > 1 else fn


def _take(tree: Any, i: int) -> Any:
    return jax.tree_util.tree_map(lambda a: a[i], tree)


def _combine(values: list, accumulate: bool) -> Any:
    if accumulate:
        return jax.tree_util.tree_map(lambda *v: sum(v[1:], v[0]), *values)
    return jax.tree_util.tree_map(lambda *v: jnp.stack(v), *values)


def _scan(fn: Callable, chunks: Any, accumulate: bool) -> Any:
    """``fn`` on every chunk in one :func:`jax.lax.scan`: summed, or stacked."""
    if not accumulate:
        return jax.lax.map(fn, chunks)

    def step(total, piece):
        return jax.tree_util.tree_map(jnp.add, total, fn(piece)), None

    out = jax.eval_shape(fn, _take(chunks, 0))
    zeros = jax.tree_util.tree_map(lambda o: jnp.zeros(o.shape, o.dtype), out)
    return jax.lax.scan(step, zeros, chunks)[0]


@partial(jax.custom_jvp, nondiff_argnums=(0, 1))
def _scan_unrolled_tangents(body: Callable, accumulate: bool, chunks: Any, *consts) -> Any:
    return _scan(lambda piece: body(piece, *consts), chunks, accumulate)


@_scan_unrolled_tangents.defjvp
def _scan_unrolled_tangents_jvp(body, accumulate, primals, tangents):
    chunks, *consts = primals
    chunk_tangents, *const_tangents = tangents
    out = _scan_unrolled_tangents(body, accumulate, chunks, *consts)
    num_chunks = jax.tree_util.tree_leaves(chunks)[0].shape[0]
    pieces = [
        jax.jvp(
            body,
            (_take(chunks, i), *consts),
            (_take(chunk_tangents, i), *const_tangents),
        )[1]
        for i in range(num_chunks)
    ]
    return out, _combine(pieces, accumulate)


def _over_chunks(fn: Callable, chunks: Any, accumulate: bool, unroll_derivatives: bool) -> Any:
    """``fn`` on each chunk (leading axis of ``chunks``), summed or stacked.

    The values come from one :func:`jax.lax.scan`. With ``unroll_derivatives``
    a custom JVP takes the derivatives chunk by chunk in a loop unrolled at
    trace time (reasons in :func:`plan_chunks`); being a JVP rule, it keeps
    forward and reverse mode, ``vmap`` and higher derivatives working.
    """
    num_chunks = jax.tree_util.tree_leaves(chunks)[0].shape[0]
    fn = _rematerialized(fn, num_chunks)
    if num_chunks == 1:
        value = fn(_take(chunks, 0))
        return value if accumulate else _combine([value], accumulate)
    if not unroll_derivatives:
        return _scan(fn, chunks, accumulate)
    body, consts = jax.closure_convert(fn, _take(chunks, 0))
    return _scan_unrolled_tangents(body, accumulate, chunks, *consts)


def map_chunks(fn: Callable, tree: Any, plan: ChunkPlan):
    """``concat([fn(tree[i:i+chunk]) for each chunk])``, one compiled body.

    ``fn`` maps a chunk of ``c`` elements to arrays with leading axis ``c``.
    A padded last chunk is computed and its padding dropped.
    """
    chunks, mask, size = _chunked(tree, plan.size)
    mapped = _over_chunks(fn, chunks, False, plan.unroll_derivatives)
    return jax.tree_util.tree_map(lambda a: a.reshape((mask.size,) + a.shape[2:])[:size], mapped)


def sum_chunks(fn: Callable, tree: Any, plan: ChunkPlan, axis: int = 1):
    """``Σ`` over all elements of ``fn(chunk)``, accumulated chunk by chunk.

    ``fn`` maps a chunk of ``c`` elements to an array (or a pytree of arrays)
    whose axis ``axis`` has length ``c`` (one slice per element); the slices of
    padding elements are masked out and the rest summed. One scan body, started
    from zeros (on CPU a model call outside the loop next to it ran slower).
    """
    chunks, mask, _ = _chunked(tree, plan.size)

    def reduce(piece_and_valid):
        piece, valid = piece_and_valid

        def masked_sum(values):
            shape = [1] * values.ndim
            shape[axis] = valid.shape[0]
            return jnp.sum(jnp.where(valid.reshape(shape), values, 0), axis=axis)

        return jax.tree_util.tree_map(masked_sum, fn(piece))

    return _over_chunks(reduce, (chunks, mask), True, plan.unroll_derivatives)
