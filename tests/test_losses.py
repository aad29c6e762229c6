"""Tests for the loss and bound constants (docs/theory.md §4)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jaxsym.losses import (
    BoundConstants,
    LossConstants,
    absolute_loss_constants,
    check_constants,
    clipped_squared_loss_constants,
    ramp_loss_constants,
    squared_loss_constants,
)


def _predictions_and_labels(rng, m, d, y_bound, size=20000):
    """Pairs of predictions in the box (corners included) and labels on the Y-sphere."""
    pred = rng.uniform(-m, m, size=(size, 2, d))
    pred[: size // 4, 0] = m * np.sign(rng.normal(size=(size // 4, d)))  # corners
    y = rng.normal(size=(size, d))
    y *= y_bound / np.linalg.norm(y, axis=1, keepdims=True)
    return pred, y


def _check_range_and_slope(loss, pred, y, constants):
    values = loss(pred, y[:, None])
    assert values.min() >= 0
    assert values.max() <= constants.loss_range + 1e-9
    slope = np.abs(values[:, 0] - values[:, 1]) / np.linalg.norm(pred[:, 0] - pred[:, 1], axis=-1)
    assert slope.max() <= constants.loss_lipschitz + 1e-9
    return values, slope


@pytest.mark.parametrize("m, d, y_bound", [(0.7, 3, 1.2), (1.0, 1, 1.0), (2.0, 2, 0.0)])
def test_squared_and_absolute_constants_bound_the_losses(m, d, y_bound):
    rng = np.random.default_rng(0)
    pred, y = _predictions_and_labels(rng, m, d, y_bound)
    squared = squared_loss_constants(m, d, y_bound)
    values, _ = _check_range_and_slope(lambda p, t: np.sum((p - t) ** 2, -1), pred, y, squared)
    assert values.max() >= 0.8 * squared.loss_range  # corners opposite the label reach B
    absolute = absolute_loss_constants(m, d, y_bound)
    assert absolute.loss_range == pytest.approx(m * math.sqrt(d) + y_bound)
    assert absolute.loss_lipschitz == 1.0
    _check_range_and_slope(lambda p, t: np.linalg.norm(p - t, axis=-1), pred, y, absolute)


def test_clipped_and_ramp_constants_bound_the_losses():
    rng = np.random.default_rng(1)
    pred, y = _predictions_and_labels(rng, 2.0, 2, 3.0)
    clipped = clipped_squared_loss_constants(1.5)
    _, slope = _check_range_and_slope(
        lambda p, t: np.minimum(np.sum((p - t) ** 2, -1), 1.5), pred, y, clipped
    )
    assert slope.max() >= 0.5 * clipped.loss_lipschitz  # the constant is not loose by 2×
    b, lip = ramp_loss_constants(0.25)
    z = rng.uniform(-3, 3, size=(10000, 2))
    ramp = np.clip(1 - z / 0.25, 0, 1)
    assert b == 1.0 and ramp.max() <= 1
    assert np.max(np.abs(ramp[:, 0] - ramp[:, 1]) / np.abs(z[:, 0] - z[:, 1])) <= lip + 1e-9


def test_bound_constants_are_one_validated_value():
    loss = squared_loss_constants(1.0, 1, 1.0)
    constants = BoundConstants(1.0, 1.0, loss)
    assert constants.output_dim == 1 and constants.delta == 0.05
    assert check_constants(constants) is constants
    assert isinstance(loss, LossConstants)
    bad = {
        "lipschitz": constants._replace(lipschitz=-1.0),
        "output_bound": constants._replace(output_bound=0.0),
        "delta": constants._replace(delta=1.0),
        "output_dim": constants._replace(output_dim=0),
        "loss_range": constants._replace(loss=LossConstants(-1.0, 1.0)),
        "loss_lipschitz": constants._replace(loss=LossConstants(1.0, float("nan"))),
    }
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name):
            check_constants(value)
    with pytest.raises(TypeError, match="BoundConstants"):
        check_constants({"lipschitz": 1.0})
    with pytest.raises(TypeError, match="loss"):
        check_constants(BoundConstants(1.0, 1.0, (4.0, 4.0)))
    with pytest.raises(TypeError, match="output_dim"):
        check_constants(constants._replace(output_dim=1.5))
    with pytest.raises(ValueError, match="margin"):
        ramp_loss_constants(0.0)
    with pytest.raises(ValueError, match="clip"):
        clipped_squared_loss_constants(-1.0)
    with pytest.raises(ValueError, match="label_bound"):
        absolute_loss_constants(1.0, 1, -1.0)
