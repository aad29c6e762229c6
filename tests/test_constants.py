"""Tests for the loss and bound constants (docs/theory.md §4)."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from jaxsym.constants import (
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
    ramp = ramp_loss_constants(0.25)
    # ℓ(y f) = clip(1 − y f/γ, 0, 1) for labels ±1 and scalar outputs on both sides of the margin.
    f = rng.uniform(-1, 1, size=(20000, 2))
    labels = rng.choice([-1.0, 1.0], size=(20000, 1))
    values = np.clip(1 - labels * f / 0.25, 0, 1)
    assert values.max() == ramp.loss_range  # B is attained (any f with y f ≤ 0)
    assert np.all(values[:, 0] >= (labels[:, 0] * f[:, 0] <= 0))  # bounds the 0–1 loss
    slope = np.abs(values[:, 0] - values[:, 1]) / np.abs(f[:, 0] - f[:, 1])
    assert slope.max() <= ramp.loss_lipschitz + 1e-9
    assert slope.max() >= 0.99 * ramp.loss_lipschitz  # tight: 1/γ inside the margin


def test_bound_constants_are_one_validated_value():
    loss = squared_loss_constants(1.0, 1, 1.0)
    assert isinstance(loss, LossConstants)
    assert check_constants(BoundConstants(1.0, 1.0, loss)) is not None
    constants = BoundConstants(1.0, 1.0, LossConstants(4.0, 4.0))  # hand-made: no M, d_y
    assert constants.output_dim == 1 and constants.delta == 0.05
    assert check_constants(constants) is constants
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


@pytest.mark.parametrize(
    "output_bound, output_dim, loss, field",
    [
        (10.0, 1, squared_loss_constants(0.1, 1, 1.0), "output_bound"),  # issue 15: 1.49 vs 133
        (1.0, 16, squared_loss_constants(1.0, 1, 1.0), "output_dim"),  # issue 15: 4.94 vs 30.9
        (0.5, 1, absolute_loss_constants(1.0, 1, 0.0), "output_bound"),
        (1.0, 1, absolute_loss_constants(1.0, 3, 0.0), "output_dim"),
        (1.0, 2, ramp_loss_constants(0.5), "output_dim"),  # a margin needs a scalar output
    ],
)
def test_loss_constants_for_another_m_or_dy_are_refused(output_bound, output_dim, loss, field):
    with pytest.raises(ValueError, match=rf"{field}.*{getattr(loss, field):g}"):
        BoundConstants(1.0, output_bound, loss, output_dim=output_dim)
    good = BoundConstants(1.0, loss.output_bound or output_bound, loss, loss.output_dim or 1)
    with pytest.raises(ValueError, match=field):  # _replace cannot build a mismatch either
        good._replace(**{field: {"output_bound": output_bound, "output_dim": output_dim}[field]})
    with pytest.raises(ValueError, match=field):  # nor can a hand-made tuple passed to a bound
        check_constants(tuple.__new__(BoundConstants, (1.0, output_bound, loss, output_dim, 0.05)))


def test_matching_constants_build_and_survive_jax_transformations():
    loss = squared_loss_constants(2.0, 3, 1.0)
    constants = BoundConstants(1.5, 2.0, loss, output_dim=3)
    assert check_constants(constants) is constants
    # Losses that do not depend on M or d_y combine with any; hand-made ones record nothing.
    for free in (clipped_squared_loss_constants(2.0), LossConstants(4.0, 4.0)):
        check_constants(BoundConstants(1.0, 7.0, free, output_dim=5))
    # Gradients and tree maps rebuild the tuple with leaves that are not constants.
    grads = jax.grad(lambda c: c.lipschitz * c.output_bound * c.loss.loss_range, allow_int=True)(
        constants
    )
    assert float(grads.output_bound) == pytest.approx(1.5 * loss.loss_range)
    doubled = jax.tree.map(lambda v: 2 * v, constants)
    assert doubled.output_bound == 4.0 and doubled.loss.output_bound == 4.0
