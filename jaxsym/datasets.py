"""Built-in data sets: scikit-learn's digits, rotated by random quarter turns.

Requires scikit-learn (the ``audit`` extra: ``pip install 'jaxsym[audit]'``),
imported only when a loader is called; the digits are bundled with
scikit-learn, so nothing is downloaded.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from jaxsym._validation import positive_int

__all__ = ["RotatedDigits", "rotated_digits"]


class RotatedDigits(NamedTuple):
    """The digits, each rotated by a random quarter turn.

    Attributes:
        x: ``(1797, 8, 8, 1)`` float32 images in ``[0, 1]`` (the 0..16 grey levels / 16).
        y: ``(1797,)`` int64 class labels 0..9.
        turns: ``(1797,)`` int64 quarter turns ``k`` in 0..3 applied to each image:
            ``x[i] = ρ(g_k) x_upright[i]`` with ``g_k`` element ``k`` of
            :func:`jaxsym.groups.rot90` (``np.rot90(image, k)``).
    """

    x: np.ndarray
    y: np.ndarray
    turns: np.ndarray


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "rotated_digits needs scikit-learn (its bundled digits); install the audit "
            "extra: pip install 'jaxsym[audit]'."
        ) from error
    return load_digits()


def rotated_digits(*, seed: int = 0) -> RotatedDigits:
    """scikit-learn's 8 × 8 digits, each rotated by a random multiple of 90°.

    The standard small benchmark where C4 symmetry holds up to the 6/9
    ambiguity: the labels do not depend on the orientation (except that a
    turned 6 looks like a 9), so a C4-invariant classifier loses almost
    nothing and gains the data of four orientations (docs/benchmarks.md).

    Args:
        seed: seeds ``numpy.random.default_rng``, which draws the quarter turns
            ``k ∈ {0, 1, 2, 3}`` uniformly, one per image; the same seed gives the
            same turns on every machine.

    Returns:
        A :class:`RotatedDigits` ``(x, y, turns)``.

    Raises:
        ImportError: if scikit-learn is not installed (the ``audit`` extra).
        ValueError: if ``seed`` is negative.
    """
    seed = positive_int("seed", seed, minimum=0)
    digits = _load_digits()
    images = np.asarray(digits.images, np.float32) / 16.0
    turns = np.random.default_rng(seed).integers(0, 4, size=len(images)).astype(np.int64)
    rotated = np.stack([np.rot90(image, k) for image, k in zip(images, turns, strict=True)])
    return RotatedDigits(
        x=np.ascontiguousarray(rotated[..., None]),
        y=np.asarray(digits.target, np.int64),
        turns=turns,
    )
