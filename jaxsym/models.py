"""Small reference models to use as ``fit`` in :func:`jaxsym.predictive.predictive_tradeoff`.

``fit(x, y)`` returns a batched predictor ``(n, *input) -> (n, *output)``: the
convention of the predictive trade-off (docs/theory.md §8).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import as_float, check_finite, check_positive, positive_int

__all__ = ["RandomFeaturesModel", "random_features_ridge"]

Model = Callable[[jax.Array], jax.Array]
Fit = Callable[[jax.Array, jax.Array], Model]


class RandomFeaturesModel(eqx.Module):
    """``f(x) = m + Φ(x) w`` with random Fourier features ``Φ(x) = √(2/p) cos(x W + b)``.

    An equinox Module (a pytree): it passes through ``jit`` and ``vmap``, and
    models fitted on inputs of the same shape stack leaf by leaf.

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
    num_features: int, ridge: float, *, key: jax.Array, lengthscale: float = 1.0
) -> Fit:
    """A small regressor to use as ``fit``: random Fourier features + ridge (docs/theory.md §8).

    ``fit(x, y)`` draws (from ``key``, so the same for every call on inputs of
    the same size) frequencies ``W ~ N(0, I/ℓ²)`` and phases ``b ~ U[0, 2π)``,
    and solves ``min_w mean ‖y − m − Φ(x) w‖² + λ‖w‖²`` with ``m`` the label
    mean. The features are not equivariant, so the fitted model has an
    anti-symmetric part for the dial to scale.

    Args:
        num_features: ``p ≥ 1`` random features.
        ridge: ``λ > 0`` (on the mean squared loss).
        key: PRNG key for the features (keyword-only).
        lengthscale: ``ℓ > 0``, in input units.

    Returns:
        ``fit(x: (n, *input), y: (n, *output)) -> RandomFeaturesModel``.

    Raises:
        TypeError, ValueError: naming the argument at fault.
    """
    num_features = positive_int("num_features", num_features)
    check_positive("ridge", ridge)
    check_positive("lengthscale", lengthscale)
    if key is None:
        raise ValueError("key is required: a PRNG key for the random features.")
    lengthscale = float(lengthscale)

    def fit(x: jax.Array, y: jax.Array) -> RandomFeaturesModel:
        x = as_float(x)
        check_finite("x", x)
        y = jnp.asarray(y)
        if y.ndim < 1 or y.shape[0] != x.shape[0]:
            raise ValueError(
                f"y must have a leading axis of length {x.shape[0]} (one label per input); "
                f"got shape {y.shape}."
            )
        check_finite("y", y)
        y = y.astype(x.dtype)
        return _fit_random_features(
            x, y, key, num_features, jnp.asarray(ridge, x.dtype), lengthscale
        )

    return fit
