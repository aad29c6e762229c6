"""Type aliases shared by the package (a private module: one definition each)."""

from __future__ import annotations

from collections.abc import Callable

import jax

__all__ = ["Model"]

#: A batched model ``(n, *input) -> (n, *output)``.
Model = Callable[[jax.Array], jax.Array]
