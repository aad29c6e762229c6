"""SO(3) acting on points or point sets ``(..., 3)`` by an exact Haar sample."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxsym.groups._base import MatrixAction, TransformationSet
from jaxsym._validation import positive_int


def quaternion_to_matrix(q: jax.Array) -> jax.Array:
    """Rotation matrix of a unit quaternion ``(w, x, y, z)``; shape ``(..., 3, 3)``."""
    w, x, y, z = jnp.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ]
    return jnp.stack([jnp.stack(row, -1) for row in rows], -2)


def haar_so3(key: jax.Array, num: int) -> jax.Array:
    """``num`` independent Haar-distributed rotations, shape ``(num, 3, 3)``.

    A normalized standard Gaussian in R⁴ is uniform on the unit quaternions,
    whose image in SO(3) is Haar-distributed.
    """
    q = jax.random.normal(key, (num, 4))
    return quaternion_to_matrix(q / jnp.linalg.norm(q, axis=-1, keepdims=True))


def so3(num: int, key: jax.Array) -> TransformationSet:
    """A Haar sample of SO(3): the identity and ``num − 1`` uniform rotations.

    Not a group: averaging over it is a Monte Carlo ``Q_ν``, neither idempotent
    nor exactly equivariant (theory.md §3). The identity is element 0 because it
    is always counted in ``S`` (theory.md §1).

    Args:
        num: number of elements, at least 1.
        key: a PRNG key.
    """
    num = positive_int("num", num)
    sample = haar_so3(key, num - 1)
    elements = jnp.concatenate([jnp.eye(3)[None], sample]).astype(jnp.float32)
    return TransformationSet(
        elements=elements, action=MatrixAction(3), is_group=num == 1, name=f"SO3[{num}]"
    )
