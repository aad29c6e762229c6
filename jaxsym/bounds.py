"""Certified generalization bounds, approximation error and the trade-off (theory.md §4, §5).

**Generalization (§4).** For the class ``F(L, S, ε)`` of ``L``-Lipschitz models
with outputs in ``[−M, M]^{d_y}`` and sup defect ``E_f(s) ≤ ε`` on ``S``, a loss
with range ``[0, B]`` that is ``L_ℓ``-Lipschitz in the prediction, and a sample
of ``n`` inputs, with probability ``≥ 1 − δ`` for every ``f`` in the class::

    R(f) ≤ R̂_n(f) + 2 R̂ad_n(H) + 3B √(log(2K/δ) / (2n))

(``K`` candidate levels fixed before the data, union bound). The Rademacher
complexity is bounded by Dudley's integral over the entropy of the loss class,
``log N(H, u) ≤ log N(F, u/L_ℓ)``, and the entropy lemma::

    log N(F, L r + ε + η√d_y/2) ≤ N_S(X_n, r) · d_y · log ⌈2M/η⌉

How it is computed here (every step an upper bound):

* The grid of output values is parametrized by its number of cells per
  coordinate ``m`` (``η = 2M/m``, cell midpoints, theory.md §4), over a fixed
  set of integers :data:`GRID_CELLS` from 1 to 10⁶. Each option
  (radius ``r_k``, cells ``m``, symmetric or not) certifies the entropy value
  ``N_k · d_y · log m`` at every loss scale ``u ≥ L_ℓ (L r_k [+ ε] + M√d_y/m)``
  (``+ ε`` and ``N_S`` for the symmetric options, which need ``u > L_ℓ ε``;
  no ``ε`` and ``N_{e}`` for the non-symmetric ones). Radius 0 with count
  ``n`` is always an option.
* The entropy bound ``φ̂(u)`` is the minimum over the options available at
  ``u``: a non-increasing staircase (the running minimum of theory.md §4 comes
  for free). Dudley's integral of ``√φ̂`` is computed **exactly** — it is the
  left Riemann sum on the staircase's own breakpoints, so no discretization
  error is added — and ``inf_α [4α + (12/√n) ∫_α^{B/2} √φ̂]`` is attained at a
  breakpoint (the objective is convex and piecewise linear in ``α``), so it is
  exact too.
* **Smoothness in ε.** The breakpoints of the symmetric options move linearly
  with ε, so the bound is continuous and piecewise linear in ε, with kinks
  where breakpoints cross or the optimal α jumps; ``jax.grad`` in ε exists
  almost everywhere and equals the finite-difference slope between kinks.
  Non-decreasing in ε; at ε = 0 it equals the equivariant bound, and for
  ε ≥ B/(2L_ℓ) (all symmetric breakpoints past B/2) the unconstrained one.

**What "certified" requires** (theory.md §4): ``L``, ``M``, the candidate sets
and the ε grid are fixed before the data; ``f ∈ F(L, S, ε)`` needs ``E_f(s) ≤ ε``
on the support of μ (a sample max is a lower estimate and certifies nothing;
exactly equivariant models ``Q_G f`` have ε = 0); ``L`` must be certified
(e.g. a product of spectral norms); the loss must be bounded (clip labels).
With estimated inputs the result is an *estimate of the bound*.

**Approximation (§5)** and the **trade-off** ``Risk(ε) ≤ σ² + A(ε) + Gen_n(ε)``
are in :func:`approximation_error`, :func:`tradeoff`, :func:`optimal_level` and
the per-element :func:`optimal_subset`.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import (
    check_batch,
    check_choice,
    check_finite,
    check_nonnegative,
    check_positive,
    is_concrete,
)
from jaxsym.covering import (
    CoveringTable,
    _identity_elements,
    default_radii,
    nested_covering_numbers,
    tables_from_counts,
)
from jaxsym.groups import TransformationSet, cayley_table

#: Numbers of grid cells per output coordinate tried by the entropy lemma.
GRID_CELLS = np.unique(np.round(np.geomspace(1, 1e6, 200)).astype(np.int64))
#: Number of ε levels of the default grid of :func:`tradeoff` (plus η itself).
DEFAULT_NUM_LEVELS = 33


class GeneralizationBound(NamedTuple):
    """The certified bound on ``R(f) − R̂_n(f)`` and its parts (theory.md §4).

    Attributes:
        total: ``complexity + confidence``.
        complexity: ``2 R̂ad_n(H)``.
        confidence: ``3B √(log(2K/δ) / (2n))``.
        rademacher: the Dudley bound on ``R̂ad_n(H)``.
        alpha: the optimal lower limit ``α`` of Dudley's integral.
        scales: ``(P,)`` sorted loss scales ``u_j`` where the entropy bound steps.
        entropy: ``(P,)`` the entropy bound ``log N(H, u)`` on ``[u_j, u_{j+1})``
            (non-increasing).
    """

    total: jax.Array
    complexity: jax.Array
    confidence: jax.Array
    rademacher: jax.Array
    alpha: jax.Array
    scales: jax.Array
    entropy: jax.Array


class LossConstants(NamedTuple):
    """Range ``B`` and Lipschitz constant ``L_ℓ`` of a bounded loss (theory.md §4)."""

    loss_range: float
    loss_lipschitz: float


class ApproximationBounds(NamedTuple):
    """Lower and upper bounds on the best approximation error of the sup class (§5)."""

    lower: jax.Array
    upper: jax.Array


class TradeOff(NamedTuple):
    """The risk bound ``σ² + A(ε) + Gen_n(ε)`` over a grid of levels (theory.md §5).

    Attributes:
        eps: ``(K,)`` levels.
        approximation: ``(K,)`` ``A(ε)``.
        generalization: ``(K,)`` ``Gen_n(ε)`` (total of the §4 bound, union bound over K).
        total: ``(K,)`` ``σ² + A(ε) + Gen_n(ε)``.
    """

    eps: jax.Array
    approximation: jax.Array
    generalization: jax.Array
    total: jax.Array


class OptimalLevel(NamedTuple):
    """The bound-optimal level ``ε*`` on a grid (theory.md §5).

    Attributes:
        eps: ``ε*``.
        index: its index in the grid.
        total: the risk bound at ``ε*``.
        curve: the whole :class:`TradeOff`.
    """

    eps: jax.Array
    index: jax.Array
    total: jax.Array
    curve: TradeOff


class SubsetChoice(NamedTuple):
    """The bound-optimal symmetry subgroup from a data profile (theory.md §5).

    Attributes:
        mask: ``(|G|,)`` bool, the elements of the chosen subgroup.
        index: index of the chosen candidate.
        candidates: ``(K, |G|)`` bool masks of the nested subgroups considered.
        approximation: ``(K,)`` ``‖(I − Q_H) f*‖²`` for each candidate ``H``.
        generalization: ``(K,)`` the §4 bound for the exactly ``H``-invariant class.
        total: ``(K,)`` ``σ² + approximation + generalization``.
    """

    mask: np.ndarray
    index: int
    candidates: np.ndarray
    approximation: jax.Array
    generalization: jax.Array
    total: jax.Array


# ----------------------------------------------------------------------------- loss constants


def squared_loss_constants(
    output_bound: float, output_dim: int, label_bound: float
) -> LossConstants:
    """Constants of the squared loss ``‖ŷ − y‖²`` with ``ŷ ∈ [−M, M]^{d_y}``, ``‖y‖ ≤ Y``.

    ``B = (M√d_y + Y)²`` and ``L_ℓ = 2(M√d_y + Y)`` (theory.md §4): the loss is
    Lipschitz in ``ŷ`` on the Euclidean ball of radius ``M√d_y``, which also
    holds the rotated grid values ``ρ_Y(s) q`` of the entropy lemma.

    Args:
        output_bound: ``M``.
        output_dim: ``d_y``.
        label_bound: ``Y`` (clip labels to it).
    """
    check_positive("output_bound", output_bound)
    _check_dim(output_dim)
    check_nonnegative("label_bound", label_bound)
    radius = float(output_bound) * math.sqrt(output_dim) + float(label_bound)
    return LossConstants(loss_range=radius**2, loss_lipschitz=2 * radius)


def ramp_loss_constants(margin: float) -> LossConstants:
    """Constants of the ramp loss ``ℓ(z) = clip(1 − z/γ, 0, 1)`` on a scalar margin.

    For binary labels ``y ∈ {−1, 1}`` and a scalar model output ``f(x)``, the
    margin is ``z = y f(x)``; the loss lies in ``[0, 1]`` and is ``1/γ``-Lipschitz
    in ``f(x)`` (``|y| = 1``). It upper-bounds the 0–1 loss, so the bound on its
    risk bounds the classification error (theory.md §4).

    Args:
        margin: ``γ > 0``.
    """
    check_positive("margin", margin)
    return LossConstants(loss_range=1.0, loss_lipschitz=1.0 / float(margin))


# ----------------------------------------------------------------------------- the §4 bound


def _check_dim(output_dim) -> None:
    if isinstance(output_dim, bool) or not isinstance(output_dim, (int, np.integer)):
        raise ValueError(f"output_dim must be a positive int; got {output_dim!r}.")
    if output_dim < 1:
        raise ValueError(f"output_dim must be a positive int; got {output_dim}.")


def _check_bound_args(
    lipschitz, output_bound, loss_lipschitz, loss_range, eps, delta, num_levels, output_dim
) -> None:
    check_nonnegative("lipschitz", lipschitz)
    check_positive("output_bound", output_bound)
    check_positive("loss_lipschitz", loss_lipschitz)
    check_positive("loss_range", loss_range)
    check_nonnegative("eps", eps)
    if is_concrete(delta):
        value = np.asarray(delta, dtype=np.float64)
        if not np.all((value > 0) & (value < 1)):
            raise ValueError(f"delta must lie in (0, 1); got {delta}.")
    if isinstance(num_levels, bool) or not isinstance(num_levels, (int, np.integer)):
        raise ValueError(f"num_levels must be a positive int; got {num_levels!r}.")
    if num_levels < 1:
        raise ValueError(f"num_levels must be a positive int; got {num_levels}.")
    _check_dim(output_dim)


def _check_table(table, name: str) -> None:
    if not isinstance(table, CoveringTable):
        raise ValueError(f"{name} must be a CoveringTable (see jaxsym.covering); got {table!r}.")
    radii, counts = np.shape(table.radii), np.shape(table.counts)
    if len(radii) != 1 or radii != counts or radii[0] == 0:
        raise ValueError(
            f"{name}: radii and counts must be non-empty 1-D arrays of one length; "
            f"got shapes {radii} and {counts}."
        )
    check_finite(f"{name}.radii", table.radii)


def _options(table: CoveringTable, shift, lipschitz, output_bound, output_dim: int):
    """Thresholds ``τ = L r + shift + M√d_y/m`` and values ``N·d_y·log m`` of all options."""
    dtype = jnp.result_type(jnp.asarray(table.radii).dtype, jnp.float32)
    radii = jnp.concatenate([jnp.zeros((1,), dtype), jnp.asarray(table.radii, dtype)])
    num_points = jnp.asarray(table.num_points, dtype)
    counts = jnp.concatenate([num_points[None], jnp.asarray(table.counts, dtype)])
    counts = jnp.minimum(counts, num_points)
    cells = jnp.asarray(GRID_CELLS, dtype)
    half_step = output_bound * math.sqrt(output_dim) / cells  # η√d_y/2 with η = 2M/m
    thresholds = lipschitz * radii[:, None] + shift + half_step[None, :]
    values = counts[:, None] * output_dim * jnp.log(cells)[None, :]
    return thresholds.reshape(-1), values.reshape(-1)


def _dudley(scales, values, upper, num_points):
    """``inf_α 4α + (12/√n) ∫_α^U √φ̂`` for the staircase of the options (exact)."""
    order = jnp.argsort(scales)
    scales, values = scales[order], values[order]
    entropy = jax.lax.cummin(values)
    clipped = jnp.where(scales < upper, scales, upper)  # no split gradient at ties
    widths = jnp.concatenate([clipped[1:], upper[None]]) - clipped
    pieces = jnp.sqrt(entropy) * widths
    tails = jnp.cumsum(pieces[::-1])[::-1]  # ∫_{u_j}^{U} √φ̂
    objective = 4 * clipped + 12 / jnp.sqrt(num_points) * tails
    best = jnp.argmin(objective)
    return objective[best], clipped[best], scales, entropy


def generalization_bound_from_table(
    table: CoveringTable,
    trivial_table: CoveringTable | None = None,
    *,
    lipschitz,
    output_bound,
    loss_lipschitz,
    loss_range,
    eps=0.0,
    delta=0.05,
    num_levels: int = 1,
    output_dim: int = 1,
) -> GeneralizationBound:
    """The certified §4 bound from precomputed covering tables; jit- and grad-friendly in ε.

    ``Gen_n = 2 R̂ad_n(H) + 3B √(log(2K/δ)/(2n))`` with
    ``R̂ad_n(H) ≤ inf_α [4α + (12/√n) ∫_α^{B/2} √(log N(H, u)) du]`` and the entropy
    staircase described in the module docstring (theory.md §4). Pure ``jnp``:
    ``eps`` (and the other numeric arguments) may be traced, e.g. inside
    ``jax.grad``; the bound is piecewise linear in ε.

    Args:
        table: covering numbers ``N_S(X_n, r)`` of the symmetric set ``S``.
        trivial_table: covering numbers ``N_{e}(X_n, r)`` of the same sample, or
            ``None`` to use only the symmetric entropy (the equivariant bound
            at ε = 0; pass the trivial table as ``table`` with ε = 0 for the
            unconstrained bound).
        lipschitz: ``L ≥ 0``.
        output_bound: ``M > 0`` (outputs in ``[−M, M]^{d_y}``).
        loss_lipschitz: ``L_ℓ > 0``.
        loss_range: ``B > 0`` (loss in ``[0, B]``).
        eps: sup defect ``ε ≥ 0`` of the class on ``S``.
        delta: failure probability in ``(0, 1)``.
        num_levels: ``K``, the number of candidate levels covered by the union bound.
        output_dim: ``d_y``.

    Returns:
        A :class:`GeneralizationBound`.

    Raises:
        ValueError: on malformed tables or out-of-range (concrete) arguments.
    """
    _check_table(table, "table")
    if trivial_table is not None:
        _check_table(trivial_table, "trivial_table")
    _check_bound_args(
        lipschitz, output_bound, loss_lipschitz, loss_range, eps, delta, num_levels, output_dim
    )
    dtype = jnp.result_type(jnp.asarray(table.radii).dtype, jnp.float32)
    eps = jnp.asarray(eps, dtype)
    loss_range = jnp.asarray(loss_range, dtype)
    thresholds, values = _options(table, eps, lipschitz, output_bound, output_dim)
    if trivial_table is not None:
        extra_t, extra_v = _options(trivial_table, 0.0, lipschitz, output_bound, output_dim)
        thresholds = jnp.concatenate([thresholds, extra_t])
        values = jnp.concatenate([values, extra_v])
    num_points = jnp.asarray(table.num_points, dtype)
    upper = loss_range / 2
    rademacher, alpha, scales, entropy = _dudley(
        loss_lipschitz * thresholds, values, upper, num_points
    )
    confidence = 3 * loss_range * jnp.sqrt(jnp.log(2 * num_levels / delta) / (2 * num_points))
    complexity = 2 * rademacher
    return GeneralizationBound(
        total=complexity + confidence,
        complexity=complexity,
        confidence=confidence,
        rademacher=rademacher,
        alpha=alpha,
        scales=scales,
        entropy=entropy,
    )


def _default_bound_radii(x, lipschitz, output_bound, loss_lipschitz, loss_range, output_dim):
    """Radii up to the largest scale where a cover can still lower the entropy."""
    lipschitz = float(lipschitz)
    reach = min(float(output_bound) * math.sqrt(output_dim), loss_range / (2 * loss_lipschitz))
    cap = reach / lipschitz if lipschitz > 0 else None
    return default_radii(x, 30, max_radius=cap)


def bound_tables(
    x: jax.Array,
    S: TransformationSet,
    radii,
    *,
    block_size: int | None = None,
) -> tuple[CoveringTable, CoveringTable]:
    """Covering tables for ``S`` and for ``{e}`` of one sample, from one distance pass.

    Args:
        x: ``(n, *example)`` sample.
        S: the symmetric set.
        radii: ``(K,)`` radii.
        block_size: rows per distance block.

    Returns:
        ``(table_S, table_e)``; ``table_S.counts ≤ table_e.counts``.
    """
    x = check_batch(S, x, "x")
    counts = nested_covering_numbers(
        x, S, radii, [np.zeros((0,), np.int64), np.arange(S.size)], block_size=block_size
    )
    size = S.size + (0 if _identity_elements(S, x[:64]) else 1)
    trivial, symmetric = tables_from_counts(radii, counts, x.shape[0], [1, size])
    return symmetric, trivial


def generalization_bound(
    x: jax.Array,
    S: TransformationSet,
    *,
    lipschitz,
    output_bound,
    loss_lipschitz,
    loss_range,
    eps=0.0,
    delta=0.05,
    num_levels: int = 1,
    output_dim: int = 1,
    radii=None,
    block_size: int | None = None,
) -> GeneralizationBound:
    """Certified generalization bound for ``F(L, S, ε)`` on the sample ``x`` (theory.md §4).

    With probability ``≥ 1 − δ``, every ``f`` with ``Lip(f) ≤ L``, outputs in
    ``[−M, M]^{d_y}`` and ``E_f(s) ≤ ε`` for all ``s ∈ S`` (on the support of μ)
    has ``R(f) ≤ R̂_n(f) + total``. Computes the covering tables of ``S`` and of
    ``{e}`` (:func:`bound_tables`) and calls :func:`generalization_bound_from_table`.
    See the module docstring for what "certified" requires of the inputs.

    Args:
        x: ``(n, *example)`` training inputs.
        S: the symmetric set (a group, subgroup or any finite subset);
            a set of one element (``{e}``) gives the unconstrained bound and
            ignores ε.
        lipschitz: ``L``.
        output_bound: ``M``.
        loss_lipschitz: ``L_ℓ``.
        loss_range: ``B``.
        eps: sup defect ``ε`` of the class on ``S``.
        delta: failure probability.
        num_levels: ``K`` levels in the union bound.
        output_dim: ``d_y``.
        radii: covering radii; ``None`` is a geometric grid of 30 up to
            ``min(M√d_y, B/(2L_ℓ))/L`` (data-dependent radii are free: the
            covering numbers are a deterministic function of the sample).
        block_size: rows per distance block.

    Returns:
        A :class:`GeneralizationBound`.
    """
    x = check_batch(S, x, "x")
    _check_bound_args(
        lipschitz, output_bound, loss_lipschitz, loss_range, eps, delta, num_levels, output_dim
    )
    if radii is None:
        radii = _default_bound_radii(
            x, lipschitz, output_bound, loss_lipschitz, loss_range, output_dim
        )
    symmetric, trivial = bound_tables(x, S, radii, block_size=block_size)
    constants = dict(
        lipschitz=lipschitz,
        output_bound=output_bound,
        loss_lipschitz=loss_lipschitz,
        loss_range=loss_range,
        delta=delta,
        num_levels=num_levels,
        output_dim=output_dim,
    )
    if symmetric.group_size == 1 or len(_identity_elements(S, x[:64])) == S.size:
        return generalization_bound_from_table(trivial, None, eps=0.0, **constants)
    return generalization_bound_from_table(symmetric, trivial, eps=eps, **constants)


# ----------------------------------------------------------------------------- §5


def approximation_error(
    eta,
    eps,
    kind: str = "rms",
    eta_sup=None,
    group_size: int | None = None,
):
    """Best approximation error of the ε-equivariant class, squared loss (theory.md §5).

    * ``kind="rms"`` (class ``d_2(f) ≤ ε``, ``η = η_2 = d_2(f*)``): exactly
      ``(η_2 − ε)_+²``, attained by the dial at ``t = min(1, ε/η_2)``.
    * ``kind="sup"`` (class ``E_f(g) ≤ ε`` for all g): an
      :class:`ApproximationBounds` with ``upper = η_2² (1 − ε/η_∞)_+²`` (the dial
      has sup defect ``t η_∞``) and ``lower = (η_2 − ε√((1 − 1/|G|)/2))_+²`` for a
      finite group of ``group_size`` elements, ``(η_2 − ε/√2)_+²`` otherwise.

    Both need a G-invariant μ (orthogonality of ``Q_G``). ``jnp`` throughout,
    differentiable in ``eta`` and ``eps``; broadcasts.

    Args:
        eta: ``η_2 = ‖f* − Q_G f*‖_{L²(μ)}`` (``d_2`` units).
        eps: the class's level ``ε ≥ 0``.
        kind: ``"rms"`` or ``"sup"``.
        eta_sup: ``η_∞ = sup_g E_{f*}(g)`` (required for ``"sup"``).
        group_size: ``|G|`` for the finite-group lower bound (``"sup"`` only).

    Returns:
        An array for ``"rms"``; :class:`ApproximationBounds` for ``"sup"``.

    Raises:
        ValueError: on a bad ``kind``, negative inputs, or a missing ``eta_sup``.
    """
    check_choice("kind", kind, ("rms", "sup"))
    check_nonnegative("eta", eta)
    check_nonnegative("eps", eps)
    eta = jnp.asarray(eta, jnp.result_type(eta, jnp.float32))
    eps = jnp.asarray(eps, eta.dtype)
    if kind == "rms":
        return jnp.maximum(eta - eps, 0.0) ** 2
    if eta_sup is None:
        raise ValueError("approximation_error(kind='sup') needs eta_sup = η_∞ = sup_g E_{f*}(g).")
    check_nonnegative("eta_sup", eta_sup)
    eta_sup = jnp.asarray(eta_sup, eta.dtype)
    ratio = jnp.where(eta_sup > 0, eps / jnp.where(eta_sup > 0, eta_sup, 1.0), jnp.inf)
    upper = eta**2 * jnp.maximum(1 - ratio, 0.0) ** 2
    if group_size is None:
        factor = math.sqrt(0.5)
    else:
        if isinstance(group_size, bool) or not isinstance(group_size, (int, np.integer)):
            raise ValueError(f"group_size must be a positive int or None; got {group_size!r}.")
        if group_size < 1:
            raise ValueError(f"group_size must be a positive int; got {group_size}.")
        factor = math.sqrt((1 - 1 / group_size) / 2)
    lower = jnp.maximum(eta - eps * factor, 0.0) ** 2
    return ApproximationBounds(lower=jnp.minimum(lower, upper), upper=upper)


def default_eps_grid(output_bound: float, output_dim: int, eta=None) -> np.ndarray:
    """``linspace(0, 2M√d_y, 33)`` (every possible sup defect), with η added if given.

    Including the data's η (a property of the task, fixed before the sample)
    makes the bound-optimal level satisfy ``ε* ≤ η`` exactly on the grid
    (theory.md §5): above η the approximation term is 0 and ``Gen_n`` is
    non-decreasing.
    """
    grid = np.linspace(0.0, 2 * float(output_bound) * math.sqrt(output_dim), DEFAULT_NUM_LEVELS)
    if eta is not None:
        grid = np.union1d(grid, np.asarray(eta, np.float64).reshape(-1))
    return grid


def tradeoff(
    x: jax.Array,
    G: TransformationSet,
    *,
    eta,
    lipschitz,
    output_bound,
    loss_lipschitz,
    loss_range,
    noise=0.0,
    kind: str = "rms",
    eps_grid=None,
    delta=0.05,
    output_dim: int = 1,
    radii=None,
    eta_sup=None,
    block_size: int | None = None,
) -> TradeOff:
    """The risk bound ``σ² + A(ε) + Gen_n(ε)`` over a grid of ε (theory.md §5).

    The covering tables are computed once; ``Gen_n`` is the §4 bound with the
    union bound over the ``K`` grid levels. Which ``A`` is used:

    * ``kind="sup"`` (**certified**): ``A`` is the upper bound
      ``η_2²(1 − ε/η_∞)_+²`` for the sup class ``F(L, G, ε)``, the class §4
      bounds; the total is an upper bound on the risk of the best model in
      the class (assuming ``f*`` is L-Lipschitz with outputs in the box).
    * ``kind="rms"``: ``A = (η_2 − ε)_+²``, the exact optimum of the
      ``d_2(f) ≤ ε`` class, paired with the §4 bound at sup level ε. The sup
      class is contained in the ``d_2`` class at the same ε, so this ``A`` is a
      *lower* bound on the sup class's approximation error: the curve is an
      estimate of the trade-off (theory.md §5, §8), not a certified risk bound.

    Args:
        x: ``(n, *example)`` training inputs.
        G: the group (or set) of transformations.
        eta: ``η_2 = d_2(f*)``.
        lipschitz, output_bound, loss_lipschitz, loss_range: as in
            :func:`generalization_bound`.
        noise: the label noise standard deviation ``σ`` (adds ``σ²``).
        kind: ``"rms"`` or ``"sup"``.
        eps_grid: ``(K,)`` levels; ``None`` is :func:`default_eps_grid` with
            ``η`` (``η_∞`` for ``"sup"``) included.
        delta: failure probability.
        output_dim: ``d_y``.
        radii: covering radii (as in :func:`generalization_bound`).
        eta_sup: ``η_∞`` (required for ``"sup"``).
        block_size: rows per distance block.

    Returns:
        A :class:`TradeOff`.
    """
    check_choice("kind", kind, ("rms", "sup"))
    check_nonnegative("eta", eta)
    check_nonnegative("noise", noise)
    if kind == "sup" and eta_sup is None:
        raise ValueError("tradeoff(kind='sup') needs eta_sup = η_∞ = sup_g E_{f*}(g).")
    x = check_batch(G, x, "x")
    if eps_grid is None:
        eps_grid = default_eps_grid(output_bound, output_dim, eta if kind == "rms" else eta_sup)
    eps_grid = np.asarray(eps_grid, np.float64).reshape(-1)
    if eps_grid.size == 0:
        raise ValueError("eps_grid must hold at least one level.")
    check_nonnegative("eps_grid", eps_grid)
    _check_bound_args(
        lipschitz, output_bound, loss_lipschitz, loss_range, 0.0, delta, 1, output_dim
    )
    if radii is None:
        radii = _default_bound_radii(
            x, lipschitz, output_bound, loss_lipschitz, loss_range, output_dim
        )
    symmetric, trivial = bound_tables(x, G, radii, block_size=block_size)

    def gen(eps):
        return generalization_bound_from_table(
            symmetric,
            trivial,
            lipschitz=lipschitz,
            output_bound=output_bound,
            loss_lipschitz=loss_lipschitz,
            loss_range=loss_range,
            eps=eps,
            delta=delta,
            num_levels=int(eps_grid.size),
            output_dim=output_dim,
        ).total

    levels = jnp.asarray(eps_grid, jnp.float32)
    generalization = jax.vmap(gen)(levels)
    if kind == "rms":
        approximation = approximation_error(eta, levels)
    else:
        group_size = G.size if G.is_group else None
        approximation = approximation_error(
            eta, levels, kind="sup", eta_sup=eta_sup, group_size=group_size
        ).upper
    total = float(noise) ** 2 + approximation + generalization
    return TradeOff(
        eps=levels, approximation=approximation, generalization=generalization, total=total
    )


def optimal_level(x: jax.Array, G: TransformationSet, **kwargs) -> OptimalLevel:
    """The bound-optimal level ``ε* = argmin_ε σ² + A(ε) + Gen_n(ε)`` (theory.md §5).

    Same arguments as :func:`tradeoff`. Ties go to the smaller ε. With the
    default grid (which contains η), ``ε* ≤ η``: more asymmetry than the data
    has never helps. By theory.md §8 the certified curve is usually
    bang-bang (ε* = 0 or the unconstrained end).

    Returns:
        An :class:`OptimalLevel`.
    """
    curve = tradeoff(x, G, **kwargs)
    index = jnp.argmin(curve.total)
    return OptimalLevel(eps=curve.eps[index], index=index, total=curve.total[index], curve=curve)


def _closure(table: np.ndarray, members: set[int]) -> set[int]:
    """The subgroup generated by ``members`` (Cayley table, finite group)."""
    closed = set(members) | {0}
    frontier = list(closed)
    while frontier:
        a = frontier.pop()
        for b in list(closed):
            for product in (int(table[a, b]), int(table[b, a])):
                if product not in closed:
                    closed.add(product)
                    frontier.append(product)
    return closed


def subgroup_chain(G: TransformationSet, data_profile) -> list[np.ndarray]:
    """Nested subgroups ``{e} = H_1 ⊂ H_2 ⊂ … ⊂ G`` generated by profile-ordered prefixes.

    Elements are sorted by ``data_profile`` (most symmetric first, identity
    first); ``H_k`` is generated by the first elements, and duplicates are
    dropped.

    Args:
        G: a finite group (``G.is_group``).
        data_profile: ``(|G|,)`` per-element profile of the data.

    Returns:
        A list of sorted index arrays, one per distinct subgroup.

    Raises:
        ValueError: if G is not a finite group or the profile has the wrong shape.
    """
    if not G.is_group:
        raise ValueError(
            f"optimal_subset needs a finite group to form subgroups; {G.name} is not a group."
        )
    profile = np.asarray(data_profile, np.float64).reshape(-1)
    if profile.shape != (G.size,):
        raise ValueError(f"data_profile must have shape ({G.size},); got {np.shape(data_profile)}.")
    check_finite("data_profile", profile)
    table = cayley_table(G)
    order = [0] + [int(k) for k in np.argsort(profile, kind="stable") if k != 0]
    chain: list[np.ndarray] = []
    members: set[int] = {0}
    for k in order:
        members = _closure(table, members | {k})
        if not chain or len(members) > len(chain[-1]):
            chain.append(np.asarray(sorted(members)))
    return chain


def optimal_subset(
    x: jax.Array,
    G: TransformationSet,
    data_profile,
    *,
    lipschitz,
    output_bound,
    loss_lipschitz,
    loss_range,
    noise=0.0,
    delta=0.05,
    output_dim: int = 1,
    radii=None,
    block_size: int | None = None,
) -> SubsetChoice:
    """Which symmetry to keep: the bound-optimal subgroup for a data profile (theory.md §5).

    Candidates are the nested subgroups ``{e} = H_1 ⊂ … ⊂ H_K`` generated by the
    elements in the order of the data's profile (:func:`subgroup_chain`); the
    model class for ``H_k`` is the exactly ``H_k``-invariant one (ε = 0 on
    ``H_k``). For each candidate:

    * **approximation** (exact §5 for subgroups): ``‖(I − Q_H) f*‖² =
      ½ · mean_{h∈H} E_2(h)²`` where ``E_2(h) = (E_x e_{f*}(x, h)²)^{1/2}`` is the
      data's RMS profile (``ee_2² = 2 d_2²`` under an H-invariant μ, theory.md §2);
    * **generalization**: the §4 bound with ``N_{H_k}`` (one distance pass for
      the whole chain) and the union bound over the K candidates.

    We restrict to subgroups (not arbitrary prefixes of elements) because only
    subgroups have a projection and an exact approximation error; an exactly
    ``S``-invariant model is invariant under the subgroup ``S`` generates anyway.

    Args:
        x: ``(n, *example)`` training inputs.
        G: a finite group.
        data_profile: ``(|G|,)`` RMS profile ``E_2(g)`` of the data, e.g.
            ``defect_profile(f_ref, x, G, reduce="rms")``.
        lipschitz, output_bound, loss_lipschitz, loss_range, noise, delta,
            output_dim, radii, block_size: as in :func:`tradeoff`.

    Returns:
        A :class:`SubsetChoice`.
    """
    x = check_batch(G, x, "x")
    check_nonnegative("data_profile", np.asarray(data_profile, np.float64))
    check_nonnegative("noise", noise)
    _check_bound_args(
        lipschitz, output_bound, loss_lipschitz, loss_range, 0.0, delta, 1, output_dim
    )
    chain = subgroup_chain(G, data_profile)
    if radii is None:
        radii = _default_bound_radii(
            x, lipschitz, output_bound, loss_lipschitz, loss_range, output_dim
        )
    stages = [np.setdiff1d(chain[0], [0])] + [
        np.setdiff1d(later, earlier) for earlier, later in itertools.pairwise(chain)
    ]
    counts = nested_covering_numbers(x, G, radii, stages, block_size=block_size)
    tables = tables_from_counts(radii, counts, x.shape[0], [len(h) for h in chain])
    squares = jnp.asarray(np.asarray(data_profile, np.float64) ** 2, jnp.float32)
    candidates = np.zeros((len(chain), G.size), bool)
    for k, members in enumerate(chain):
        candidates[k, members] = True
    approximation = 0.5 * (jnp.asarray(candidates, jnp.float32) @ squares) / candidates.sum(1)
    generalization = jnp.stack(
        [
            generalization_bound_from_table(
                table,
                None,
                lipschitz=lipschitz,
                output_bound=output_bound,
                loss_lipschitz=loss_lipschitz,
                loss_range=loss_range,
                eps=0.0,
                delta=delta,
                num_levels=len(chain),
                output_dim=output_dim,
            ).total
            for table in tables
        ]
    )
    total = float(noise) ** 2 + approximation + generalization
    index = int(jnp.argmin(total))
    return SubsetChoice(
        mask=candidates[index],
        index=index,
        candidates=candidates,
        approximation=approximation,
        generalization=generalization,
        total=total,
    )
