"""Synthetic tasks with a known data asymmetry (docs/theory.md §8).

The planar task: ``x ~ N(0, I₂)``, ``f*(x) = q(x) + η a(x)`` with the rotation
invariant ``q = cos ‖x‖`` and ``a = (x₁ + x₁x₂)/√2``, labels
``y = f*(x) + σ ε``. For ``G = C_n`` with ``n ≥ 3``, ``d_2(f*) = η`` exactly.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxsym._src.validation import check_nonnegative, positive_int

__all__ = ["PlanarTask", "planar_target", "planar_task"]


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
    ``d_2(f*) = η`` exactly (docs/theory.md §5). Per rotation by θ,
    ``E_x (f*(R_θ x) − f*(x))² = η² (2 − cos θ − cos 2θ)``. Shape ``(n, 2) -> (n, 1)``.
    """
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2); got {x.shape}.")
    radius = jnp.sqrt(jnp.sum(x * x, axis=-1))
    anti = (x[:, 0] + x[:, 0] * x[:, 1]) / jnp.sqrt(2.0)
    return (jnp.cos(radius) + eta * anti)[:, None]


def planar_task(num_samples: int, eta, *, key: jax.Array, noise: float = 0.3) -> PlanarTask:
    """Draw §8's synthetic C_n task: ``x ~ N(0, I₂)``, ``y = f*(x) + noise · ε``.

    Args:
        num_samples: ``n ≥ 1``.
        eta: data asymmetry ``η = d_2(f*) ≥ 0`` for ``G = C_n``, ``n ≥ 3``.
        key: PRNG key (keyword-only).
        noise: label noise standard deviation ``σ ≥ 0``.

    Returns:
        :class:`PlanarTask`.
    """
    num_samples = positive_int("num_samples", num_samples)
    check_nonnegative("eta", eta)
    check_nonnegative("noise", noise)
    if key is None:
        raise ValueError("key is required: a PRNG key for the inputs and the label noise.")
    input_key, noise_key = jax.random.split(key)
    x = jax.random.normal(input_key, (num_samples, 2))
    target = planar_target(x, eta)
    y = target + noise * jax.random.normal(noise_key, target.shape)
    return PlanarTask(x=x, y=y, target=target)
