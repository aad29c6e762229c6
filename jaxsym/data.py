"""The data's own equivariance error, estimated from a sample (docs/theory.md §6).

The regression function ``f*(x) = E[y | x]`` is unknown, so its per-element
profile ``g ↦ E_{f*}(g)`` (§5) is estimated from the sample ``(x_i, y_i)`` in one
of three ways, which estimate different statistics but report them in one unit
(below):

- ``"reference"`` — the defect profile of a known predictor (a teacher, or the
  true target of a synthetic task): :func:`jaxsym.defect_profile` with its
  ``reduce`` (default ``"rms"``, *not* squared).
- ``"knn"`` — nearest-orbit label consistency: its ``excess`` estimates the
  RMS profile ``E_2(g) = (E_x e_{f*}(x, g)²)^{1/2}`` (every sample matched, the
  default; a finite matching radius estimates ``E[e² | matched]^{1/2}``). The
  squares are averaged, then square-rooted.
- ``"sinkhorn"`` — the square root of the debiased Sinkhorn divergence
  ``S_ε(P_n, g_# P_n) = OT_ε(P_n, g_# P_n) − ½ OT_ε(P_n, P_n) − ½ OT_ε(g_# P_n,
  g_# P_n)`` between the ``(x, y)`` sample and its image under ``g`` (ott-jax),
  *not* squared: an entropic estimate of ``W_2``, a lower estimate of the RMS
  profile that also reacts when the input distribution μ is not invariant.

**One unit.** Every public result is in the units of the pointwise defect
``e_f(x, g) = ‖f(ρ_X(g)x) − ρ_Y(g)f(x)‖`` (the labels' units), not squared: the
unit of ``defect_profile(..., reduce="rms")`` and of ``ee_2``, which is what
:func:`jaxsym.stabilizer` and :func:`jaxsym.decision.candidate_sets` take. It is *not*
the ``d_2`` unit: for a group and a G-invariant μ,
``mean_g E_2(g)² = ee_2(f*)² = 2 d_2(f*)²`` (docs/theory.md §2), so the data's
``η_2 = d_2(f*) ≈ (mean_g excess(g)² / 2)^{1/2}``.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.distances import nearest_other
from jaxsym._src.types import Model
from jaxsym._src.validation import (
    check_batch,
    check_choice,
    check_finite,
    check_nonnegative,
    check_positive,
    check_scalar,
    check_unit_interval,
    is_concrete,
    positive_int,
)
from jaxsym.defects import REDUCTIONS, defect_profile, safe_sqrt
from jaxsym.groups import TransformationSet, transform_batch

METHODS = ("knn", "reference", "sinkhorn")

__all__ = [
    "DataDefect",
    "data_defect",
    "knn_data_defect",
    "reference_data_defect",
    "sinkhorn_data_defect",
]


class DataDefect(NamedTuple):
    """Estimated equivariance profile of a data set (docs/theory.md §6).

    Every field is in the units of the pointwise defect ``e`` (RMS, not squared;
    module docstring): ``ee_2`` units, ``√2 ×`` the ``d_2`` units.

    Attributes:
        profile: ``(|G|,)`` the method's statistic per element (see
            :func:`data_defect`).
        baseline: scalar, the level ``profile`` has on a symmetric data set
            (identity baseline for knn, split-half distance for sinkhorn, 0 for
            a reference predictor).
        excess: ``(|G|,)`` the estimated RMS data profile ``E_2(g)``: for knn
            ``(max(profile² − baseline², 0))^{1/2}`` (the excess of the mean
            squares, square-rooted), else ``profile − baseline``.
        stderr: ``(|G|,)`` knn only (else ``None``): how far ``excess`` moves up
            when the mean-square excess moves up by one standard error
            (:func:`knn_data_defect`).
        matched_fraction: ``(|G|,)`` fraction of samples whose transformed copy
            found a neighbour within ``radius`` (knn only, else ``None``; 1 with
            the default infinite radius).
        radius: scalar matching radius used (knn only, else ``None``; ``inf`` by
            default).
    """

    profile: jax.Array
    baseline: jax.Array
    excess: jax.Array
    stderr: jax.Array | None = None
    matched_fraction: jax.Array | None = None
    radius: jax.Array | None = None


def turned_labels(group: TransformationSet, y: jax.Array) -> jax.Array:
    """``ρ_Y(g) y_i`` for every element and label, shape ``(|G|, n, *output)``."""
    per_label = jax.vmap(group.act_out, in_axes=(None, 0))
    return jax.vmap(per_label, in_axes=(0, None))(group.elements, y)


def _check_labels(y, num_examples: int, name: str = "y") -> jax.Array:
    if y is None:
        raise ValueError(f"{name} is required by this method (labels, shape (n, *output)).")
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != num_examples:
        raise ValueError(
            f"{name} must have a leading axis of length {num_examples} (one label per "
            f"input); got shape {y.shape}."
        )
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.float32)
    check_finite(name, y)
    return y


def _knn_core(group, x, y, radius, radius_quantile, block_size):
    n = x.shape[0]
    size = group.size
    moved = transform_batch(group, group.elements, x).reshape(size * n, -1)
    points = x.reshape(n, -1)
    owners = jnp.tile(jnp.arange(n), size)
    index, squares = nearest_other(moved, owners, points, block_size)
    index, distance = index.reshape(size, n), safe_sqrt(squares.reshape(size, n))
    if radius is None:
        radius = jnp.quantile(distance[0], radius_quantile)
    # NaN distances (NaN inputs under jit) count as matched and poison the mismatch below.
    matched = jnp.logical_not(distance > radius)
    turned = turned_labels(group, y)
    diff = (y[index] - turned).reshape(size, n, -1)
    mismatch = jnp.sum(diff * diff, axis=-1)  # (|G|, n): ‖y_j − ρ_Y(g) y_i‖²
    mismatch = jnp.where(jnp.isnan(distance), jnp.nan, mismatch)
    weights = matched.astype(mismatch.dtype)
    count = jnp.sum(weights, axis=1)
    safe_count = jnp.maximum(count, 1.0)
    profile = jnp.sum(weights * mismatch, axis=1) / safe_count
    profile = jnp.where(count > 0, profile, jnp.nan)
    # Standard error of excess(g) = profile(g) − profile(e): each term (query i, neighbour j)
    # has influence u = w (m − p) / count, with the identity's terms entering negatively.
    # Terms that share a sample share its label noise, so the variance is the dyadic-robust
    # Σ_k U_k² − Σ_t u_t², with U_k the sum of the terms touching sample k (as i or as j).
    centred = jnp.where(weights > 0, mismatch - jnp.nan_to_num(profile)[:, None], 0.0)
    share = weights * centred / safe_count[:, None]  # (|G|, n)
    own = share - share[:1]  # terms whose query is sample i
    by_neighbour = jax.vmap(lambda u, j: jax.ops.segment_sum(u, j, num_segments=n))
    touching = own + by_neighbour(share, index) - by_neighbour(share[:1], index[:1])
    variance = jnp.sum(touching * touching, axis=1) - jnp.sum(
        share * share + share[:1] * share[:1], axis=1
    )
    stderr = safe_sqrt(variance).at[0].set(0.0)
    stderr = jnp.where(count > 0, stderr, jnp.nan)
    # Public results in RMS units (docs/theory.md §6): the mean squares above, square-rooted.
    square_excess = profile - profile[0]
    resolved = jnp.maximum(square_excess, 0.0)  # NaN stays NaN
    rms_excess = safe_sqrt(resolved)
    return DataDefect(
        profile=safe_sqrt(profile),
        baseline=safe_sqrt(profile[0]),
        excess=rms_excess,
        stderr=safe_sqrt(resolved + stderr) - rms_excess,
        matched_fraction=count / n,
        radius=jnp.asarray(radius, points.dtype),
    )


_knn_jit = jax.jit(_knn_core, static_argnames=("block_size",))


def knn_data_defect(
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    radius=None,
    radius_quantile: float | None = None,
    block_size: int = 256,
) -> DataDefect:
    """Nearest-orbit label consistency: the data's RMS profile (docs/theory.md §6).

    For each sample ``x_i`` and element ``g``, ``j(i, g)`` is the nearest other
    sample (``j ≠ i``) to ``ρ_X(g) x_i``, at distance ``d(i, g)``. Over the
    samples with ``d(i, g) ≤ r`` (all of them by default), with the mean square
    ``m(g) = mean_i ‖y_j − ρ_Y(g) y_i‖²``:

    ``profile(g) = m(g)^{1/2}`` (RMS label mismatch, the labels' units),

    ``baseline = profile(e)`` (nearest other sample, ``≈ √2 σ`` for label noise
    of variance σ² per output), and
    ``excess(g) = (max(m(g) − m(e), 0))^{1/2}``.

    **What it estimates.** With the default ``r = ∞`` every sample is matched
    and ``m(g) − m(e)`` estimates the mean-square data profile ``E_x e_{f*}(x,
    g)² = E_x ‖f*(ρ_X(g) x) − ρ_Y(g) f*(x)‖²`` over μ, so ``excess(g)``
    estimates the RMS profile ``E_2(g)`` (the units of ``defect_profile(...,
    reduce="rms")``; not the sup profile). The squares are subtracted before the
    root: subtracting norms instead is badly biased. The noise terms cancel
    because ``ρ_Y`` is orthogonal and the noises of ``y_j`` and ``y_i`` are
    independent. When μ is invariant under ``g``, the query ``ρ_X(g) x_i`` has
    the law of ``x_i`` and sees the same other samples, so the term ``‖f*(x_j) −
    f*(ρ_X(g) x_i)‖²`` (how much ``f*`` varies over the nearest-neighbour
    distance) has the same mean as in the baseline and cancels; what remains is
    a cross term of the order of the mean nearest-neighbour displacement times
    ``e``, which shrinks as n grows. When μ is not invariant under ``g`` (e.g.
    quarter turns of digit images), the matches are far and ``excess`` mixes the
    input asymmetry into the label asymmetry; a finite radius then restricts the
    average to the samples whose image lands near the data.

    With a finite radius ``r`` (``radius=`` or ``radius_quantile=``) the
    averages run over the matched samples only, so ``excess`` estimates
    ``E[e_{f*}(x, g)² | matched]^{1/2}``, a conditional RMS that favours the dense
    regions of μ (with the 90% nearest-neighbour quantile on §8's planar task,
    η = 0.3, n = 8000, its square reads 24–35% below ``E_x e²``: the asymmetry grows
    with ‖x‖ and the tails go unmatched). Elements for
    which no copy is matched (``matched_fraction = 0``) get ``NaN`` in
    ``profile``, ``excess`` and ``stderr``.

    ``stderr``: with ``s(g)`` the standard error of ``m(g) − m(e)`` (paired over
    the samples, robust to the dependence of neighbour pairs), in RMS units
    ``stderr(g) = (excess(g)² + s(g))^{1/2} − excess(g)``: how far ``excess``
    moves up when the mean square moves up by one standard error; ≈ the delta
    method ``s / (2 excess)`` when the excess is well resolved, ``√s`` (the
    resolution at this n) when it is not. With ``z = (m(g) − m(e)) / s`` the
    z-score of the mean squares, ``excess / stderr = z + (z(z + 1))^{1/2}`` for
    ``z > 0``: ``z = 2`` reads 4.45. An element with ``excess ≤ 4.45 stderr``
    (``z ≤ 2``) is indistinguishable from a symmetry at this sample size.

    Args:
        x: ``(n, *input)`` inputs, ``n ≥ 2``.
        y: ``(n, *output)`` labels (one-hot or real vectors; scalars allowed).
        group: elements to test (element 0, the identity, gives the baseline).
        radius: matching radius ``r ≥ 0`` in input units (``jnp.inf`` allowed);
            default ``None``: ``∞`` unless ``radius_quantile`` is given.
        radius_quantile: optional quantile in ``(0, 1]`` of the nearest-neighbour
            distances ``min_{j≠i} ‖x_j − x_i‖`` to use as the radius (the identity
            then matches that fraction of samples); not with ``radius``.
        block_size: queries per distance block (memory ``O(block_size · n)``).

    Returns:
        :class:`DataDefect` with ``profile``, ``baseline``, ``excess``, ``stderr``
        (all RMS units, not squared), ``matched_fraction`` (``(|G|,)``) and ``radius``.

    Raises:
        ValueError: on mismatched shapes, fewer than 2 samples, non-finite
            values, a negative radius, a quantile outside ``(0, 1]``, or both
            ``radius`` and ``radius_quantile``.
    """
    x = check_batch(group, x)
    positive_int("n (the number of samples in x)", x.shape[0], minimum=2)
    y = _check_labels(y, x.shape[0])
    if radius is not None and radius_quantile is not None:
        raise ValueError(
            f"give radius or radius_quantile, not both; got radius={radius}, "
            f"radius_quantile={radius_quantile}."
        )
    if radius is not None:
        _check_radius(radius)
    if radius_quantile is not None:
        check_scalar("radius_quantile", radius_quantile)
        check_positive("radius_quantile", radius_quantile)
        check_unit_interval("radius_quantile", radius_quantile)
    elif radius is None:
        radius = jnp.inf
    block_size = positive_int("block_size", block_size)
    return _knn_jit(group, x, y, radius, radius_quantile, block_size)


def _check_radius(radius) -> None:
    """``radius ≥ 0``; ``+∞`` allowed (private validator: the shared ones refuse inf)."""
    if not is_concrete(radius):
        return
    check_scalar("radius", radius)
    value = float(np.asarray(radius, dtype=np.float64))
    if not value >= 0:  # also NaN
        raise ValueError(f"radius must be non-negative (or inf); got {radius}.")


def reference_data_defect(
    x: jax.Array, group: TransformationSet, reference: Model, reduce: str = "rms"
) -> DataDefect:
    """The data profile read off a reference predictor ``f_ref ≈ f*`` (§6).

    ``profile(g) = E_{f_ref}(g)`` via :func:`jaxsym.defect_profile` over the
    sample, in the units of ``reduce``: ``"rms"`` gives ``(E_x e²)^{1/2}`` (the
    RMS profile; its element average squared is ``ee_2(f*)² = 2η_2²`` for
    invariant μ), ``"max"`` a lower estimate of the sup profile ``E_{f*}(g)``,
    ``"mean"`` the mean defect. Not squared. ``baseline`` is 0.

    Args:
        x: ``(n, *input)`` inputs.
        group: elements to test.
        reference: batched predictor ``(n, *input) -> (n, *output)``.
        reduce: ``"rms"``, ``"max"`` or ``"mean"``.
    """
    if not callable(reference):
        raise ValueError(
            f"reference must be a batched predictor (callable); got {type(reference).__name__}."
        )
    check_choice("reduce", reduce, REDUCTIONS)
    profile = defect_profile(reference, x, group, reduce)
    zero = jnp.zeros((), profile.dtype)
    return DataDefect(profile=profile, baseline=zero, excess=profile)


def _entropic_cost(a: jax.Array, b: jax.Array, epsilon, threshold: float, max_iterations: int):
    """``OT_ε(a, b)`` between uniform samples, squared Euclidean cost, absolute ``ε``.

    ``OT_ε = min_P ⟨P, C⟩ + ε KL(P | a ⊗ b)`` (ott-jax's ``reg_ot_cost``); ``NaN``
    when Sinkhorn has not converged to ``threshold`` within ``max_iterations``.
    """
    try:
        from ott.geometry import pointcloud
        from ott.problems.linear import linear_problem
        from ott.solvers.linear import sinkhorn
    except ImportError as error:
        raise ImportError(
            "data_defect(method='sinkhorn') needs ott-jax, the 'ot' extra: "
            "python3 -m pip install 'jaxsym[ot]'."
        ) from error

    geom = pointcloud.PointCloud(a, b, epsilon=epsilon)
    solver = sinkhorn.Sinkhorn(threshold=threshold, max_iterations=max_iterations)
    out = solver(linear_problem.LinearProblem(geom))
    return jnp.where(out.converged, out.reg_ot_cost, jnp.nan)


def _sinkhorn_core(group, x, y, key, label_scale, epsilon, threshold, max_iterations, splits):
    n = x.shape[0]
    flat_y = label_scale * y.reshape(n, -1)
    sample = jnp.concatenate([x.reshape(n, -1), flat_y], axis=1)
    # One absolute ε for every term: epsilon × the mean pairwise squared distance
    # mean_{i,k} ‖z_i − z_k‖² = 2 (mean ‖z‖² − ‖mean z‖²) of the sample.
    centred = sample - jnp.mean(sample, axis=0)
    scale = 2.0 * jnp.mean(jnp.sum(centred * centred, axis=1))
    absolute = epsilon * jnp.where(scale > 0, scale, 1.0)

    def cost(a, b):
        return _entropic_cost(a, b, absolute, threshold, max_iterations)

    # S_ε(a, b) = OT_ε(a, b) − ½ OT_ε(a, a) − ½ OT_ε(b, b). For b = g·a the two self terms
    # are equal (ρ_X, ρ_Y are isometries, so the cost matrices agree): one serves all g.
    self_cost = cost(sample, sample)

    def image_divergence(element):
        moved_x = jax.vmap(group.act_in, in_axes=(None, 0))(element, x).reshape(n, -1)
        moved_y = jax.vmap(group.act_out, in_axes=(None, 0))(element, y).reshape(n, -1)
        image = jnp.concatenate([moved_x, label_scale * moved_y], axis=1)
        return cost(sample, image) - self_cost

    profile = safe_sqrt(jax.lax.map(image_divergence, group.elements))
    half = n // 2

    def split_divergence(split_key):
        order = jax.random.permutation(split_key, n)
        first, second = sample[order[:half]], sample[order[half : 2 * half]]
        return cost(first, second) - 0.5 * (cost(first, first) + cost(second, second))

    splits_divergence = jax.lax.map(split_divergence, jax.random.split(key, splits))
    baseline = safe_sqrt(jnp.mean(splits_divergence))
    return DataDefect(profile=profile, baseline=baseline, excess=profile - baseline)


_sinkhorn_jit = jax.jit(_sinkhorn_core, static_argnames=("threshold", "max_iterations", "splits"))


def sinkhorn_data_defect(
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    key: jax.Array,
    label_scale: float = 1.0,
    epsilon: float = 0.05,
    num_splits: int = 4,
    threshold: float = 1e-3,
    max_iterations: int = 2000,
) -> DataDefect:
    """Distributional data asymmetry: the debiased Sinkhorn divergence per element (§6).

    Each sample point is ``z_i = (x_i, label_scale · y_i)`` (flattened and
    concatenated); its image under ``g`` is ``g·z_i = (ρ_X(g) x_i, label_scale ·
    ρ_Y(g) y_i)``. With ``P_n`` the uniform measure on the ``z_i`` and
    ``OT_ε(α, β) = min_P ⟨P, C⟩ + ε KL(P | α ⊗ β)`` for the squared Euclidean
    cost ``C`` (Sinkhorn from ott-jax), the debiased Sinkhorn divergence is

    ``S_ε(α, β) = OT_ε(α, β) − ½ OT_ε(α, α) − ½ OT_ε(β, β)``,

    and ``profile(g) = S_ε(P_n, g_# P_n)^{1/2}`` (not squared; W_2 units). The
    two self terms are equal here because ``ρ_X`` and ``ρ_Y`` are isometries,
    so one ``OT_ε(P_n, P_n)`` serves every element. ``ε = epsilon · mean_{i,k}
    ‖z_i − z_k‖²``, one absolute value for every term. ``S_ε ≥ 0``, it is 0 for
    identical samples, and ``S_ε → W_2²`` as ``ε → 0`` (Feydy et al., 2019).
    ``baseline`` is ``(mean over num_splits random split-halves of S_ε(first
    half, second half))^{1/2}``: the sampling floor. Elements with
    ``profile ≤ baseline`` are indistinguishable from symmetries at this n.

    Interpretation: if μ is invariant under ``g`` and the label noise is
    ``ρ_Y``-invariant, coupling ``(x, y)`` with ``(ρ_X(g) x, ρ_Y(g) y)`` shows
    ``W_2(P, g_# P) ≤ (E_x e_{f*}(x, g)²)^{1/2}``: the population value is a
    **lower estimate of the RMS data profile**. It is also positive when μ
    itself is not invariant under ``g`` (then it mixes input and label
    asymmetry). The sample value carries an upward finite-sample bias, gauged by
    the baseline. Non-finite values propagate: an element whose Sinkhorn run
    does not converge (to ``threshold`` within ``max_iterations``) reads NaN.

    Needs ott-jax (the ``ot`` extra).

    Args:
        x: ``(n, *input)`` inputs, ``n ≥ 4``.
        y: ``(n, *output)`` labels.
        group: elements to test.
        key: PRNG key for the split-half baseline (keyword-only).
        label_scale: weight ``≥ 0`` of the labels against the inputs in the cost.
        epsilon: entropic regularization relative to the mean pairwise cost,
            ``> 0`` (smaller: closer to ``W_2``, more Sinkhorn iterations).
        num_splits: random split-halves averaged for the baseline.
        threshold: Sinkhorn marginal-error tolerance, ``> 0``.
        max_iterations: Sinkhorn iteration cap.

    Returns:
        :class:`DataDefect` with ``profile``, ``baseline`` and ``excess`` (W_2
        units; ``stderr``, ``matched_fraction`` and ``radius`` are ``None``).
    """
    x = check_batch(group, x)
    positive_int("n (the number of samples in x)", x.shape[0], minimum=4)
    y = _check_labels(y, x.shape[0])
    if key is None:
        raise ValueError("key is required by method='sinkhorn' (for the split-half baseline).")
    check_positive("epsilon", epsilon)
    check_nonnegative("label_scale", label_scale)
    check_positive("threshold", threshold)
    num_splits = positive_int("num_splits", num_splits)
    max_iterations = positive_int("max_iterations", max_iterations)
    return _sinkhorn_jit(
        group,
        x,
        y.astype(x.dtype),
        key,
        jnp.asarray(label_scale, x.dtype),
        jnp.asarray(epsilon, x.dtype),
        float(threshold),
        max_iterations,
        num_splits,
    )


def data_defect(
    x: jax.Array,
    y: jax.Array | None,
    group: TransformationSet,
    method: str = "knn",
    *,
    reference: Model | None = None,
    reduce: str = "rms",
    radius=None,
    radius_quantile: float | None = None,
    block_size: int = 256,
    key: jax.Array | None = None,
    label_scale: float = 1.0,
    epsilon: float = 0.05,
    num_splits: int = 4,
) -> DataDefect:
    """Estimate the data's own equivariance profile ``g ↦ E_{f*}(g)`` (docs/theory.md §6).

    Every method reports in the units of the pointwise defect ``e`` (not
    squared; ``ee_2 = √2 d_2`` units, module docstring); what is estimated differs:

    - ``"reference"``: ``profile[g]`` is ``E_{f_ref}(g)`` with ``reduce``; RMS
      (default), sup or mean.
    - ``"knn"``: ``profile[g]`` is ``(mean ‖y_j − ρ_Y(g) y_i‖²)^{1/2}`` and
      ``excess`` estimates the RMS profile ``E_2(g) = (E_x e_{f*}(x, g)²)^{1/2}``.
    - ``"sinkhorn"``: ``profile[g]`` is ``S_ε(P_n, g_# P_n)^{1/2}``, the square
      root of the debiased Sinkhorn divergence between the (x, y)-sample and its
      image under g; W_2 units (a lower estimate of the RMS profile), not squared.

    See :func:`knn_data_defect`, :func:`reference_data_defect` and
    :func:`sinkhorn_data_defect` for the formulas and the arguments.

    Args:
        x: ``(n, *input)`` inputs.
        y: ``(n, *output)`` labels (may be ``None`` for ``"reference"``).
        group: elements to test; element 0 is the identity.
        method: ``"knn"``, ``"reference"`` or ``"sinkhorn"``.
        reference: batched predictor, required by ``"reference"``.
        reduce: reduction for ``"reference"``.
        radius: for ``"knn"``.
        radius_quantile: for ``"knn"``.
        block_size: for ``"knn"``.
        key: for ``"sinkhorn"``.
        label_scale: for ``"sinkhorn"``.
        epsilon: for ``"sinkhorn"``.
        num_splits: for ``"sinkhorn"``.

    Returns:
        A :class:`DataDefect`; ``profile`` and ``excess`` have shape ``(|G|,)``.
    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import groups
    >>> x = jax.random.normal(jax.random.key(0), (400, 2))
    >>> y = jnp.cos(jnp.linalg.norm(x, axis=1, keepdims=True))  # invariant labels
    >>> profile = data_defect(x, y, groups.cyclic_rotations(4), "knn")
    >>> bool(jnp.max(profile.excess) < 0.1)  # no excess over the matching noise
    True
    """
    check_choice("method", method, METHODS)
    if method != "reference" and reference is not None:
        raise ValueError(f"reference is only used by method='reference'; got method={method!r}.")
    if method == "reference":
        if reference is None:
            raise ValueError("method='reference' needs reference=, a batched predictor.")
        return reference_data_defect(x, group, reference, reduce)
    if method == "knn":
        return knn_data_defect(
            x, y, group, radius=radius, radius_quantile=radius_quantile, block_size=block_size
        )
    return sinkhorn_data_defect(
        x,
        y,
        group,
        key=key,
        label_scale=label_scale,
        epsilon=epsilon,
        num_splits=num_splits,
    )
