"""The dial's risk on a sample, and the cross-fitting folds (docs/theory.md §8).

For a model ``f`` and the symmetry dial ``f_t = Q_G f + t (I − Q_G) f``, the
squared-loss risk on a labelled sample is a quadratic in ``t``. Writing
``s = Q_G f`` and ``r = (I − Q_G) f``,

``‖y − f_t(x)‖² = ‖y − s(x)‖² − 2t ⟨y − s(x), r(x)⟩ + t² ‖r(x)‖²``

exactly, so three averages give the whole curve and its minimizer
(:func:`dial_risk`): a *measure* of one given model. It ranks post-hoc dials of
one fit; which symmetry to train with is decided by :func:`jaxsym.choose_symmetry`,
which cross-fits models trained inside each class on :func:`cross_fitting_folds`
(docs/theory.md §8b).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.types import Model
from jaxsym._src.validation import (
    as_float,
    check_batch,
    check_callable,
    check_finite,
    check_unit_interval,
    positive_int,
    raise_if_nonfinite,
)
from jaxsym.averaging import symmetrize
from jaxsym.groups import TransformationSet

__all__ = [
    "DialRisk",
    "cross_fitting_folds",
    "dial_risk",
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


def cross_fitting_folds(num_examples: int, num_folds: int, *, key=None) -> list[np.ndarray]:
    """The held-out index sets of K-fold cross-fitting, as :func:`jaxsym.choose_symmetry` uses.

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
