"""The predictive trade-off: how much symmetry to keep, estimated from training data.

theory.md §8 (with §5). For a fitted model ``f̂`` and the symmetry dial
``f_t = Q_G f̂ + t (I − Q_G) f̂``, the squared-loss risk on fresh data is a
quadratic in ``t``. Writing ``s = Q_G f̂`` and ``r = (I − Q_G) f̂``,

``‖y − f_t(x)‖² = ‖y − s(x)‖² − 2t ⟨y − s(x), r(x)⟩ + t² ‖r(x)‖²``

exactly, so three held-out averages give the whole curve and its minimizer
``t* = ⟨y − Q_G f̂, (I − Q_G) f̂⟩ / ‖(I − Q_G) f̂‖²``; for G-invariant μ the
numerator's expectation is ``⟨a, (I − Q_G) f̂⟩`` with ``a = (I − Q_G) f*``, which
is §8's ``t* = ⟨a, E(I − Q_G) f̂⟩ / E‖(I − Q_G) f̂‖²``. The package estimates it by
cross-fitting (fit on K − 1 folds, evaluate on the held-out fold) and reports the
optimal model error ``ε* = t* · d_2(f̂)`` in ``d_2`` units.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import check_batch, check_finite, check_nonnegative, check_positive
from jaxsym.averaging import symmetrize
from jaxsym.defects import distance_to_equivariance
from jaxsym.groups import TransformationSet, transform_batch

Model = Callable[[jax.Array], jax.Array]
Fit = Callable[[jax.Array, jax.Array], Model]

__all__ = [
    "DialRisk",
    "PlanarTask",
    "PredictiveTradeoff",
    "RandomFeaturesModel",
    "dial_risk",
    "orbit_augment",
    "planar_target",
    "planar_task",
    "predictive_tradeoff",
    "random_features_ridge",
]


class DialRisk(NamedTuple):
    """Risk of the dialed model ``f_t`` on a labelled sample (theory.md §8).

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
    """Cross-fitted estimate of the best symmetry level (theory.md §8).

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


def _check_t_grid(t_grid) -> jax.Array:
    if t_grid is None:
        return jnp.linspace(0.0, 1.0, 21)
    t_grid = jnp.asarray(t_grid, dtype=jnp.float32)
    if t_grid.ndim != 1 or t_grid.shape[0] == 0:
        raise ValueError(
            f"t_grid must be a non-empty 1-D array of levels; got shape {t_grid.shape}."
        )
    check_finite("t_grid", t_grid)
    values = np.asarray(t_grid)
    if np.any(values < 0) or np.any(values > 1):
        raise ValueError(
            f"t_grid values must lie in [0, 1]; got min {values.min()}, max {values.max()}."
        )
    return t_grid


def _check_labels(y, num_examples: int) -> jax.Array:
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != num_examples:
        raise ValueError(
            f"y must have a leading axis of length {num_examples} (one label per input); "
            f"got shape {y.shape}."
        )
    check_finite("y", y)
    return y.astype(jnp.float32) if not jnp.issubdtype(y.dtype, jnp.floating) else y


@eqx.filter_jit
def _dial_moments(f: Model, x: jax.Array, y: jax.Array, group: TransformationSet):
    """Sums ``(Σ‖y − s‖², Σ⟨y − s, r⟩, Σ‖r‖²)`` over a sample, ``s = Q_G f``, ``r = f − s``."""
    symmetric = symmetrize(f, group)(x)
    full = f(x)
    if full.shape != y.shape:
        raise ValueError(f"the model's outputs have shape {full.shape} but y has shape {y.shape}.")
    n = x.shape[0]
    residual = (y - symmetric).reshape(n, -1)
    anti = (full - symmetric).reshape(n, -1)
    return (
        jnp.sum(residual * residual),
        jnp.sum(residual * anti),
        jnp.sum(anti * anti),
    )


def _quadratic(t, symmetric_risk, alignment, anti_energy):
    return symmetric_risk - 2.0 * t * alignment + t * t * anti_energy


def _best_level(alignment, anti_energy, scale):
    """``clip(B / C, 0, 1)``; 0 where the model has no anti-symmetric part.

    ``C ≤ 1e-10 · scale`` (rounding error of an equivariant model, with ``scale``
    the size of the squared residuals) counts as no anti-symmetric part.
    """
    present = anti_energy > 1e-10 * scale
    safe = jnp.where(present, anti_energy, 1.0)
    return jnp.where(present, jnp.clip(alignment / safe, 0.0, 1.0), 0.0)


def dial_risk(
    f: Model, x: jax.Array, y: jax.Array, group: TransformationSet, t_grid=None
) -> DialRisk:
    """Squared-loss risk of the dial ``f_t = Q_G f + t (I − Q_G) f`` on a sample (§8).

    Uses the exact identity ``mean ‖y − f_t‖² = A − 2tB + t²C`` with
    ``A = mean ‖y − Q_G f‖²``, ``B = mean ⟨y − Q_G f, (I − Q_G) f⟩``,
    ``C = mean ‖(I − Q_G) f‖²``, so ``t_best = clip(B / C, 0, 1)`` is the exact
    minimizer over ``[0, 1]``, not a grid point. On a large fresh sample this is
    the measured best level; on training data it is optimistic.

    Args:
        f: batched model ``(n, *input) -> (n, *output)``.
        x: ``(n, *input)`` inputs.
        y: ``(n, *output)`` labels, the shape of ``f(x)``.
        group: a group (exact ``Q_G``).
        t_grid: ``(T,)`` levels in ``[0, 1]``; default 21 even levels.

    Returns:
        :class:`DialRisk`.
    """
    x = check_batch(group, x)
    y = _check_labels(y, x.shape[0])
    t_grid = _check_t_grid(t_grid)
    total_residual, total_alignment, total_anti = _dial_moments(f, x, y, group)
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
    return distance_to_equivariance(f, orbit_augment(group, x), group)


def _folds(num_examples: int, num_folds: int, key) -> list[np.ndarray]:
    order = np.arange(num_examples)
    if key is not None:
        order = np.asarray(jax.random.permutation(key, num_examples))
    return [order[k::num_folds] for k in range(num_folds)]


def orbit_augment(group: TransformationSet, x: jax.Array) -> jax.Array:
    """All copies ``ρ_X(g) x_b``, shape ``(|G|·B, *input)``: a G-invariant sample."""
    moved = transform_batch(group, group.elements, x)
    return moved.reshape((-1,) + x.shape[1:])


def predictive_tradeoff(
    fit: Fit,
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    t_grid=None,
    num_folds: int = 5,
    key: jax.Array | None = None,
    correct_bias: bool = True,
) -> PredictiveTradeoff:
    """Estimate, from training data alone, the best symmetry level of a fitted model (§8).

    Cross-fitting: for each of K folds, ``f̂_k = fit(x without fold k)`` and on
    the held-out fold the dial moments ``A = ‖y − Q_G f̂_k‖²``,
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

    Args:
        fit: ``fit(x, y)`` returns a batched predictor; called K + 1 times.
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` training labels (the predictor's output shape).
        group: a group (``Q_G`` must be the exact projection).
        t_grid: ``(T,)`` levels in ``[0, 1]`` for ``risk``; default 21 levels.
        num_folds: K ≥ 2, at most n.
        key: PRNG key to shuffle the folds; ``None`` takes every K-th sample.
        correct_bias: use the full-data model's ``d_2(f̂)²`` as the denominator.

    Returns:
        :class:`PredictiveTradeoff`.

    Raises:
        ValueError: if ``group`` is not a group, shapes disagree, or
            ``num_folds`` is out of range.
    """
    if not group.is_group:
        raise ValueError(
            f"group must be a group (is_group=True) so that Q_G is the exact projection; "
            f"got {group!r}."
        )
    if not callable(fit):
        raise ValueError(f"fit must be callable fit(x, y) -> predictor; got {fit!r}.")
    x = check_batch(group, x)
    n = x.shape[0]
    y = _check_labels(y, n)
    t_grid = _check_t_grid(t_grid)
    if isinstance(num_folds, bool) or not isinstance(num_folds, (int, np.integer)):
        raise ValueError(f"num_folds must be an int; got {num_folds!r}.")
    if not 2 <= num_folds <= n:
        raise ValueError(f"num_folds must lie in [2, n={n}]; got {num_folds}.")

    totals = jnp.zeros(3)
    for held_out in _folds(n, num_folds, key):
        train = np.setdiff1d(np.arange(n), held_out)
        model = fit(x[train], y[train])
        totals = totals + jnp.stack(_dial_moments(model, x[held_out], y[held_out], group))
    symmetric_risk, alignment, anti_energy = totals / n

    scale = symmetric_risk + anti_energy
    t_star_cv = _best_level(alignment, anti_energy, scale)
    model = fit(x, y)
    distance = _orbit_distance(model, x, group)
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


class RandomFeaturesModel(eqx.Module):
    """``f(x) = m + Φ(x) w`` with random Fourier features ``Φ(x) = √(2/p) cos(x W + b)``.

    Attributes:
        projection: ``(d, p)`` random frequencies ``W``.
        phase: ``(p,)`` random phases ``b``.
        weights: ``(p, d_y)`` ridge weights ``w``.
        offset: ``(d_y,)`` the label mean ``m``.
        output_shape: the shape of one output (static).
    """

    projection: jax.Array
    phase: jax.Array
    weights: jax.Array
    offset: jax.Array
    output_shape: tuple[int, ...] = eqx.field(static=True)

    def features(self, x: jax.Array) -> jax.Array:
        """``Φ(x)``, shape ``(n, p)`` for inputs ``(n, *input)``."""
        flat = x.reshape(x.shape[0], -1)
        scale = jnp.sqrt(2.0 / self.phase.shape[0])
        return scale * jnp.cos(flat @ self.projection + self.phase)

    def __call__(self, x: jax.Array) -> jax.Array:
        out = self.features(x) @ self.weights + self.offset
        return out.reshape((x.shape[0],) + self.output_shape)


@eqx.filter_jit
def _fit_random_features(
    x: jax.Array, y: jax.Array, key: jax.Array, num_features: int, ridge, lengthscale
) -> RandomFeaturesModel:
    """Draw the features from ``key`` and solve ``(ΦᵀΦ/n + λI) w = Φᵀ(y − m)/n`` by Cholesky."""
    n = x.shape[0]
    dim = int(np.prod(x.shape[1:]))
    frequency_key, phase_key = jax.random.split(key)
    projection = jax.random.normal(frequency_key, (dim, num_features), x.dtype) / lengthscale
    phase = jax.random.uniform(phase_key, (num_features,), x.dtype, maxval=2 * jnp.pi)
    targets = y.reshape(n, -1)
    offset = jnp.mean(targets, axis=0)
    shape = tuple(y.shape[1:])
    features = RandomFeaturesModel(projection, phase, offset, offset, shape).features(x)
    gram = features.T @ features / n + ridge * jnp.eye(num_features, dtype=features.dtype)
    factor = jax.scipy.linalg.cho_factor(gram, lower=True)
    weights = jax.scipy.linalg.cho_solve(factor, features.T @ (targets - offset) / n)
    return RandomFeaturesModel(projection, phase, weights, offset, shape)


def random_features_ridge(
    num_features: int, ridge: float, key: jax.Array, *, lengthscale: float = 1.0
) -> Fit:
    """A small regressor to use as ``fit``: random Fourier features + ridge (§8).

    ``fit(x, y)`` draws (from ``key``, so the same for every call on inputs of
    the same size) frequencies ``W ~ N(0, I/ℓ²)`` and phases ``b ~ U[0, 2π)``,
    and solves ``min_w mean ‖y − m − Φ(x) w‖² + λ‖w‖²`` with ``m`` the label
    mean. The features are not equivariant, so the fitted model has an
    anti-symmetric part for the dial to scale.

    Args:
        num_features: ``p ≥ 1`` random features.
        ridge: ``λ > 0`` (on the mean squared loss).
        key: PRNG key for the features.
        lengthscale: ``ℓ > 0``, in input units.

    Returns:
        ``fit(x: (n, *input), y: (n, *output)) -> RandomFeaturesModel``.
    """
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)):
        raise ValueError(f"num_features must be a positive int; got {num_features!r}.")
    if num_features < 1:
        raise ValueError(f"num_features must be a positive int; got {num_features}.")
    check_positive("ridge", ridge)
    check_positive("lengthscale", lengthscale)
    lengthscale = float(lengthscale)

    def fit(x: jax.Array, y: jax.Array) -> RandomFeaturesModel:
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            x = x.astype(jnp.float32)
        y = _check_labels(y, x.shape[0]).astype(x.dtype)
        return _fit_random_features(
            x, y, key, int(num_features), jnp.asarray(ridge, x.dtype), lengthscale
        )

    return fit


class PlanarTask(NamedTuple):
    """A sample of §8's synthetic task: ``y = q(x) + η a(x) + σ ε``.

    Attributes:
        x: ``(n, 2)`` inputs ``~ N(0, I₂)`` (rotation-invariant μ).
        y: ``(n, 1)`` noisy labels.
        target: ``(n, 1)`` noise-free ``f*(x)``.
    """

    x: jax.Array
    y: jax.Array
    target: jax.Array


def planar_target(x: jax.Array, eta) -> jax.Array:
    """``f*(x) = q(x) + η a(x)`` with ``q = cos ‖x‖`` and ``a = (x₁ + x₁x₂)/√2``.

    ``q`` is rotation invariant; ``a`` has angular frequencies 1 and 2 only, so
    ``Q_{C_n} a = 0`` for ``n ≥ 3``, and ``‖a‖_{L²(N(0, I₂))} = 1``: hence
    ``d_2(f*) = η`` exactly (§5). Shape ``(n, 2) -> (n, 1)``.
    """
    radius = jnp.sqrt(jnp.sum(x * x, axis=-1))
    anti = (x[:, 0] + x[:, 0] * x[:, 1]) / jnp.sqrt(2.0)
    return (jnp.cos(radius) + eta * anti)[:, None]


def planar_task(key: jax.Array, num_samples: int, eta, *, noise: float = 0.3) -> PlanarTask:
    """Draw §8's synthetic C_n task: ``x ~ N(0, I₂)``, ``y = f*(x) + noise · ε``.

    Args:
        key: PRNG key.
        num_samples: ``n``.
        eta: data asymmetry ``η = d_2(f*) ≥ 0`` for ``G = C_n``, ``n ≥ 3``.
        noise: label noise standard deviation σ.
    """
    check_nonnegative("eta", eta)
    check_nonnegative("noise", noise)
    input_key, noise_key = jax.random.split(key)
    x = jax.random.normal(input_key, (num_samples, 2))
    target = planar_target(x, eta)
    y = target + noise * jax.random.normal(noise_key, target.shape)
    return PlanarTask(x=x, y=y, target=target)
