"""Per-example losses that the decision ranks options by (docs/theory.md §8, §9).

``"squared"``: ``‖y − ŷ‖²`` summed over the output; ``"zero_one"``: ``1`` where
``argmax ŷ ≠ argmax y`` (one-hot or score labels), the loss a classifier's
held-out certificate counts (:func:`jaxsym.held_out_bound`).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["LOSSES", "example_losses"]

#: The losses a screen can rank by.
LOSSES = ("squared", "zero_one")


def example_losses(predictions: jax.Array, y: jax.Array, loss: str = "squared") -> jax.Array:
    """One loss per example: ``‖y_i − ŷ_i‖²`` or ``1[argmax ŷ_i ≠ argmax y_i]``.

    Args:
        predictions: ``(n, *output)`` model outputs.
        y: ``(n, *output)`` labels (one-hot rows for ``"zero_one"``).
        loss: ``"squared"`` or ``"zero_one"``.

    Returns:
        ``(n,)`` losses, in the predictions' float dtype.

    >>> import jax.numpy as jnp
    >>> y = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> example_losses(jnp.array([[0.9, 0.2], [0.6, 0.4]]), y, "zero_one").tolist()
    [0.0, 1.0]
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
    n = y.shape[0]
    predicted = predictions.reshape(n, -1)
    target = y.reshape(n, -1).astype(predicted.dtype)
    if loss == "squared":
        return jnp.sum((predicted - target) ** 2, axis=1)
    wrong = jnp.argmax(predicted, axis=1) != jnp.argmax(target, axis=1)
    return wrong.astype(predicted.dtype)
