"""The audit's losses and metrics for the trained reference models (docs/theory.md §9).

The certified loss (:func:`loss_spec`) is fixed from the training split only:
0-1 error for classification; for regression the squared error of predictions
clipped to the training labels' box, truncated at ``B``. Each trained model's
outputs (computed by the caller, :func:`jaxsym.models.predict_many`) are scored
on the certify split (per-example losses for
:func:`jaxsym.held_out_bound`, every example) and, where there is one, on the
test split: accuracy and expected calibration error (15 equal-width confidence
bins) for classification, mean squared error for regression.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "LossSpec",
    "clipped",
    "expected_calibration_error",
    "loss_spec",
    "losses",
    "metrics",
]

NUM_BINS = 15


class LossSpec(NamedTuple):
    """The certified loss (docs/theory.md §9), fixed from the training split only.

    Attributes:
        name: a description for the report.
        loss_range: ``B``: every loss lies in ``[0, B]``.
        low: ``(d,)`` lower ends of the prediction box (regression), else ``None``.
        high: ``(d,)`` upper ends (regression), else ``None``.
    """

    name: str
    loss_range: float
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def loss_spec(task: str, y_train: np.ndarray) -> LossSpec:
    """0-1 error for classification; for regression the squared error of predictions
    clipped to the training labels' box ``[lo, hi]``, truncated at ``B = Σ_d (hi_d − lo_d)²``
    (a certificate for ``min(‖ŷ − y‖², B)``, which equals the squared error whenever the
    label lies in the box)."""
    if task == "classification":
        return LossSpec("0-1 error", 1.0)
    flat = np.asarray(y_train, np.float64).reshape(len(y_train), -1)
    low, high = flat.min(0), flat.max(0)
    loss_range = float(np.sum((high - low) ** 2))
    return LossSpec(
        f"squared error truncated at B = {loss_range:.3g} (predictions clipped to the "
        "training labels' range)",
        max(loss_range, 1e-12),
        low,
        high,
    )


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Top-label ECE: ``Σ_b (n_b/n) |accuracy_b − confidence_b|`` over 15 bins."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == labels
    bins = np.minimum((confidence * NUM_BINS).astype(int), NUM_BINS - 1)
    total = 0.0
    for b in range(NUM_BINS):
        inside = bins == b
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def clipped(outputs, spec: LossSpec) -> np.ndarray:
    """A model's raw outputs as the losses see them: float64, regression clipped to the box."""
    outputs = np.asarray(outputs, np.float64)
    if spec.low is not None:
        outputs = np.clip(outputs.reshape(len(outputs), -1), spec.low, spec.high)
    return outputs


def losses(outputs, y: np.ndarray, spec: LossSpec) -> np.ndarray:
    """Per-example certified losses in ``[0, B]`` (:func:`loss_spec`) of a model's outputs."""
    outputs = clipped(outputs, spec)
    if spec.low is None:
        return (outputs.argmax(1) != np.asarray(y)).astype(np.float64)
    flat = np.asarray(y, np.float64).reshape(len(y), -1)
    return np.minimum(np.sum((outputs - flat) ** 2, axis=1), spec.loss_range)


def metrics(outputs, y: np.ndarray, task: str, spec: LossSpec) -> dict:
    """Test metrics of a model's outputs: accuracy, ECE and error (classification), or MSE."""
    outputs = clipped(outputs, spec)
    if task == "classification":
        shifted = np.exp(outputs - outputs.max(axis=-1, keepdims=True))  # softmax, on the host
        probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        accuracy = float(np.mean(probabilities.argmax(1) == np.asarray(y)))
        ece = expected_calibration_error(probabilities, np.asarray(y))
        return {"accuracy": accuracy, "ece": ece, "error": 1.0 - accuracy, "mse": None}
    flat = np.asarray(y, np.float64).reshape(len(y), -1)
    mse = float(np.mean(np.sum((outputs - flat) ** 2, axis=1)))
    return {"accuracy": None, "ece": None, "error": mse, "mse": mse}
