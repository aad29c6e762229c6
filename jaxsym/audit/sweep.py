"""The audit's short training sweep: one small MLP trained at several symmetry levels.

Rows (docs/theory.md §3, §7): no symmetry (``f``), full symmetry (``Q_G f``, the
group average trained end to end), the recommended set and level (the dial
``Q_H f + t*(f − Q_H f)``, when it differs from both), and the bound
regularizer (when :mod:`jaxsym.training` provides it). Each row trains the same
initial network with adam on the training split and is scored on the test
split: accuracy and expected calibration error (15 equal-width confidence bins)
for classification, mean squared error for regression.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxsym.audit import analysis

__all__ = ["SweepRow", "expected_calibration_error", "init_mlp", "train_row"]

NUM_BINS = 15


class SweepRow(NamedTuple):
    """One row of the sweep: the method and its test metrics (``None`` if not run)."""

    method: str
    available: bool
    accuracy: float | None = None
    ece: float | None = None
    mse: float | None = None
    note: str = ""


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


def mlp(params: dict) -> Callable[[jax.Array], jax.Array]:
    """The batched model ``x ↦ logits`` (or regression outputs) of ``params``."""

    def f(x):
        h = x.reshape(x.shape[0], -1)
        h = jnp.tanh(h @ params["l1"]["w"] + params["l1"]["b"])
        h = jnp.tanh(h @ params["l2"]["w"] + params["l2"]["b"])
        return h @ params["l3"]["w"] + params["l3"]["b"]

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


def _metrics(method: str, outputs: np.ndarray, y_test: np.ndarray, task: str, note: str):
    if task == "classification":
        probabilities = np.asarray(jax.nn.softmax(jnp.asarray(outputs), axis=-1), np.float64)
        accuracy = float(np.mean(probabilities.argmax(1) == y_test))
        ece = expected_calibration_error(probabilities, y_test)
        return SweepRow(method, True, accuracy=accuracy, ece=ece, note=note)
    mse = float(np.mean(np.sum((outputs - y_test) ** 2, axis=1)))
    return SweepRow(method, True, mse=mse, note=note)


def train_row(
    method: str,
    wrap: Callable,
    params: dict,
    data,
    *,
    steps: int,
    learning_rate: float = 3e-3,
    penalty: Callable | None = None,
    deploy: Callable | None = None,
    note: str = "",
    progress: Callable[[int], None] | None = None,
) -> SweepRow:
    """Train ``wrap(mlp(params))`` full-batch with adam, then score it on the test split.

    Args:
        method: the row's name.
        wrap: ``f ↦ model`` (identity, ``Q_G``, the dial, or a regularizer's model).
        params: initial MLP parameters (shared by all rows).
        data: a :class:`jaxsym.audit.inputs.Dataset`.
        steps: adam steps.
        learning_rate: adam's step size.
        penalty: optional ``(model, x) -> scalar`` added to the loss.
        deploy: optional ``(f, x_train) -> predictor`` for evaluation.
        note: a remark for the table.
        progress: called with the number of steps done since the last call.
    """
    x = jnp.asarray(data.x)
    if data.task == "classification":
        labels = jnp.asarray(data.y)

        def data_loss(out):
            return optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()
    else:
        targets = jnp.asarray(data.y)

        def data_loss(out):
            return jnp.mean(jnp.sum((out - targets) ** 2, axis=1))

    def loss(p):
        model = wrap(mlp(p))
        value = data_loss(model(x))
        return value + (penalty(model, x) if penalty is not None else 0.0)

    optimizer = optax.adam(learning_rate)
    chunk = 25

    @jax.jit
    def run(p, state):
        def step(carry, _):
            p, state = carry
            grads = jax.grad(loss)(p)
            updates, state = optimizer.update(grads, state, p)
            return (optax.apply_updates(p, updates), state), None

        return jax.lax.scan(step, (p, state), None, length=chunk)[0]

    state = optimizer.init(params)
    done = 0
    while done < steps:
        params, state = run(params, state)
        done += chunk
        if progress is not None:
            progress(chunk)
    f = mlp(params)
    predictor = deploy(f, x) if deploy is not None else wrap(f)
    outputs = np.asarray(predictor(jnp.asarray(data.x_test)), np.float64)
    return _metrics(method, outputs, np.asarray(data.y_test), data.task, note)


def regularizer_row(params, data, group, candidates, fit, key, *, steps, progress=None) -> SweepRow:
    """The bound-regularizer row (docs/theory.md §7), or "not available" without jaxsym.training."""
    reg = analysis.bound_regularizer(data.x, data.targets(), group, candidates, fit, key)
    if reg is None:
        return SweepRow("bound regularizer", False, note="not available (no jaxsym.training)")
    return train_row(
        "bound regularizer",
        reg.model,
        params,
        data,
        steps=steps,
        penalty=lambda model, x: reg(model, x),
        deploy=reg.freeze,
        note=f"set {reg.group.name}, budget ε̂* = {float(reg.budget):.3g} (d_2)",
        progress=progress,
    )
