"""Cyclic shifts Z_n rolling the leading (sequence) axis of one example."""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from jaxsym._src.group_base import Action, TransformationSet
from jaxsym._src.validation import positive_int

__all__ = ["ShiftAction", "cyclic_shifts"]


@dataclasses.dataclass(frozen=True)
class ShiftAction(Action):
    """An integer ``s`` rolls the leading axis by ``s``: ``(s·x)_i = x_{i−s mod n}``."""

    n: int

    def __call__(self, element, x):
        return x[(jnp.arange(self.n) - element) % self.n]

    def inverse(self, element):
        return (-element) % self.n

    def compose(self, a, b):
        return (a + b) % self.n

    def check_example_shape(self, shape, name):
        if len(shape) < 1 or shape[0] != self.n:
            raise ValueError(
                f"{name}: cyclic shifts Z_{self.n} act on sequences whose leading axis has "
                f"size {self.n}; got one example of shape {shape}."
            )

    def describe(self) -> str:
        return f"cyclic shifts of the leading axis (n={self.n})"

    def format_element(self, element) -> str:
        return f"shift by {int(element)}"


def cyclic_shifts(n: int) -> TransformationSet:
    """Z_n acting on sequences ``(n, ...)`` by rolling (element 0 is no shift)."""
    n = positive_int("n", n)
    return TransformationSet(
        elements=jnp.arange(n, dtype=jnp.int32), action=ShiftAction(n), name=f"Z{n}"
    )
