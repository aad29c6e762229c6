"""Loss and class constants of the §4 theory bound, as one value (docs/theory.md §4).

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

import jax
import numpy as np

from jaxsym._src.validation import (
    check_nonnegative,
    check_positive,
    check_probability,
    check_scalar,
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
    """Range ``B`` (loss in ``[0, B]``) and Lipschitz constant ``L_ℓ`` in ``ŷ`` (§4).

    Attributes:
        loss_range: ``B``.
        loss_lipschitz: ``L_ℓ``.
        output_bound: the ``M`` that ``B`` and ``L_ℓ`` were derived for, or ``None``
            when they do not depend on it (clipped, ramp or a hand-made loss).
        output_dim: the ``d_y`` they were derived for, or ``None`` likewise.

    The factories below record ``output_bound``/``output_dim``, and
    :class:`BoundConstants` refuses loss constants derived for another ``M`` or
    ``d_y`` than its own. Hand-made ``LossConstants(B, L_ℓ)`` record nothing: their
    validity for the class's ``M`` and ``d_y`` is the caller's responsibility.
    """

    loss_range: float
    loss_lipschitz: float
    output_bound: float | None = None
    output_dim: int | None = None


class _BoundConstantsFields(NamedTuple):
    lipschitz: float
    output_bound: float
    loss: LossConstants
    output_dim: int = 1
    delta: float = 0.05


class BoundConstants(_BoundConstantsFields):
    """The constants of the certified bound, fixed before the data (docs/theory.md §4).

    A NamedTuple (a pytree: its numbers may be traced, e.g. under ``jax.grad``).
    ``M`` and ``d_y`` have one source of truth: the loss constants must have been
    derived for this ``output_bound`` and ``output_dim`` (build them from the same
    numbers, e.g. ``BoundConstants(L, M, squared_loss_constants(M, d_y, Y),
    output_dim=d_y)``). A mismatch raises ``ValueError`` naming both values, here
    (for concrete numbers, ``_replace`` included) and in :func:`check_constants`.

    Attributes:
        lipschitz: ``L ≥ 0``, a *certified* Lipschitz constant of the model class.
        output_bound: ``M > 0``: outputs in ``[−M, M]^{d_y}``.
        loss: the :class:`LossConstants` ``(B, L_ℓ)``, derived for this ``M`` and ``d_y``.
        output_dim: ``d_y``.
        delta: failure probability ``δ ∈ (0, 1)``.
    """

    __slots__ = ()

    def __new__(cls, lipschitz, output_bound, loss, output_dim=1, delta=0.05):
        self = super().__new__(cls, lipschitz, output_bound, loss, output_dim, delta)
        _check_loss_matches(self, "BoundConstants")
        return self

    @classmethod
    def _make(cls, iterable):  # ``_replace`` goes through the check too
        return cls(*iterable)


# JAX rebuilds pytrees of gradients, tangents and ``tree.map`` results, whose leaves
# are not constants: rebuild without the check (the bound functions check anyway).
jax.tree_util.register_pytree_with_keys(
    BoundConstants,
    lambda c: ([(jax.tree_util.GetAttrKey(k), v) for k, v in zip(c._fields, c, strict=True)], None),
    lambda _, children: tuple.__new__(BoundConstants, children),
    flatten_func=lambda c: (tuple(c), None),
)


def check_constants(constants, name: str = "constants") -> BoundConstants:
    """Check a :class:`BoundConstants` once; raise naming the field at fault."""
    if not isinstance(constants, BoundConstants):
        raise TypeError(
            f"{name} must be a jaxsym.constants.BoundConstants(lipschitz, output_bound, loss, "
            f"output_dim=1, delta=0.05); got {type(constants).__name__}: {constants!r:.80}."
        )
    if not isinstance(constants.loss, LossConstants):
        raise TypeError(
            f"{name}.loss must be a LossConstants (e.g. squared_loss_constants(...)); "
            f"got {constants.loss!r:.80}."
        )
    for field in ("lipschitz", "output_bound", "output_dim", "delta"):
        check_scalar(f"{name}.{field}", getattr(constants, field))
    for field in ("loss_range", "loss_lipschitz"):
        check_scalar(f"{name}.loss.{field}", getattr(constants.loss, field))
    check_nonnegative(f"{name}.lipschitz", constants.lipschitz)
    check_positive(f"{name}.output_bound", constants.output_bound)
    check_positive(f"{name}.loss.loss_range", constants.loss.loss_range)
    check_positive(f"{name}.loss.loss_lipschitz", constants.loss.loss_lipschitz)
    check_probability(f"{name}.delta", constants.delta)
    if is_concrete(constants.output_dim):
        positive_int(f"{name}.output_dim", _as_int(constants.output_dim))
    _check_loss_matches(constants, name)
    return constants


def _scalar(value):
    """A concrete real scalar as a float, else ``None`` (traced, missing or not a number)."""
    if value is None or isinstance(value, bool) or not is_concrete(value) or np.ndim(value) != 0:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _check_loss_matches(constants, name: str) -> None:
    """Raise if the loss constants were derived for another ``M`` or ``d_y`` (§4)."""
    loss = constants.loss
    if not isinstance(loss, LossConstants):
        return
    for field, symbol in (("output_bound", "M"), ("output_dim", "d_y")):
        ours, theirs = _scalar(getattr(constants, field)), _scalar(getattr(loss, field))
        if ours is None or theirs is None or math.isclose(ours, theirs, rel_tol=1e-6):
            continue
        raise ValueError(
            f"{name}: {field} ({symbol}) is {ours:g} but the loss constants were derived for "
            f"{field}={theirs:g}; B and L_ℓ depend on {symbol}, so the bound would be wrong. "
            f"Build both from the same numbers, e.g. BoundConstants(L, M, "
            f"squared_loss_constants(M, d_y, Y), output_dim=d_y)."
        )


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
    return LossConstants(radius**2, 2 * radius, float(output_bound), int(output_dim))


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
    return LossConstants(radius, 1.0, float(output_bound), int(output_dim))


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
    (docs/theory.md §4). A margin needs a scalar output: the constants record
    ``d_y = 1``.

    Args:
        margin: ``γ > 0``.
    """
    check_positive("margin", margin)
    return LossConstants(loss_range=1.0, loss_lipschitz=1.0 / float(margin), output_dim=1)
