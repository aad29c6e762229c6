"""The data's own equivariance error, estimated from a sample (theory.md §6).

The regression function ``f*(x) = E[y | x]`` is unknown, so its per-element
profile ``g ↦ E_{f*}(g)`` (§5) is estimated from the sample ``(x_i, y_i)`` in one
of three ways, each with its own units (kept apart on purpose, §2):

- ``"reference"`` — the defect profile of a known predictor (a teacher, or the
  true target of a synthetic task): :func:`jaxsym.defect_profile`, in the units
  of its ``reduce`` (default ``"rms"``, *not* squared).
- ``"knn"`` — nearest-orbit label consistency, in **squared** (mean-square)
  units: its ``excess`` estimates ``E_x e_{f*}(x, g)²``.
- ``"sinkhorn"`` — the Wasserstein-2 distance between the sample and its image
  under ``g`` (ott-jax), *not* squared: a lower estimate of the RMS profile that
  also reacts when the input distribution μ is not invariant.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._distances import nearest_other
from jaxsym._validation import (
    check_batch,
    check_choice,
    check_finite,
    check_nonnegative,
    check_positive,
    is_concrete,
)
from jaxsym.defects import REDUCTIONS, defect_profile, safe_sqrt
from jaxsym.groups import TransformationSet, transform_batch

Model = Callable[[jax.Array], jax.Array]
METHODS = ("knn", "reference", "sinkhorn")

__all__ = [
    "DataDefect",
    "data_defect",
    "knn_data_defect",
    "reference_data_defect",
    "sinkhorn_data_defect",
]


class DataDefect(NamedTuple):
    """Estimated equivariance profile of a data set (theory.md §6).

    Attributes:
        profile: ``(|G|,)`` the method's statistic per element (units depend on
            the method, see :func:`data_defect`).
        baseline: scalar, the level ``profile`` has on a symmetric data set
            (identity baseline for knn, split-half distance for sinkhorn, 0 for
            a reference predictor).
        excess: ``(|G|,)`` ``profile − baseline``; for knn this estimates the
            mean-square data profile ``E_x e_{f*}(x, g)²``.
        stderr: ``(|G|,)`` standard error of ``excess`` (knn only, else ``None``).
        matched_fraction: ``(|G|,)`` fraction of samples whose transformed copy
            found a neighbour within ``radius`` (knn only, else ``None``).
        radius: scalar matching radius used (knn only, else ``None``).
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


