"""The predictive trade-off: how much symmetry to keep, estimated from training data.

docs/theory.md §8 (with §5). For a fitted model ``f̂`` and the symmetry dial
``f_t = Q_G f̂ + t (I − Q_G) f̂``, the squared-loss risk on fresh data is a
quadratic in ``t``. Writing ``s = Q_G f̂`` and ``r = (I − Q_G) f̂``,

``‖y − f_t(x)‖² = ‖y − s(x)‖² − 2t ⟨y − s(x), r(x)⟩ + t² ‖r(x)‖²``

exactly, so three held-out averages give the whole curve and its minimizer
``t* = ⟨y − Q_G f̂, (I − Q_G) f̂⟩ / ‖(I − Q_G) f̂‖²``; for G-invariant μ the
numerator's expectation is ``⟨a, (I − Q_G) f̂⟩`` with ``a = (I − Q_G) f*``, which
is §8's ``t* = ⟨a, E(I − Q_G) f̂⟩ / E‖(I − Q_G) f̂‖²``. The package estimates it by
cross-fitting (fit on K − 1 folds, evaluate on the held-out fold) and reports the
optimal model error ``ε* = t* · d_2(f̂)`` in ``d_2`` units.

The folds are public (:func:`cross_fitting_folds`) so that a caller can train
the K fold models itself (e.g. in one vectorized loop) and pass them in
(``fold_models=``, ``full_model=``). The model fitter and the synthetic task
live in :mod:`jaxsym.models` and :mod:`jaxsym.tasks`.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import (
    as_float,
    check_batch,
    check_callable,
    check_finite,
    check_group,
    check_unit_interval,
    positive_int,
    raise_if_nonfinite,
)
from jaxsym.averaging import symmetrize
from jaxsym.defects import distance_to_equivariance
from jaxsym.groups import TransformationSet, orbit_augment

Model = Callable[[jax.Array], jax.Array]
Fit = Callable[[jax.Array, jax.Array], Model]

__all__ = [
    "DialRisk",
    "PredictiveTradeoff",
    "cross_fitting_folds",
    "dial_risk",
    "predictive_tradeoff",
]


class DialRisk(NamedTuple):
    """Risk of the dialed model ``f_t`` on a labelled sample (docs/theory.md §8).

    Attributes:
        t: ``(T,)`` dial levels.
        risk: ``(T,)`` ``mean ‖y − f_t(x)‖²`` (squared loss, includes the noise).
        t_best: scalar minimizer over ``[0, 1]`` of the exact quadratic.
        alignment: scalar ``B = mean ⟨y − Q_G f(x), (I − Q_G) f(x)⟩``.
        anti_energy: scalar ``C = mean ‖(I − Q_G) f(x)‖²``.
        symmetric_risk: scalar ``A = mean ‖y − Q_G f(x)‖²`` (the risk at t = 0).
    """

    t: jax.Array
    risk: jax.Array
    t_best: jax.Array
    alignment: jax.Array
    anti_energy: jax.Array
    symmetric_risk: jax.Array


class PredictiveTradeoff(NamedTuple):
    """Cross-fitted estimate of the best symmetry level (docs/theory.md §8).

    Attributes:
        t: ``(T,)`` dial levels.
        risk: ``(T,)`` cross-fitted risk ``mean ‖y − f_t(x)‖²`` of the dial of a
            model fitted on ``(K − 1)/K`` of the data (see the bias note in
            :func:`predictive_tradeoff`).
        t_star: scalar predicted best level for the model fitted on all the data,
            ``clip(B / d_2(f̂)², 0, 1)`` (``t_star_cv`` if not bias-corrected).
        t_star_cv: scalar exact minimizer of the cross-fitted curve.
        eps_star: scalar ``ε* = t_star · d_2(f̂)``, the optimal model error in
            ``d_2`` units (§5, §8).
        eta: scalar estimate of the data's ``η = d_2(f*)`` (see
            :func:`predictive_tradeoff`).
        distance: scalar ``d_2(f̂)`` of the model fitted on all the data, on the
            orbit-augmented training inputs.
        alignment: scalar cross-fitted ``B ≈ ⟨a, E(I − Q_G) f̂⟩``.
        anti_energy: scalar cross-fitted ``C ≈ E‖(I − Q_G) f̂‖²``.
    """

    t: jax.Array
    risk: jax.Array
    t_star: jax.Array
    t_star_cv: jax.Array
    eps_star: jax.Array
    eta: jax.Array
    distance: jax.Array
    alignment: jax.Array
    anti_energy: jax.Array


# ----------------------------------------------------------------------------- checks


def _check_t_grid(t_grid) -> jax.Array:
    if t_grid is None:
        return jnp.linspace(0.0, 1.0, 21)
    t_grid = as_float(jnp.asarray(t_grid))
    if t_grid.ndim != 1 or t_grid.shape[0] == 0:
        raise ValueError(
            f"t_grid must be a non-empty 1-D array of levels; got shape {t_grid.shape}."
        )
    check_unit_interval("t_grid", t_grid)
    return t_grid


def _check_labels(y, num_examples: int) -> jax.Array:
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != num_examples:
        raise ValueError(
            f"y must have a leading axis of length {num_examples} (one label per input); "
            f"got shape {y.shape}."
        )
    check_finite("y", y)
    return as_float(y)


def _check_group_is_group(group) -> None:
    check_group(group)
    if not group.is_group:
        raise ValueError(
            f"group must be a group (is_group=True) so that Q_G is the exact projection; "
            f"got {group!r}."
        )


# ----------------------------------------------------------------------------- moments


def _moments(f: Model, x: jax.Array, y: jax.Array, weights: jax.Array, group):
    """Weighted sums ``(Σ w‖y − s‖², Σ w⟨y − s, r⟩, Σ w‖r‖²)``, ``s = Q_G f``, ``r = f − s``."""
    symmetric = symmetrize(f, group)(x)
    full = f(x)
    if full.shape != y.shape:
        raise ValueError(f"the model's outputs have shape {full.shape} but y has shape {y.shape}.")
    n = x.shape[0]
    residual = (y - symmetric).reshape(n, -1)
    anti = (full - symmetric).reshape(n, -1)
    return (
        jnp.sum(weights * jnp.sum(residual * residual, axis=1)),
        jnp.sum(weights * jnp.sum(residual * anti, axis=1)),
        jnp.sum(weights * jnp.sum(anti * anti, axis=1)),
    )


@eqx.filter_jit
def _dial_moments(f: Model, x: jax.Array, y: jax.Array, weights: jax.Array, group):
    """:func:`_moments` for one model, compiled once per model structure and shape."""
    return jnp.stack(_moments(f, x, y, weights, group))


@eqx.filter_jit
def _stacked_moments(dynamic, static, x, y, weights, group):
    """Moments of K models with stacked parameters on K padded folds, one compiled call."""

    def one(parameters, xs, ys, ws):
        return jnp.stack(_moments(eqx.combine(parameters, static), xs, ys, ws, group))

    return jax.vmap(one)(dynamic, x, y, weights)


def _stack_models(models: Sequence[Model]):
    """``(stacked array leaves, shared static part)`` if the models differ only in array
    values (e.g. equinox Modules from one ``fit``), else ``None``."""
    parts = [eqx.partition(model, eqx.is_array) for model in models]
    first_dynamic, first_static = parts[0]
    structure = jax.tree_util.tree_structure(first_dynamic)
    if not jax.tree_util.tree_leaves(first_dynamic):
        return None  # a plain closure: nothing to stack
    shapes = [(leaf.shape, leaf.dtype) for leaf in jax.tree_util.tree_leaves(first_dynamic)]
    for dynamic, static in parts[1:]:
        if jax.tree_util.tree_structure(dynamic) != structure:
            return None
        leaves = jax.tree_util.tree_leaves(dynamic)
        if [(leaf.shape, leaf.dtype) for leaf in leaves] != shapes:
            return None
        try:
            if not eqx.tree_equal(static, first_static):
                return None
        except Exception:
            return None
    stacked = jax.tree_util.tree_map(
        lambda *leaves: jnp.stack(leaves), *[dynamic for dynamic, _ in parts]
    )
    return stacked, first_static


def _quadratic(t, symmetric_risk, alignment, anti_energy):
    return symmetric_risk - 2.0 * t * alignment + t * t * anti_energy


def _best_level(alignment, anti_energy, scale):
    """``clip(B / C, 0, 1)``; 0 where the model has no anti-symmetric part.

    ``C ≤ 1e-10 · scale`` (rounding error of an equivariant model, with ``scale``
    the size of the squared residuals) counts as no anti-symmetric part.
    """
    present = anti_energy > 1e-10 * scale
    safe = jnp.where(present, anti_energy, 1.0)
    level = jnp.where(present, jnp.clip(alignment / safe, 0.0, 1.0), 0.0)
    return jnp.where(jnp.isnan(alignment + anti_energy + scale), jnp.nan, level)  # NaN stays NaN


def dial_risk(
    f: Model, x: jax.Array, y: jax.Array, group: TransformationSet, t_grid=None
) -> DialRisk:
    """Squared-loss risk of the dial ``f_t = Q_G f + t (I − Q_G) f`` on a sample (§8).

    Uses the exact identity ``mean ‖y − f_t‖² = A − 2tB + t²C`` with
    ``A = mean ‖y − Q_G f‖²``, ``B = mean ⟨y − Q_G f, (I − Q_G) f⟩``,
    ``C = mean ‖(I − Q_G) f‖²``, so ``t_best = clip(B / C, 0, 1)`` is the exact
    minimizer over ``[0, 1]``, not a grid point (docs/theory.md §8). On a large
    fresh sample this is the measured best level; on training data it is
    optimistic.

    Args:
        f: batched model ``(n, *input) -> (n, *output)``.
        x: ``(n, *input)`` inputs.
        y: ``(n, *output)`` labels, the shape of ``f(x)``.
        group: a group (exact ``Q_G``).
        t_grid: ``(T,)`` levels in ``[0, 1]``; default 21 even levels.

    Returns:
        :class:`DialRisk`.
    """
    check_callable("f", f)
    x = check_batch(group, x)
    y = _check_labels(y, x.shape[0])
    t_grid = _check_t_grid(t_grid)
    weights = jnp.ones(x.shape[0], x.dtype)
    total_residual, total_alignment, total_anti = _dial_moments(f, x, y, weights, group)
    raise_if_nonfinite(
        "dial_risk", jnp.stack([total_residual, total_alignment, total_anti]), "f's outputs"
    )
    n = x.shape[0]
    a, b, c = total_residual / n, total_alignment / n, total_anti / n
    return DialRisk(
        t=t_grid,
        risk=_quadratic(t_grid, a, b, c),
        t_best=_best_level(b, c, a + c),
        alignment=b,
        anti_energy=c,
        symmetric_risk=a,
    )


@eqx.filter_jit
def _orbit_distance(f: Model, x: jax.Array, group: TransformationSet) -> jax.Array:
    """``d_2(f)`` on the orbit-augmented sample ``{ρ_X(g) x_i}``."""
    return distance_to_equivariance(f, orbit_augment(x, group), group)


def cross_fitting_folds(num_examples: int, num_folds: int, *, key=None) -> list[np.ndarray]:
    """The held-out index sets of K-fold cross-fitting, as :func:`predictive_tradeoff` uses.

    With ``key=None`` fold ``k`` holds every K-th example from ``k``
    (``k, k + K, k + 2K, …``); with a key, every K-th example of the random
    permutation ``jax.random.permutation(key, n)``. Folds are disjoint, cover
    ``0..n−1``, differ in size by at most one, and are returned sorted. Model
    ``k`` of a cross-fit is trained on the complement of fold ``k``.

    Args:
        num_examples: ``n ≥ 2``.
        num_folds: ``K`` with ``2 ≤ K ≤ n``.
        key: optional PRNG key (keyword-only) to shuffle the examples first.

    Returns:
        A list of K sorted ``int`` index arrays.
    """
    num_examples = positive_int("num_examples", num_examples, minimum=2)
    num_folds = positive_int("num_folds", num_folds, minimum=2, maximum=num_examples)
    order = np.arange(num_examples)
    if key is not None:
        order = np.asarray(jax.random.permutation(key, num_examples))
    return [np.sort(order[k::num_folds]) for k in range(num_folds)]


def _padded_folds(folds: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(index (K, m), weight (K, m))``: folds padded to equal size ``m`` with weight 0.

    A padded slot repeats its fold's first index, so it evaluates a real example.
    """
    size = max(len(fold) for fold in folds)
    index = np.stack([np.pad(fold, (0, size - len(fold)), mode="edge") for fold in folds])
    weight = np.stack([np.arange(size) < len(fold) for fold in folds])
    return index, weight


