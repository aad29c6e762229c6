"""SO(3) acting on points or point sets ``(..., 3)`` by an exact Haar sample."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym._src.group_base import MatrixAction, TransformationSet, repeated_elements
from jaxsym._src.validation import check_key, is_concrete, positive_int

__all__ = ["haar_so3", "quaternion_to_matrix", "so3"]


def quaternion_to_matrix(q: jax.Array) -> jax.Array:
    """Rotation matrix of a unit quaternion ``(w, x, y, z)``; shape ``(..., 3, 3)``."""
    w, x, y, z = jnp.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return jnp.stack([jnp.stack(row, -1) for row in rows], -2)


def haar_so3(num: int, *, key: jax.Array) -> jax.Array:
    """``num`` independent Haar-distributed rotations, shape ``(num, 3, 3)``.

    A normalized standard Gaussian in R⁴ is uniform on the unit quaternions,
    whose image in SO(3) is Haar-distributed. Computed in JAX's default float
    (float64 under ``jax_enable_x64``).
    """
    q = jax.random.normal(key, (num, 4), dtype=jnp.zeros(()).dtype)
    return quaternion_to_matrix(q / jnp.linalg.norm(q, axis=-1, keepdims=True))


def so3(num: int, *, key: jax.Array) -> TransformationSet:
    """A Haar sample of SO(3): the identity and ``num − 1`` uniform rotations.

    Not a group: averaging over it is a Monte Carlo ``Q_ν``, neither idempotent
    nor exactly equivariant (docs/theory.md §3). The identity is element 0
    because it is always counted in ``S`` (docs/theory.md §1). The elements are
    in JAX's default float (float64 under ``jax_enable_x64``); samples drawn with
    different keys share one ``jit`` trace (the name ``SO3[num]`` holds no key).

    Args:
        num: number of elements, at least 1.
        key: a PRNG key (keyword-only), e.g. ``jax.random.key(0)``.

    Raises:
        ValueError: if the sample holds one rotation twice after the cast to
            float32 (probability 0; checked when the key is concrete).
    """
    num = positive_int("num", num)
    check_key(key)
    sample = haar_so3(num - 1, key=key)
    elements = jnp.concatenate([jnp.eye(3, dtype=sample.dtype)[None], sample])
    pair = repeated_elements(elements, num) if is_concrete(elements) else None
    if pair is not None:  # probability 0 for a Haar sample; refused all the same
        raise ValueError(
            f"key: the sample of num={num} rotations drawn from this key holds one rotation "
            f"twice in float32 (elements {pair[0]} and {pair[1]}); draw with another key."
        )
    return TransformationSet(
        elements=elements, action=MatrixAction(3), is_group=num == 1, name=f"SO3[{num}]"
    )
