"""The generalization bound of docs/theory.md §4, from orbit covering numbers.

For the class ``F(L, S, ε)`` of ``L``-Lipschitz models with outputs in
``[−M, M]^{d_y}`` and sup defect ``E_f(s) ≤ ε`` on ``S``, a loss with range
``[0, B]`` that is ``L_ℓ``-Lipschitz in the prediction, and a sample of ``n``
inputs, with probability ``≥ 1 − δ`` for every ``f`` in the class::

    R(f) ≤ R̂_n(f) + 2 R̂ad_n(H) + 3B √(log(2K/δ) / (2n))

(``K`` candidate classes fixed before the data, union bound). The entropy of
the loss class obeys ``log N(H, u) ≤ log N(F, u/L_ℓ)`` and the entropy lemma::

    log N(F, L r + ε + η√d_y/2) ≤ N_S(X_n, r) · d_y · log ⌈2M/η⌉

**The entropy staircase.** The grid of output values is parametrized by its
number of cells per coordinate ``m`` (``η = 2M/m``, cell midpoints), over the
fixed integers :data:`GRID_CELLS` from 1 to 10⁶. Each option (radius ``r_k``,
cells ``m``, symmetric or not) certifies the value ``N_k · d_y · log m`` at
every loss scale ``u ≥ L_ℓ (L r_k [+ ε] + M√d_y/m)`` (``+ ε`` and ``N_S`` for the
symmetric options; no ``ε`` and ``N_{e}`` for the others). Radius 0 with count
``n`` is always an option. The entropy bound ``φ̂(u)`` is the minimum over the
options available at ``u``: a non-increasing staircase.

**Discrete chaining** (``chaining="discrete"``, the default; docs/theory.md §4).
With ``D = B/2`` the radius of ``H`` around the constant ``B/2`` in ``L²(P_n)``
and any chain ``D = ε₀ > ε₁ > … > ε_N``::

    R̂ad_n(H) ≤ ε_N + Σ_{j=1..N} (ε_j + ε_{j−1}) √(2(φ̂(ε_j) + φ̂(ε_{j−1}))/n)

(Massart's lemma per link; the empty chain gives the cap ``R̂ad_n(H) ≤ D``).
Between breakpoints ``φ̂`` is constant and the cost increases with each ``ε_j``,
so the best chain uses breakpoints only; a dynamic program over the
staircase's breakpoints (``O(P²)``, ``P ≤`` :data:`MAX_CHAIN_NODES`) finds it.
``chaining="dudley"`` is the continuous form
``inf_α 4α + (12/√n) ∫_α^{D} √φ̂`` (computed exactly on the staircase), kept
for comparison: it is looser, and can exceed ``D``.

**Smoothness in ε.** The breakpoints of the symmetric options move linearly
with ε and the entropy values do not, so both forms are continuous and
piecewise linear in ε; ``jax.grad`` in ε exists almost everywhere and equals
the finite-difference slope between kinks. Non-decreasing in ε; at ε = 0 the
equivariant bound; for ``ε ≥ B/(2L_ℓ)`` the unconstrained one.

**Covers.** The sample's covers (:mod:`jaxsym.covering`), optionally combined
with a fixed-domain cover (``domain=``): both cover the sample, so the smaller
count is valid with no union bound.

**What "certified" requires** (docs/theory.md §4): ``L``, ``M``, the candidate
sets, the ε grid and any domain are fixed before the data; ``f ∈ F(L, S, ε)``
needs ``E_f(s) ≤ ε`` on the support of μ (a sample max certifies nothing;
exactly equivariant models ``Q_G f`` have ε = 0); ``L`` must be certified (e.g.
a product of spectral norms); the loss must be bounded (clip labels). With
estimated inputs the result is an *estimate of the bound*. A value ``≥ B`` is
vacuous (``R ≤ B`` holds trivially). In jaxsym this *theory bound* is
reported, not used to choose: the choice is :func:`jaxsym.choose_symmetry`'s,
and a trained model's certificate is :func:`jaxsym.held_out_bound` on
held-out data (§9).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.validation import (
    check_batch,
    check_choice,
    check_finite,
    check_nonnegative,
    check_positive,
    is_concrete,
    positive_int,
)
from jaxsym.constants import BoundConstants, check_constants
from jaxsym.covering import (
    CoveringTable,
    Domain,
    default_radii,
    nested_covering_numbers,
    tables_from_counts,
)
from jaxsym.groups import TransformationSet, identity_elements

__all__ = [
    "GRID_CELLS",
    "MAX_CHAIN_NODES",
    "GeneralizationBound",
    "bound_tables",
    "default_bound_radii",
    "generalization_bound",
    "generalization_bound_from_table",
]

#: Numbers of grid cells per output coordinate tried by the entropy lemma.
GRID_CELLS = np.unique(np.round(np.geomspace(1, 1e6, 200)).astype(np.int64))
#: Most breakpoints the chaining program keeps (an even subset when there are more;
#: any subset of breakpoints still gives valid chains).
MAX_CHAIN_NODES = 1024


class GeneralizationBound(NamedTuple):
    """The §4 bound on ``R(f) − R̂_n(f)`` and its parts (docs/theory.md §4).

    A certificate only when its inputs are (module docstring: constants fixed
    before the data and certified, candidate classes fixed, ε exact); with
    estimated constants or a sample ε it is an **estimate**.

    Attributes:
        total: ``complexity + confidence``.
        complexity: ``2 R̂ad_n(H)``.
        confidence: ``3B √(log(2K/δ) / (2n))``.
        rademacher: the chaining bound on ``R̂ad_n(H)`` (at most ``B/2`` for
            discrete chaining).
        alpha: the finest scale of the optimal chain (``ε_N``; Dudley's ``α``).
        scales: ``(P,)`` sorted loss scales ``u_j`` where the entropy bound steps.
        entropy: ``(P,)`` the entropy bound ``log N(H, u)`` on ``[u_j, u_{j+1})``
            (non-increasing).
        loss_range: ``B``; the bound is vacuous when ``total ≥ B``.
    """

    total: jax.Array
    complexity: jax.Array
    confidence: jax.Array
    rademacher: jax.Array
    alpha: jax.Array
    scales: jax.Array
    entropy: jax.Array
    loss_range: jax.Array

    def tightness(self, gap) -> jax.Array:
        """The ratio ``total / gap`` of the bound to a measured gap ``R(f) − R̂_n(f)``.

        ``≥ 1`` whenever the bound holds; ``inf`` for a gap ``≤ 0``.
        """
        check_finite("gap", gap)
        gap = jnp.asarray(gap, jnp.result_type(self.total))
        return jnp.where(gap > 0, self.total / jnp.where(gap > 0, gap, 1.0), jnp.inf)

    @property
    def vacuous(self) -> jax.Array:
        """Whether ``total ≥ B`` (the trivial bound ``R − R̂_n ≤ B`` is then as good)."""
        return self.total >= self.loss_range


# ----------------------------------------------------------------------------- staircase


def _check_table(table, name: str) -> None:
    """A :class:`CoveringTable` as documented: raise naming the field and the values at fault.

    Radii finite, > 0 and strictly increasing; counts integers in ``[1, n]``,
    non-increasing in the radius; ``n`` and ``|S|`` positive integers. Traced
    fields are not checked.
    """
    if not isinstance(table, CoveringTable):
        raise ValueError(
            f"{name} must be a CoveringTable (see jaxsym.covering); got {table!r:.80}."
        )
    radii, counts = np.shape(table.radii), np.shape(table.counts)
    if len(radii) != 1 or radii != counts or radii[0] == 0:
        raise ValueError(
            f"{name}: radii and counts must be non-empty 1-D arrays of one length; "
            f"got shapes {radii} and {counts}."
        )
    for field in ("num_points", "group_size"):
        value = getattr(table, field)
        if is_concrete(value):
            if np.ndim(value) != 0 or not float(value).is_integer():
                raise ValueError(f"{name}.{field} must be a positive integer; got {value!r:.40}.")
            positive_int(f"{name}.{field}", int(value))
    if is_concrete(table.radii):
        r = np.asarray(table.radii, np.float64)
        check_positive(f"{name}.radii", r)
        if np.any(np.diff(r) <= 0):
            raise ValueError(f"{name}.radii must be strictly increasing; got {_short(r)}.")
    if is_concrete(table.counts):
        c = np.asarray(table.counts, np.float64)
        check_finite(f"{name}.counts", c)
        if np.any(c != np.round(c)) or np.any(c < 1):
            raise ValueError(f"{name}.counts must be integers ≥ 1; got {_short(c)}.")
        if is_concrete(table.num_points) and np.any(c > table.num_points):
            raise ValueError(
                f"{name}.counts must be ≤ num_points = {int(table.num_points)} (a sample of n "
                f"points is covered by n balls); got {_short(c)}."
            )
        if np.any(np.diff(c) > 0):
            raise ValueError(
                f"{name}.counts must be non-increasing in the radius; got {_short(c)}."
            )
    sample = table.fingerprint
    if (
        sample is not None
        and is_concrete((sample, table.num_points))
        and int(sample[0]) != int(table.num_points)
    ):
        raise ValueError(
            f"{name}.num_points is {int(table.num_points)} but its counts were computed on "
            f"a sample of {int(sample[0])} points."
        )


def _check_pair(table: CoveringTable, trivial: CoveringTable) -> None:
    """``table`` (of S ∋ e) and ``trivial_table`` (of {e}) must describe one sample."""
    if is_concrete(trivial.group_size) and int(trivial.group_size) != 1:
        raise ValueError(
            f"trivial_table must be the table of {{e}} (group_size 1); got group_size "
            f"{int(trivial.group_size)}."
        )
    if not is_concrete((table, trivial)):
        return
    prints = (table.fingerprint, trivial.fingerprint)
    if None not in prints and tuple(map(int, prints[0])) != tuple(map(int, prints[1])):
        raise ValueError(
            "table and trivial_table were computed on different samples (fingerprints "
            f"{tuple(map(int, prints[0]))} and {tuple(map(int, prints[1]))}); build both "
            "from one sample, e.g. with bound_tables(x, group, radii)."
        )
    if int(table.num_points) != int(trivial.num_points):
        raise ValueError(
            f"table and trivial_table must be built on the same sample; got num_points "
            f"{int(table.num_points)} and {int(trivial.num_points)}."
        )
    radii, other = np.asarray(table.radii, np.float64), np.asarray(trivial.radii, np.float64)
    if radii.shape != other.shape or not np.allclose(radii, other, rtol=1e-6, atol=0):
        raise ValueError(
            f"table and trivial_table must be built on the same radii; got {_short(radii)} "
            f"and {_short(other)}."
        )
    counts, free = np.asarray(table.counts), np.asarray(trivial.counts)
    if np.any(counts > free):
        raise ValueError(
            "table and trivial_table must describe the same sample: orbits of S ∋ e cover it "
            f"with no more balls than {{e}}, but table.counts {_short(counts)} exceed "
            f"trivial_table.counts {_short(free)}."
        )


def _short(values) -> str:
    return np.array2string(np.asarray(values), precision=4, threshold=8, separator=", ")


def _options(table: CoveringTable, shift, lipschitz, output_bound, output_dim: int):
    """Thresholds ``τ = L r + shift + M√d_y/m`` and values ``N·d_y·log m`` of all options."""
    dtype = jnp.result_type(jnp.asarray(table.radii).dtype, jnp.float32)
    radii = jnp.concatenate([jnp.zeros((1,), dtype), jnp.asarray(table.radii, dtype)])
    num_points = jnp.asarray(table.num_points, dtype)
    counts = jnp.concatenate([num_points[None], jnp.asarray(table.counts, dtype)])
    counts = jnp.minimum(counts, num_points)
    cells = jnp.asarray(GRID_CELLS, dtype)
    half_step = (
        output_bound * jnp.sqrt(jnp.asarray(output_dim, dtype)) / cells
    )  # η√d_y/2 with η = 2M/m
    thresholds = lipschitz * radii[:, None] + shift + half_step[None, :]
    values = counts[:, None] * output_dim * jnp.log(cells)[None, :]
    return thresholds.reshape(-1), values.reshape(-1)


def _dudley(scales, entropy, upper, num_points):
    """``inf_α 4α + (12/√n) ∫_α^U √φ̂`` on the sorted staircase (exact; the old form)."""
    clipped = jnp.where(scales < upper, scales, upper)  # no split gradient at ties
    widths = jnp.concatenate([clipped[1:], upper[None]]) - clipped
    pieces = jnp.sqrt(entropy) * widths
    tails = jnp.cumsum(pieces[::-1])[::-1]  # ∫_{u_j}^{U} √φ̂
    objective = 4 * clipped + 12 / jnp.sqrt(num_points) * tails
    best = jnp.argmin(objective)
    return objective[best], clipped[best]


def _discrete_chain(scales, entropy, radius, num_points, max_nodes: int = MAX_CHAIN_NODES):
    """Best chain over the staircase's breakpoints: ``(R̂ad bound, finest scale)``.

    ``scales`` sorted ascending with ``entropy`` the staircase value there
    (non-increasing). Nodes are the root ``(D, 0)`` and the breakpoints below
    ``D`` where the staircase steps down; ``V_k = min_{i<k} V_i + (s_i + s_k)
    √(2(φ_i + φ_k)/n)`` in decreasing scale order, answer ``min_k V_k + s_k``
    (``k = 0``: the cap ``D``). Unused node slots are copies of the root.
    """
    dtype = scales.dtype
    steps = jnp.concatenate([jnp.ones((1,), bool), entropy[1:] < entropy[:-1]])
    useful = steps & (scales < radius)
    index = _true_indices(useful)
    count = jnp.sum(useful)
    # More breakpoints than ``max_nodes``: keep an even subset, the coarsest and the
    # finest included (any subset of breakpoints still gives valid chains).
    slots = jnp.arange(max_nodes)
    spread = jnp.round(slots * (count - 1) / jnp.maximum(max_nodes - 1, 1)).astype(index.dtype)
    positions = jnp.where(count > max_nodes, spread, slots)
    padded = jnp.concatenate([index, jnp.full((max_nodes,), -1, index.dtype)])
    index = jnp.where(slots < count, padded[positions], -1)
    valid = index >= 0
    safe = jnp.where(valid, index, 0)
    node_s = jnp.where(valid, scales[safe], radius)[::-1]
    node_phi = jnp.where(valid, entropy[safe], 0.0)[::-1]
    node_s = jnp.concatenate([jnp.reshape(radius, (1,)).astype(dtype), node_s])
    node_phi = jnp.concatenate([jnp.zeros((1,), dtype), node_phi])
    size = node_s.shape[0]
    iota = jnp.arange(size)
    big = jnp.asarray(jnp.finfo(dtype).max / 4, dtype)

    def step(values, k):
        links = (node_s + node_s[k]) * jnp.sqrt(2 * (node_phi + node_phi[k]) / num_points)
        cost = jnp.where(iota < k, values + links, big)
        return values.at[k].set(jnp.min(cost)), None

    values = jnp.full((size,), big, dtype).at[0].set(0.0)
    values, _ = jax.lax.scan(step, values, jnp.arange(1, size))
    totals = values + node_s
    best = jnp.argmin(totals)
    return totals[best], node_s[best]


def _staircase(scales, values):
    """Sort the options by scale; the staircase value at each is the running minimum."""
    order = jnp.argsort(scales)
    return scales[order], _running_min(values[order])


# Two sequential scans stand in for ``jax.lax.cummin`` and ``jnp.nonzero(size=n)``: the
# same values (a minimum and a compaction are exact), and on XLA:CPU the parallel-prefix
# forms of those take most of the bound's compile time.


def _running_min(values):
    """``jax.lax.cummin(values)`` of a 1-D array, by one sequential scan."""

    def step(low, value):
        low = jnp.minimum(low, value)
        return low, low

    return jax.lax.scan(step, jnp.asarray(jnp.inf, values.dtype), values)[1]


def _true_indices(mask):
    """``jnp.nonzero(mask, size=len(mask), fill_value=-1)[0]`` by one sequential scan."""
    size = mask.shape[0]
    fill = jnp.full((size,), -1, jnp.int32)

    def step(state, i):
        count, out = state
        out = jax.lax.dynamic_update_index_in_dim(out, jnp.where(mask[i], i, out[count]), count, 0)
        return (count + mask[i].astype(jnp.int32), out), None

    (_, out), _ = jax.lax.scan(step, (jnp.int32(0), fill), jnp.arange(size, dtype=jnp.int32))
    return out


# ----------------------------------------------------------------------------- the bound


def generalization_bound_from_table(
    table: CoveringTable,
    trivial_table: CoveringTable | None = None,
    *,
    constants: BoundConstants,
    eps=0.0,
    num_levels: int = 1,
    chaining: str = "discrete",
) -> GeneralizationBound:
    """The §4 bound from precomputed covering tables; jit- and grad-friendly in ε.

    ``Gen_n = 2 R̂ad_n(H) + 3B √(log(2K/δ)/(2n))`` with ``R̂ad_n(H)`` bounded by
    chaining on the entropy staircase (module docstring, docs/theory.md §4). Pure
    ``jnp``: ``eps`` and the numbers in ``constants`` may be traced (e.g. inside
    ``jax.grad``); the bound is piecewise linear in ε.

    Args:
        table: covering numbers ``N_S(X_n, r)`` of the symmetric set ``S``.
        trivial_table: covering numbers ``N_{e}(X_n, r)`` of the same sample, or
            ``None`` to use only the symmetric entropy (the equivariant bound
            at ε = 0; pass the trivial table as ``table`` for the unconstrained bound).
        constants: the :class:`~jaxsym.constants.BoundConstants`.
        eps: sup defect ``ε ≥ 0`` of the class on ``S``.
        num_levels: ``K``, the number of candidate classes in the union bound.
        chaining: ``"discrete"`` (best chain over breakpoints, capped at ``B/2``)
            or ``"dudley"`` (the continuous integral, for comparison).

    Returns:
        A :class:`GeneralizationBound`.

    Raises:
        ValueError: on out-of-range (concrete) arguments or a malformed table: radii
            not finite, positive and strictly increasing; counts not integers in
            ``[1, n]`` or increasing in the radius; ``table`` and ``trivial_table``
            with different ``n`` or radii, ``table.counts > trivial_table.counts``,
            or a ``trivial_table`` whose ``group_size`` is not 1.
    """
    _check_table(table, "table")
    if trivial_table is not None:
        _check_table(trivial_table, "trivial_table")
        _check_pair(table, trivial_table)
    constants = check_constants(constants)
    check_nonnegative("eps", eps)
    num_levels = positive_int("num_levels", num_levels)
    check_choice("chaining", chaining, ("discrete", "dudley"))
    lipschitz, output_bound, loss, output_dim, delta = constants

    def counts(t: CoveringTable):
        return (t.radii, t.counts, t.num_points)

    return _bound(
        counts(table),
        None if trivial_table is None else counts(trivial_table),
        eps,
        (lipschitz, output_bound, output_dim, loss.loss_range, loss.loss_lipschitz),
        2 * num_levels / delta,  # the union bound's ratio, in the caller's arithmetic
        chaining=chaining,
    )


@functools.partial(jax.jit, static_argnames=("chaining",))
def _bound(table, trivial, eps, numbers, union, chaining: str) -> GeneralizationBound:
    """The bound of :func:`generalization_bound_from_table` on checked inputs, compiled once.

    ``table`` and ``trivial`` are ``(radii, counts, num_points)`` (``trivial`` may be
    ``None``); ``numbers`` are ``(L, M, d_y, B, L_ℓ)``; ``union`` is ``2K/δ``. Every
    number is an argument (traced), so tables of one length and constants of any
    value share one compilation.
    """
    lipschitz, output_bound, output_dim, loss_range, loss_lipschitz = numbers
    table = CoveringTable(*table, group_size=1)
    dtype = jnp.result_type(jnp.asarray(table.radii).dtype, jnp.float32)
    eps = jnp.asarray(eps, dtype)
    loss_range = jnp.asarray(loss_range, dtype)
    thresholds, values = _options(table, eps, lipschitz, output_bound, output_dim)
    if trivial is not None:
        trivial = CoveringTable(*trivial, group_size=1)
        extra_t, extra_v = _options(trivial, 0.0, lipschitz, output_bound, output_dim)
        thresholds = jnp.concatenate([thresholds, extra_t])
        values = jnp.concatenate([values, extra_v])
    num_points = jnp.asarray(table.num_points, dtype)
    radius = loss_range / 2
    scales, entropy = _staircase(loss_lipschitz * thresholds, values)
    if chaining == "discrete":
        rademacher, alpha = _discrete_chain(scales, entropy, radius, num_points)
    else:
        rademacher, alpha = _dudley(scales, entropy, radius, num_points)
    confidence = 3 * loss_range * jnp.sqrt(jnp.log(union) / (2 * num_points))
    complexity = 2 * rademacher
    return GeneralizationBound(
        total=complexity + confidence,
        complexity=complexity,
        confidence=confidence,
        rademacher=rademacher,
        alpha=alpha,
        scales=scales,
        entropy=entropy,
        loss_range=loss_range,
    )


def default_bound_radii(x: jax.Array, constants: BoundConstants) -> np.ndarray:
    """30 geometric radii up to the largest scale where a cover can still lower the entropy.

    Beyond ``r_max = min(M √d_y, B / (2 L_ℓ)) / L`` every class of ``L``-Lipschitz
    predictors into ``[−M, M]^{d_y}`` is within the loss's resolution of one
    function, so larger radii add nothing to the entropy integral (docs/theory.md §4);
    the grid is :func:`jaxsym.covering.default_radii` capped there.

    Args:
        x: ``(n, *example)`` sample.
        constants: the bound's constants.
    """
    lipschitz = float(constants.lipschitz)
    loss = constants.loss
    reach = min(
        float(constants.output_bound) * math.sqrt(int(constants.output_dim)),
        float(loss.loss_range) / (2 * float(loss.loss_lipschitz)),
    )
    cap = reach / lipschitz if lipschitz > 0 else None
    return default_radii(x, 30, max_radius=cap)


def _bound_radii(radii) -> np.ndarray:
    """``(K,)`` finite radii ``≥ 0``, as the sorted distinct positive ones (0 is built in)."""
    if np.ndim(radii) > 1:
        raise ValueError(f"radii must be a 1-D array; got shape {np.shape(radii)}.")
    values = np.asarray(radii, np.float64).reshape(-1)
    check_nonnegative("radii", values)
    values = np.unique(values[values > 0].astype(np.float32)).astype(np.float64)  # as stored
    if values.size == 0:
        raise ValueError(f"radii must hold at least one radius > 0; got {_short(radii)}.")
    return values


def bound_tables(
    x: jax.Array,
    group: TransformationSet,
    radii,
    *,
    domain: Domain | None = None,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
) -> tuple[CoveringTable, CoveringTable]:
    """Covering tables for ``group`` and for ``{e}`` of one sample, from one traversal each.

    Args:
        x: ``(n, *example)`` sample.
        group: the symmetric set.
        radii: ``(K,)`` finite radii ``≥ 0``; sorted, repeats and zeros dropped
            (radius 0 with count ``n`` is always an option of the bound).
        domain: optional :class:`~jaxsym.covering.Domain` (fixed before the data)
            whose cover is used where it is smaller.
        block_size: as in :func:`jaxsym.covering.covering_numbers`.
        method: as in :func:`jaxsym.covering.covering_numbers`.
        mesh: as in :func:`jaxsym.covering.covering_numbers`.

    Returns:
        ``(table_S, table_e)``; ``table_S.counts ≤ table_e.counts``.
    """
    x = check_batch(group, x, "x")
    stages = [np.zeros((0,), np.int64), np.arange(group.size)]
    radii = _bound_radii(radii)
    counts = nested_covering_numbers(
        x, group, radii, stages, block_size=block_size, method=method, mesh=mesh, domain=domain
    )
    size = group.size + (0 if len(identity_elements(group, x)) else 1)
    trivial, symmetric = tables_from_counts(radii, counts, x.shape[0], [1, size], sample=x)
    return symmetric, trivial


def generalization_bound(
    x: jax.Array,
    group: TransformationSet,
    constants: BoundConstants,
    *,
    eps=0.0,
    num_levels: int = 1,
    radii=None,
    chaining: str = "discrete",
    domain: Domain | None = None,
    block_size: int | None = None,
    method: str = "auto",
    mesh=None,
) -> GeneralizationBound:
    """Certified generalization bound for ``F(L, S, ε)`` on the sample ``x`` (docs/theory.md §4).

    With probability ``≥ 1 − δ``, every ``f`` with ``Lip(f) ≤ L``, outputs in
    ``[−M, M]^{d_y}`` and ``E_f(s) ≤ ε`` for all ``s ∈ S`` (on the support of μ)
    has ``R(f) ≤ R̂_n(f) + total``. Computes the covering tables of ``S`` and of
    ``{e}`` (:func:`bound_tables`) and calls :func:`generalization_bound_from_table`.
    See the module docstring for what "certified" requires of the inputs.

    Args:
        x: ``(n, *example)`` training inputs.
        group: the symmetric set (a group, subgroup or any finite subset); a set
            of one element (``{e}``) gives the unconstrained bound and ignores ε.
        constants: the :class:`~jaxsym.constants.BoundConstants`.
        eps: sup defect ``ε`` of the class on ``group``.
        num_levels: ``K`` classes in the union bound.
        radii: covering radii; ``None`` is a geometric grid of 30 up to
            ``min(M√d_y, B/(2L_ℓ))/L`` (data-dependent radii are free: the
            covering numbers are a deterministic function of the sample).
        chaining: ``"discrete"`` or ``"dudley"`` (see the module docstring).
        domain: optional :class:`~jaxsym.covering.Domain` fixed before the data.
        block_size: as in :func:`jaxsym.covering.covering_numbers`.
        method: as in :func:`jaxsym.covering.covering_numbers`.
        mesh: as in :func:`jaxsym.covering.covering_numbers`.

    Returns:
        A :class:`GeneralizationBound`.
    >>> import jax
    >>> from jaxsym import groups
    >>> from jaxsym.constants import BoundConstants, squared_loss_constants
    >>> x = jax.random.normal(jax.random.key(0), (500, 2))
    >>> constants = BoundConstants(1.0, 1.0, squared_loss_constants(1.0, 1, 1.0), output_dim=1)
    >>> symmetric = generalization_bound(x, groups.cyclic_rotations(8), constants).total
    >>> plain = generalization_bound(x, groups.cyclic_rotations(1), constants).total
    >>> bool(symmetric <= plain)  # the quotient is smaller (§4)
    True
    """
    x = check_batch(group, x, "x")
    constants = check_constants(constants)
    check_nonnegative("eps", eps)
    if radii is None:
        radii = default_bound_radii(x, constants)
    symmetric, trivial = bound_tables(
        x, group, radii, domain=domain, block_size=block_size, method=method, mesh=mesh
    )
    options = dict(constants=constants, num_levels=num_levels, chaining=chaining)
    if symmetric.group_size == 1 or len(identity_elements(group, x)) == group.size:
        return generalization_bound_from_table(trivial, None, eps=0.0, **options)
    return generalization_bound_from_table(symmetric, trivial, eps=eps, **options)
