"""Built-in rotated digits: reproducible turns, the right images, C4 helps."""

from __future__ import annotations

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
