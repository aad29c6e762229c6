"""Symmetries of square image grids: rot90 (C4) and rot90 with flips (D4).

Elements are 2 × 2 integer orthogonal matrices ``A`` acting on pixel coordinates
centred on the grid. Pixel maps must be left actions (docs/theory.md §1), so the
image is moved as ``(A·x)(p) = x(A⁻¹ p)``.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym.groups._base import Action, TransformationSet, format_matrix

__all__ = ["GridAction", "flip_rot90", "rot90"]


@dataclasses.dataclass(frozen=True)
class GridAction(Action):
    """Integer orthogonal 2 × 2 matrices acting on square grids ``(H, W[, C])``."""

    def __call__(self, element: jax.Array, x: jax.Array) -> jax.Array:
        n = x.shape[0]
        doubled = 2 * jnp.arange(n, dtype=jnp.int32) - (n - 1)  # 2 × centred coordinate
        grid = jnp.stack(jnp.meshgrid(doubled, doubled, indexing="ij"))  # (2, n, n)
        source = jnp.einsum("ji,jhw->ihw", element.astype(jnp.int32), grid)  # Aᵀ p = A⁻¹ p
        rows, cols = (source + (n - 1)) // 2
        return x[rows, cols]

    def inverse(self, element):
        return jnp.swapaxes(element, -1, -2)

    def compose(self, a, b):
        return a @ b

    def check_example_shape(self, shape, name):
        if len(shape) not in (2, 3) or shape[0] != shape[1]:
            raise ValueError(
                f"{name}: rot90/flip groups act on square images of shape (H, H) or "
                f"(H, H, C); got one example of shape {shape}."
            )

    def describe(self) -> str:
        return "rot90/flips of square image grids"

    def format_element(self, element) -> str:
        return format_matrix(np.asarray(element, dtype=np.float64))


_QUARTER_TURN = np.array([[0, -1], [1, 0]], dtype=np.int32)
_FLIP = np.array([[1, 0], [0, -1]], dtype=np.int32)


def _turns() -> list[np.ndarray]:
    return [np.linalg.matrix_power(_QUARTER_TURN, k) for k in range(4)]


def rot90() -> TransformationSet:
    """C4 acting on square images by quarter turns (element 0 is the identity)."""
    return TransformationSet(
        elements=jnp.asarray(np.stack(_turns())), action=GridAction(), name="C4(rot90)"
    )


def flip_rot90() -> TransformationSet:
    """D4 acting on square images: four quarter turns, then the four with a flip."""
    turns = _turns()
    elements = np.stack(turns + [t @ _FLIP for t in turns])
    return TransformationSet(elements=jnp.asarray(elements), action=GridAction(), name="D4(img)")
