"""The audit's training sweep: one small MLP trained at the screened symmetry options.

Options (docs/theory.md §3, §7, §9): no symmetry (``f``), the full group
(``Q_G f``), the screened set exactly (``Q_H f``) and the bound regularizer on
the screened set. Each option trains the same initial network on the training
split, full batch, with adam and a cosine-decayed step size until the loss has
converged (a fixed, generous number of steps); regression outputs are
standardized by the training labels' mean and spread. Each trained model is
then scored on the certify split (per-example losses for
:func:`jaxsym.held_out_bound`) and, where there is one, on the test split:
accuracy and expected calibration error (15 equal-width confidence bins) for
classification, mean squared error for regression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

__all__ = [
    "LossSpec",
    "expected_calibration_error",
    "init_mlp",
    "loss_spec",
    "losses",
    "metrics",
    "mlp",
    "train_model",
]

NUM_BINS = 15
CHUNK = 100  # adam steps per compiled scan


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


def init_mlp(key, in_dim: int, hidden: int, out_dim: int) -> dict:
    """Parameters of a 2-hidden-layer tanh MLP on flattened inputs."""
    k1, k2, k3 = jax.random.split(key, 3)

    def dense(k, m, n):
        return {"w": jax.random.normal(k, (m, n)) / np.sqrt(m), "b": jnp.zeros(n)}

    return {
        "l1": dense(k1, in_dim, hidden),
        "l2": dense(k2, hidden, hidden),
        "l3": dense(k3, hidden, out_dim),
    }


def mlp(params: dict, shift=0.0, scale=1.0) -> Callable[[jax.Array], jax.Array]:
    """The batched model ``x ↦ shift + scale · net(x)`` (logits, or regression outputs)."""

    def f(x):
        h = x.reshape(x.shape[0], -1)
        h = jnp.tanh(h @ params["l1"]["w"] + params["l1"]["b"])
        h = jnp.tanh(h @ params["l2"]["w"] + params["l2"]["b"])
        return shift + scale * (h @ params["l3"]["w"] + params["l3"]["b"])

    return f


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


def _predict(predictor, x: np.ndarray, spec: LossSpec) -> np.ndarray:
    outputs = np.asarray(predictor(jnp.asarray(x)), np.float64)
    if spec.low is not None:
        outputs = np.clip(outputs.reshape(len(x), -1), spec.low, spec.high)
    return outputs


def losses(predictor, x: np.ndarray, y: np.ndarray, spec: LossSpec) -> np.ndarray:
    """Per-example certified losses in ``[0, B]`` (:func:`loss_spec`)."""
    outputs = _predict(predictor, x, spec)
    if spec.low is None:
        return (outputs.argmax(1) != np.asarray(y)).astype(np.float64)
    flat = np.asarray(y, np.float64).reshape(len(y), -1)
    return np.minimum(np.sum((outputs - flat) ** 2, axis=1), spec.loss_range)


def metrics(predictor, x: np.ndarray, y: np.ndarray, task: str, spec: LossSpec) -> dict:
    """Test metrics: accuracy, ECE and error (classification), or MSE (regression)."""
    outputs = _predict(predictor, x, spec)
    if task == "classification":
        probabilities = np.asarray(jax.nn.softmax(jnp.asarray(outputs), axis=-1), np.float64)
        accuracy = float(np.mean(probabilities.argmax(1) == np.asarray(y)))
        ece = expected_calibration_error(probabilities, np.asarray(y))
        return {"accuracy": accuracy, "ece": ece, "error": 1.0 - accuracy, "mse": None}
    flat = np.asarray(y, np.float64).reshape(len(y), -1)
    mse = float(np.mean(np.sum((outputs - flat) ** 2, axis=1)))
    return {"accuracy": None, "ece": None, "error": mse, "mse": mse}


def train_model(
    wrap: Callable,
    params: dict,
    x: np.ndarray,
    y: np.ndarray,
    task: str,
    *,
    steps: int,
    learning_rate: float = 1e-2,
    penalty: Callable | None = None,
    deploy: Callable | None = None,
    progress: Callable[[int], None] | None = None,
):
    """Train ``wrap(mlp(params))`` full batch with adam (cosine-decayed step size).

    Args:
        wrap: ``f ↦ model`` (identity, ``Q_G``, or a regularizer's model).
        params: initial MLP parameters (shared by all options).
        x: training inputs.
        y: class indices (classification) or targets ``(n, d)`` (regression).
        task: ``"classification"`` or ``"regression"``.
        steps: adam steps (rounded up to a multiple of 100).
        learning_rate: adam's initial step size.
        penalty: optional ``(model, x) -> scalar`` added to the loss.
        deploy: optional ``(f, x_train) -> predictor`` for evaluation.
        progress: called with the number of steps done since the last call.

    Returns:
        The trained predictor ``x ↦ outputs``.
    """
    x = jnp.asarray(x)
    shift, scale = 0.0, 1.0
    if task == "classification":
        labels = jnp.asarray(y)

        def data_loss(out):
            return optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()
    else:
        targets = jnp.asarray(y)
        shift = jnp.mean(targets, axis=0)
        scale = jnp.maximum(jnp.std(targets, axis=0), 1e-6)

        def data_loss(out):
            return jnp.mean(jnp.sum(((out - targets) / scale) ** 2, axis=1))

    def loss(p):
        model = wrap(mlp(p, shift, scale))
        value = data_loss(model(x))
        return value + (penalty(model, x) if penalty is not None else 0.0)

    rounds = max(1, -(-steps // CHUNK))
    optimizer = optax.adam(optax.cosine_decay_schedule(learning_rate, rounds * CHUNK, 0.01))

    @jax.jit
    def run(p, state):
        def step(carry, _):
            p, state = carry
            grads = jax.grad(loss)(p)
            updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(step, (p, state), None, length=CHUNK)[0]

    state = optimizer.init(params)
    for _ in range(rounds):
        params, state = run(params, state)
        if progress is not None:
            progress(CHUNK)
    f = mlp(params, shift, scale)
    return deploy(f, x) if deploy is not None else wrap(f)