def _fold_moments(models, x, y, folds, group) -> jax.Array:
    """Summed held-out moments over all folds: one compiled call where models stack."""
    index, weight = _padded_folds(folds)
    weights = jnp.asarray(weight, x.dtype)
    stacked = _stack_models(models)
    if stacked is not None:
        dynamic, static = stacked
        return jnp.sum(_stacked_moments(dynamic, static, x[index], y[index], weights, group), 0)
    total = jnp.zeros(3, x.dtype)
    for model, rows, w in zip(models, index, weights, strict=True):
        total = total + _dial_moments(model, x[rows], y[rows], w, group)
    return total


def predictive_tradeoff(
    fit: Fit | None,
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    t_grid=None,
    num_folds: int = 5,
    key: jax.Array | None = None,
    correct_bias: bool = True,
    fold_models: Sequence[Model] | None = None,
    full_model: Model | None = None,
) -> PredictiveTradeoff:
    """Estimate, from training data alone, the best symmetry level of a fitted model (§8).

    Cross-fitting (docs/theory.md §8): for each of K folds
    (:func:`cross_fitting_folds`), ``f̂_k = fit(x without fold k)`` and on the
    held-out fold the dial moments ``A = ‖y − Q_G f̂_k‖²``,
    ``B = ⟨y − Q_G f̂_k, (I − Q_G) f̂_k⟩``, ``C = ‖(I − Q_G) f̂_k‖²`` are summed,
    then averaged over all n held-out points. The cross-fitted risk curve is
    exactly ``risk(t) = A − 2tB + t²C`` and its minimizer
    ``t_star_cv = clip(B / C, 0, 1)`` is the closed form
    ``t* = ⟨a, E(I − Q_G) f̂⟩ / E‖(I − Q_G) f̂‖²`` of §8 with the unknown
    ``a = (I − Q_G) f*`` replaced by held-out labels (unbiased when μ is
    G-invariant, since then ``E⟨Q_G h, (I − Q_G) f̂⟩ = 0``).

    Bias: the curve describes a model fitted on ``(K − 1)/K`` of the data, whose
    anti-symmetric part is noisier than the full-data model's, so ``t_star_cv``
    is biased low (t* rises with n). In §8's decomposition the numerator is
    ``B = η² + c`` (``c`` small and only weakly dependent on n) while the
    denominator ``C = E‖(I − Q_G) f̂‖² = η² + 2c + v`` carries the variance
    ``v ∝ 1/n``. The denominator of the model actually fitted on all n samples
    is measurable without labels: ``d_2(f̂)²`` on the orbit-augmented inputs.
    So ``correct_bias=True`` returns ``t_star = clip(B / d_2(f̂)², 0, 1)``: the
    level for *this* fitted model, with only the alignment ``B`` cross-fitted.
    The returned ``risk`` curve is not corrected. The estimate of B has
    standard error about ``σ (C / n)^{1/2}``, which dominates the error of
    ``t_star`` for small n or η.

    ``eta`` is ``(B_+)^{1/2}``, an estimate of ``η = d_2(f*)`` that assumes
    ``c ≈ 0`` (a nearly unbiased anti-symmetric fit, e.g. small ridge); with
    shrinkage ``c < 0`` and it reads low. ``eps_star = t_star · d_2(f̂)`` with
    ``f̂ = fit(x, y)`` and ``d_2`` measured on the orbit-augmented training
    inputs ``{ρ_X(g) x_i}`` (a G-invariant sample, §2).

    Already-trained models: ``fold_models[k]`` must be trained without fold
    ``k`` of ``cross_fitting_folds(n, num_folds, key=key)`` and ``full_model``
    on all of ``(x, y)``; then ``fit`` is not called for them (``fit`` may be
    ``None`` when both are given). Fold models that differ only in array
    values (equinox Modules of one structure, such as
    :class:`jaxsym.models.RandomFeaturesModel`) are evaluated in one compiled,
    vectorized call; other callables fold by fold on equal-size padded folds.

    Args:
        fit: ``fit(x, y)`` returns a batched predictor; called K + 1 times
            (fewer when models are passed in).
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` training labels (the predictor's output shape).
        group: a group (``Q_G`` must be the exact projection).
        t_grid: ``(T,)`` levels in ``[0, 1]`` for ``risk``; default 21 levels.
        num_folds: K with ``2 ≤ K ≤ n``.
        key: PRNG key to shuffle the folds; ``None`` takes every K-th sample.
        correct_bias: use the full-data model's ``d_2(f̂)²`` as the denominator.
        fold_models: optional K batched predictors, model k trained without fold k.
        full_model: optional batched predictor trained on all the data.

    Returns:
        :class:`PredictiveTradeoff`.

    Raises:
        TypeError, ValueError: if ``group`` is not a group, shapes disagree,
            ``num_folds`` is out of range, or ``fit`` is missing where needed.
        FloatingPointError: if a model returns NaN or inf on the (concrete) data.
    """
    _check_group_is_group(group)
    if fit is not None:
        check_callable("fit", fit)
    elif fold_models is None or full_model is None:
        missing = " and ".join(
            name
            for name, value in (("fold_models", fold_models), ("full_model", full_model))
            if value is None
        )
        raise ValueError(
            f"fit=None needs both fold_models and full_model; {missing} not given, so "
            f"fit(x, y) would have to train it."
        )
    x = check_batch(group, x)
    n = x.shape[0]
    y = _check_labels(y, n)
    t_grid = _check_t_grid(t_grid)
    folds = cross_fitting_folds(n, num_folds, key=key)
    if fold_models is None:
        everything = np.arange(n)
        trains = [np.setdiff1d(everything, held) for held in folds]
        fold_models = [fit(x[train], y[train]) for train in trains]
    else:
        fold_models = list(fold_models)
        if len(fold_models) != len(folds):
            raise ValueError(
                f"fold_models must hold num_folds={len(folds)} predictors (model k trained "
                f"without fold k of cross_fitting_folds(n, num_folds, key=key)); got "
                f"{len(fold_models)}."
            )
        for k, model in enumerate(fold_models):
            check_callable(f"fold_models[{k}]", model)
    if full_model is None:
        full_model = fit(x, y)
    check_callable("full_model", full_model)

    totals = _fold_moments(fold_models, x, y, folds, group)
    raise_if_nonfinite("predictive_tradeoff", totals, "the fold models' held-out outputs")
    symmetric_risk, alignment, anti_energy = totals / n
    scale = symmetric_risk + anti_energy
    t_star_cv = _best_level(alignment, anti_energy, scale)
    distance = _orbit_distance(full_model, x, group)
    raise_if_nonfinite("predictive_tradeoff", distance, "the full model's outputs (on the orbit)")
    t_star = _best_level(alignment, distance**2, scale) if correct_bias else t_star_cv
    return PredictiveTradeoff(
        t=t_grid,
        risk=_quadratic(t_grid, symmetric_risk, alignment, anti_energy),
        t_star=t_star,
        t_star_cv=t_star_cv,
        eps_star=t_star * distance,
        eta=jnp.sqrt(jnp.maximum(alignment, 0.0)),
        distance=distance,
        alignment=alignment,
        anti_energy=anti_energy,
    )
