"""Loss and class constants of the certified bound, as one value (docs/theory.md §4).

The §4 bound needs a bounded loss ``ℓ(ŷ, y) ∈ [0, B]`` that is ``L_ℓ``-Lipschitz
in the prediction ``ŷ`` (Euclidean norm) on the ball of radius ``M√d_y`` that
holds the outputs and the rotated grid values of the entropy lemma, and a model
class with Lipschitz constant ``L``, outputs in ``[−M, M]^{d_y}`` and a failure
probability ``δ``. :class:`LossConstants` holds ``(B, L_ℓ)``;
:class:`BoundConstants` holds everything, validated once by
:func:`check_constants`, and every bound function takes it as ``constants``.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from jaxsym._validation import (
    check_nonnegative,
    check_positive,
    check_probability,
    is_concrete,
    positive_int,
)

__all__ = [
    "BoundConstants",
    "LossConstants",
    "absolute_loss_constants",
    "check_constants",
    "clipped_squared_loss_constants",
    "ramp_loss_constants",
    "squared_loss_constants",
]


class LossConstants(NamedTuple):
    """Range ``B`` (loss in ``[0, B]``) and Lipschitz constant ``L_ℓ`` in ``ŷ`` (§4)."""

    loss_range: float
    loss_lipschitz: float


class BoundConstants(NamedTuple):
    """The constants of the certified bound, fixed before the data (docs/theory.md §4).

    A NamedTuple (a pytree: its numbers may be traced, e.g. under ``jax.grad``).

    Attributes:
        lipschitz: ``L ≥ 0``, a *certified* Lipschitz constant of the model class.
        output_bound: ``M > 0``: outputs in ``[−M, M]^{d_y}``.
        loss: the :class:`LossConstants` ``(B, L_ℓ)``.
        output_dim: ``d_y``.
        delta: failure probability ``δ ∈ (0, 1)``.
    """

    lipschitz: float
    output_bound: float
    loss: LossConstants
    output_dim: int = 1
    delta: float = 0.05


def check_constants(constants, name: str = "constants") -> BoundConstants:
    """Check a :class:`BoundConstants` once; raise naming the field at fault."""
    if not isinstance(constants, BoundConstants):
        raise TypeError(
            f"{name} must be a jaxsym.losses.BoundConstants(lipschitz, output_bound, loss, "
            f"output_dim=1, delta=0.05); got {type(constants).__name__}: {constants!r:.80}."
        )
    if not isinstance(constants.loss, LossConstants):
        raise TypeError(
            f"{name}.loss must be a LossConstants (e.g. squared_loss_constants(...)); "
            f"got {constants.loss!r:.80}."
        )
    check_nonnegative(f"{name}.lipschitz", constants.lipschitz)
    check_positive(f"{name}.output_bound", constants.output_bound)
    check_positive(f"{name}.loss.loss_range", constants.loss.loss_range)
    check_positive(f"{name}.loss.loss_lipschitz", constants.loss.loss_lipschitz)
    check_probability(f"{name}.delta", constants.delta)
    if is_concrete(constants.output_dim):
        positive_int(f"{name}.output_dim", _as_int(constants.output_dim))
    return constants


def _as_int(value):
    """``np.int64(3)``/``3`` stay; ``3.0`` fails in :func:`positive_int`."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and np.issubdtype(value.dtype, np.integer):
        return int(value)
    return value


def _radius(output_bound, output_dim, label_bound) -> float:
    check_positive("output_bound", output_bound)
    output_dim = positive_int("output_dim", output_dim)
    check_nonnegative("label_bound", label_bound)
    return float(output_bound) * math.sqrt(output_dim) + float(label_bound)


def squared_loss_constants(
    output_bound: float, output_dim: int, label_bound: float
) -> LossConstants:
    """Squared loss ``‖ŷ − y‖²`` with ``ŷ ∈ [−M, M]^{d_y}``, ``‖y‖ ≤ Y`` (clip labels).

    ``B = (M√d_y + Y)²`` and ``L_ℓ = 2(M√d_y + Y)`` (docs/theory.md §4): the loss
    is Lipschitz in ``ŷ`` on the Euclidean ball of radius ``M√d_y``, which also
    holds the rotated grid values ``ρ_Y(s) q`` of the entropy lemma.

    Args:
        output_bound: ``M``.
        output_dim: ``d_y``.
        label_bound: ``Y``.
    """
    radius = _radius(output_bound, output_dim, label_bound)
    return LossConstants(loss_range=radius**2, loss_lipschitz=2 * radius)


def absolute_loss_constants(
    output_bound: float, output_dim: int, label_bound: float
) -> LossConstants:
    """Euclidean-norm loss ``‖ŷ − y‖`` with ``ŷ ∈ [−M, M]^{d_y}``, ``‖y‖ ≤ Y``.

    ``B = M√d_y + Y`` and ``L_ℓ = 1`` (triangle inequality): the same data as
    :func:`squared_loss_constants` with a smaller range and Lipschitz constant,
    so a smaller bound (docs/theory.md §4).

    Args:
        output_bound: ``M``.
        output_dim: ``d_y``.
        label_bound: ``Y``.
    """
    radius = _radius(output_bound, output_dim, label_bound)
    return LossConstants(loss_range=radius, loss_lipschitz=1.0)


def clipped_squared_loss_constants(clip: float) -> LossConstants:
    """Clipped squared loss ``min(‖ŷ − y‖², c)``: ``B = c``, ``L_ℓ = 2√c``.

    Bounded whatever the labels (no label clipping needed); where it is not
    clipped its gradient in ``ŷ`` is ``2(ŷ − y)`` with ``‖ŷ − y‖ ≤ √c``, and the
    clip is a non-expansive map of the squared loss (docs/theory.md §4).

    Args:
        clip: ``c > 0``.
    """
    check_positive("clip", clip)
    return LossConstants(loss_range=float(clip), loss_lipschitz=2 * math.sqrt(float(clip)))


def ramp_loss_constants(margin: float) -> LossConstants:
    """Ramp loss ``ℓ(z) = clip(1 − z/γ, 0, 1)`` of the margin ``z = y f(x)``, ``y ∈ {−1, 1}``.

    The loss lies in ``[0, 1]`` and is ``1/γ``-Lipschitz in ``f(x)``; it
    upper-bounds the 0–1 loss, so its risk bound bounds the classification error
    (docs/theory.md §4).

    Args:
        margin: ``γ > 0``.
    """
    check_positive("margin", margin)
    return LossConstants(loss_range=1.0, loss_lipschitz=1.0 / float(margin))