def _check_block_size(block_size) -> int:
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)):
        raise TypeError(f"block_size must be a positive int; got {block_size!r}.")
    if block_size < 1:
        raise ValueError(f"block_size must be a positive int; got {block_size}.")
    return int(block_size)


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
    matched = distance <= radius
    turned = turned_labels(group, y)
    diff = (y[index] - turned).reshape(size, n, -1)
    mismatch = jnp.sum(diff * diff, axis=-1)  # (|G|, n): ‖y_j − ρ_Y(g) y_i‖²
    weights = matched.astype(mismatch.dtype)
    count = jnp.sum(weights, axis=1)
    safe_count = jnp.maximum(count, 1.0)
    profile = jnp.sum(weights * mismatch, axis=1) / safe_count
    spread = jnp.sum(weights * (mismatch - profile[:, None]) ** 2, axis=1) / jnp.maximum(
        count - 1.0, 1.0
    )
    profile = jnp.where(count > 0, profile, jnp.nan)
    error = jnp.sqrt(spread / safe_count)
    baseline = profile[0]
    stderr = jnp.where(count > 0, jnp.sqrt(error**2 + error[0] ** 2), jnp.nan).at[0].set(0.0)
    return DataDefect(
        profile=profile,
        baseline=baseline,
        excess=profile - baseline,
        stderr=stderr,
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
    radius_quantile: float = 0.9,
    block_size: int = 256,
) -> DataDefect:
    """Nearest-orbit label consistency: the data's mean-square profile (§6).

    For each sample ``x_i`` and element ``g``, ``j(i, g)`` is the nearest other
    sample (``j ≠ i``) to ``ρ_X(g) x_i``. Where ``‖x_j − ρ_X(g) x_i‖ ≤ r``:

    ``profile(g) = mean_i ‖y_j − ρ_Y(g) y_i‖²``  (squared units),

    ``baseline = profile(e) = mean_i ‖y_{j'} − y_i‖²`` (nearest other sample,
    ``≈ 2σ²`` for label noise of variance σ² per output), and
    ``excess(g) = profile(g) − baseline`` estimates the mean-square data profile
    ``E_x e_{f*}(x, g)² = E_x ‖f*(ρ_X(g) x) − ρ_Y(g) f*(x)‖²`` (not the sup
    profile, and not its square root: subtracting norms instead of squares is
    badly biased). The noise terms cancel because ``ρ_Y`` is orthogonal and the
    noise of ``y_j`` and ``y_i`` is independent; what remains is biased by how
    much ``f*`` varies over the matching distance, which the baseline removes at
    the identity's typical distance. An element whose ``excess`` is within a
    few ``stderr`` of 0 is a symmetry of the data at this sample size.

    Elements for which no copy is matched (``matched_fraction = 0``, e.g. when
    μ is far from invariant under them, like quarter turns of digit images)
    get ``NaN`` in ``profile``, ``excess`` and ``stderr``. The average runs over
    the matched samples only, which favours dense regions of μ.

    Args:
        x: ``(n, *input)`` inputs, ``n ≥ 2``.
        y: ``(n, *output)`` labels (one-hot or real vectors; scalars allowed).
        group: elements to test (element 0, the identity, gives the baseline).
        radius: matching radius ``r ≥ 0`` in input units; ``None`` uses the
            ``radius_quantile`` quantile of the nearest-neighbour distances
            ``min_{j≠i} ‖x_j − x_i‖`` (so the identity matches that fraction of
            samples, and an element matches a similar fraction when μ is
            invariant under it). ``jnp.inf`` matches everything.
        radius_quantile: quantile in ``(0, 1]`` for the default radius.
        block_size: queries per distance block (memory ``O(block_size · n)``).

    Returns:
        :class:`DataDefect` with ``profile``, ``baseline``, ``excess`` (squared
        units), ``stderr``, ``matched_fraction`` (``(|G|,)``) and ``radius``.

    Raises:
        ValueError: on mismatched shapes, fewer than 2 samples, non-finite
            values, a negative radius or a quantile outside ``(0, 1]``.
    """
    x = check_batch(group, x)
    if x.shape[0] < 2:
        raise ValueError(
            f"x must hold at least 2 samples (a neighbour is needed); got {x.shape[0]}."
        )
    y = _check_labels(y, x.shape[0])
    if radius is not None:
        if is_concrete(radius) and np.isnan(np.asarray(radius, dtype=np.float64)).any():
            raise ValueError(f"radius must be non-negative; got {radius}.")
        if is_concrete(radius) and np.any(np.asarray(radius, dtype=np.float64) < 0):
            raise ValueError(f"radius must be non-negative; got {radius}.")
    if not 0.0 < float(radius_quantile) <= 1.0:
        raise ValueError(f"radius_quantile must lie in (0, 1]; got {radius_quantile}.")
    block_size = _check_block_size(block_size)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return _knn_jit(group, x, y, radius, radius_quantile, block_size)


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
    """Entropic OT cost ``OT_ε(a, b)`` between uniform samples, squared Euclidean cost."""
    from ott.geometry import pointcloud
    from ott.problems.linear import linear_problem
    from ott.solvers.linear import sinkhorn

    geom = pointcloud.PointCloud(a, b, epsilon=epsilon, relative_epsilon="mean")
    solver = sinkhorn.Sinkhorn(threshold=threshold, max_iterations=max_iterations)
    return solver(linear_problem.LinearProblem(geom)).reg_ot_cost


def _sinkhorn_core(group, x, y, key, label_scale, epsilon, threshold, max_iterations, splits):
    n = x.shape[0]
    flat_y = label_scale * y.reshape(n, -1)
    sample = jnp.concatenate([x.reshape(n, -1), flat_y], axis=1)

    def cost(a, b):
        return _entropic_cost(a, b, epsilon, threshold, max_iterations)

    # ρ_X, ρ_Y are isometries, so OT_ε(g z, g z) = OT_ε(z, z): one self-term serves all g.
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

    baseline = safe_sqrt(jnp.mean(jax.lax.map(split_divergence, jax.random.split(key, splits))))
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
    """Distributional data asymmetry: ``W_2(P_n, g_# P_n)`` per element (§6).

    Each sample point is ``z_i = (x_i, label_scale · y_i)`` (flattened and
    concatenated); its image under ``g`` is ``(ρ_X(g) x_i, label_scale ·
    ρ_Y(g) y_i)``. ``profile(g)`` is the entropic optimal-transport estimate
    ``⟨P_ε, C⟩^{1/2}`` of ``W_2`` between the two uniform samples (squared
    Euclidean cost, Sinkhorn from ott-jax, ``ε = epsilon · mean cost``); not
    squared. ``baseline`` is the same distance between two random halves of the
    sample (averaged over ``num_splits`` splits): the sampling floor. Elements
    with ``profile ≤ baseline`` are indistinguishable from symmetries at this n.

    Interpretation: if μ is invariant under ``g`` and the label noise is
    ``ρ_Y``-invariant, coupling ``(x, y)`` with ``(ρ_X(g) x, ρ_Y(g) y)`` shows
    ``W_2(P, g_# P) ≤ (E_x e_{f*}(x, g)²)^{1/2}``: the population value is a
    **lower estimate of the RMS data profile**. It is also positive when μ
    itself is not invariant under ``g`` (then it mixes input and label
    asymmetry). The sample value carries an upward finite-sample bias, gauged by
    the baseline.

    Args:
        x: ``(n, *input)`` inputs, ``n ≥ 4``.
        y: ``(n, *output)`` labels.
        group: elements to test.
        key: PRNG key for the split-half baseline (keyword-only).
        label_scale: weight of the labels against the inputs in the cost.
        epsilon: entropic regularization relative to the mean cost, ``> 0``
            (smaller: closer to ``W_2``, more Sinkhorn iterations).
        num_splits: random split-halves averaged for the baseline.
        threshold: Sinkhorn marginal-error tolerance.
        max_iterations: Sinkhorn iteration cap.

    Returns:
        :class:`DataDefect` with ``profile``, ``baseline`` and ``excess`` (W_2
        units; ``stderr``, ``matched_fraction`` and ``radius`` are ``None``).
    """
    x = check_batch(group, x)
    if x.shape[0] < 4:
        raise ValueError(f"x must hold at least 4 samples for a split-half; got {x.shape[0]}.")
    y = _check_labels(y, x.shape[0])
    if key is None:
        raise ValueError("key is required by method='sinkhorn' (for the split-half baseline).")
    check_positive("epsilon", epsilon)
    check_nonnegative("label_scale", label_scale)
    if int(num_splits) < 1:
        raise ValueError(f"num_splits must be a positive int; got {num_splits}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    return _sinkhorn_jit(
        group,
        x,
        y.astype(x.dtype),
        key,
        jnp.asarray(label_scale, x.dtype),
        jnp.asarray(epsilon, x.dtype),
        float(threshold),
        int(max_iterations),
        int(num_splits),
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
    radius_quantile: float = 0.9,
    block_size: int = 256,
    key: jax.Array | None = None,
    label_scale: float = 1.0,
    epsilon: float = 0.05,
    num_splits: int = 4,
) -> DataDefect:
    """Estimate the data's own equivariance profile ``g ↦ E_{f*}(g)`` (theory.md §6).

    Units differ by method — never compare them without converting:

    ========== ============================================ ====================
    method     ``profile[g]``                               units
    ========== ============================================ ====================
    reference  ``E_{f_ref}(g)`` with ``reduce``              RMS / sup / mean,
                                                            not squared
    knn        ``mean ‖y_j − ρ_Y(g) y_i‖²``; ``excess``     mean-square
               estimates ``E_x e_{f*}(x, g)²``              (squared)
    sinkhorn   ``≈ W_2((x,y)-sample, its image under g)``   RMS lower estimate,
               (debiased Sinkhorn divergence, square root)  not squared
    ========== ============================================ ====================

    See :func:`knn_data_defect`, :func:`reference_data_defect` and
    :func:`sinkhorn_data_defect` for the formulas and the arguments.

    Args:
        x: ``(n, *input)`` inputs.
        y: ``(n, *output)`` labels (may be ``None`` for ``"reference"``).
        group: elements to test; element 0 is the identity.
        method: ``"knn"``, ``"reference"`` or ``"sinkhorn"``.
        reference: batched predictor, required by ``"reference"``.
        reduce: reduction for ``"reference"``.
        radius, radius_quantile, block_size: for ``"knn"``.
        key, label_scale, epsilon, num_splits: for ``"sinkhorn"``.

    Returns:
        A :class:`DataDefect`; ``profile`` and ``excess`` have shape ``(|G|,)``.
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
