"""Training at the right level of symmetry: the bound regularizer against tuned baselines.

theory.md §7, §8. Three studies, written to one JSON file and a markdown table
generated from it (``--out`` / ``--markdown``):

1. **Synthetic** (§8's task): ``x ~ N(0, I₂)``, ``y = f*(x) + 0.3 ε`` with
   ``d_2(f*) = η``, on the (task, η, n) cells of ``FULL["cells"]``; a 2×64 tanh
   MLP, adam (lr 3e-3) for 2000 steps on minibatches of ``min(n, 256)``, 5
   seeds. Methods: unconstrained; exactly symmetrized ``Q_G f``; the penalty
   ``λ · ee_2²`` with λ **tuned per seed** on a validation split (each λ of
   ``LAMBDAS`` trains on 80% of the training set, the least validation MSE
   wins, that λ is retrained on the full training set); the post-hoc dial of
   the unconstrained fit at the screen's ``t*``; and the regularizer's default
   (the budget projection, no knob). The screen is **post hoc**:
   :func:`jaxsym.choose_symmetry` with :func:`jaxsym.post_hoc` over the
   unconstrained fold fits (each option the dial of one fit per fold, levels
   ``T_GRID``), K + 1 = 6 trainings per seed; a screen of networks trained at
   each option would cost K · J + 1 (J = 31 options here) and rates symmetry
   higher (docs/theory.md §8b). The score is the **excess risk**
   ``mean (g − f*)²`` on 4000 fresh inputs (the test MSE on noisy labels minus
   σ² = 0.09, without its Monte Carlo noise). Ratios to the cell's best method
   are paired by seed and summarized by their geometric mean with a 95%
   t-interval on the log scale; the regularizer wins / ties / loses against
   each method by the paired interval of its ratio. Two tasks: C8 with
   ``f* = cos‖x‖ + η (x₁ + x₁x₂)/√2``, and C6 with a second target
   ``f* = cos(2.5‖x‖) + η a₃(x)``, ``a₃ ∝ e^{−‖x‖²/4} Re(x₁ + i x₂)³``
   (angular frequency 3, so ``Q_{C6} a₃ = 0``; normalized to ``‖a₃‖ = 1``),
   whose radial oscillation a small MLP represents badly as an invariant
   function by itself. Seeds, folds and λ values train in one vectorized loop
   (``vmap``).
2. **Digits** (scikit-learn's 8×8 digits): a CNN (two 3×3 convolutions, 2×2
   pooling, dense head) that outputs class probabilities, trained with
   cross-entropy by adamw with a warm-up + cosine schedule and weight decay:
   plain, D4-symmetrized, D4 augmentation, and the regularizer with nested
   candidates ``{e} ⊂ {e, r180} ⊂ C4 ⊂ D4`` (6 and 9 swap under r180); and on
   ``jaxsym.datasets.rotated_digits``, plain against C4-symmetrized. Test
   accuracy, ECE (15 bins), the accuracy on classes 6 and 9, mean ± sd over
   seeds; the kept set and budget.
3. **Cost**: one regularized training step against a hand-fused step that
   evaluates the model once on the orbit, and against one step of the
   symmetrized model, interleaved in one run; building the regularizer (the
   post-hoc screen's K + 1 fits included) against a 5-value λ sweep. Reported
   as ratios.

Usage::

    python benchmarks/training.py [--quick] [--out benchmarks/results/training.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
import zlib
from functools import partial
from itertools import pairwise
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import dataclasses  # noqa: E402

import jaxsym  # noqa: E402
from jaxsym import dial, groups, orbit_stats, symmetrize  # noqa: E402
from jaxsym.predictive import cross_fitting_folds  # noqa: E402
from jaxsym.training import BoundRegularizer, bound_regularizer  # noqa: E402

#: The screen's dial levels: 0, 0.1, …, 1 (the grid of the published tables).
T_GRID = tuple(np.linspace(0.0, 1.0, 11))

NOISE = 0.3
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)

# (task, η, n) cells: C8 on the 3×3 grid, C6 on 2×2 (about 30 minutes on 2 shared CPU cores)
FULL = dict(
    cells=(
        *(("C8/cos", eta, n) for eta in (0.0, 0.1, 0.3) for n in (200, 800, 3200)),
        *(("C6/cos2.5r", eta, n) for eta in (0.0, 0.3) for n in (200, 800)),
    ),
    seeds=5,
    steps=2000,
    batch=256,
    test_size=4000,
    digits_seeds=5,
    digits_steps=1200,
    digits_batch=64,
    cost_repeats=200,
)
QUICK = dict(
    cells=(("C8/cos", 0.3, 200), ("C6/cos2.5r", 0.3, 200)),
    seeds=2,
    steps=60,
    batch=64,
    test_size=500,
    digits_seeds=2,
    digits_steps=20,
    digits_batch=64,
    cost_repeats=3,
)

# ============================================================================ tasks


def target_c8(x, eta):
    """``cos‖x‖ + η (x₁ + x₁x₂)/√2``: ``d_2 = η`` for C8 under N(0, I₂) (theory.md §8)."""
    radius = jnp.sqrt(jnp.sum(x * x, axis=-1))
    anti = (x[:, 0] + x[:, 0] * x[:, 1]) / jnp.sqrt(2.0)
    return (jnp.cos(radius) + eta * anti)[:, None]


def _a3_raw(x):
    envelope = jnp.exp(-jnp.sum(x * x, axis=-1) / 4)
    return envelope * (x[:, 0] ** 3 - 3 * x[:, 0] * x[:, 1] ** 2)


_A3_NORM = float(
    jnp.sqrt(jnp.mean(_a3_raw(jax.random.normal(jax.random.key(99), (2_000_000, 2))) ** 2))
)


def target_c6(x, eta):
    """``cos(2.5‖x‖) + η a₃(x)``, ``‖a₃‖ = 1``, ``Q_{C6} a₃ = 0``: ``d_2 = η`` for C6.

    The invariant part oscillates in the radius: hard for a small MLP to
    represent as an invariant function by itself, easy through ``Q_G f``.
    """
    radius = jnp.sqrt(jnp.sum(x * x, axis=-1))
    return (jnp.cos(2.5 * radius) + eta * _a3_raw(x) / _A3_NORM)[:, None]


TASKS = {
    "C8/cos": (lambda: groups.cyclic_rotations(8), target_c8),
    "C6/cos2.5r": (lambda: groups.cyclic_rotations(6), target_c6),
}


def draw(target, key, n, eta):
    kx, ke = jax.random.split(key)
    x = jax.random.normal(kx, (n, 2))
    y = target(x, eta) + NOISE * jax.random.normal(ke, (n, 1))
    return x, y


# ============================================================================ the MLP


def mlp_init(key, in_dim=2, hidden=64, out_dim=1):
    k1, k2, k3 = jax.random.split(key, 3)

    def dense(k, a, b):
        return {"w": jax.random.normal(k, (a, b)) / math.sqrt(a), "b": jnp.zeros((b,))}

    return [dense(k1, in_dim, hidden), dense(k2, hidden, hidden), dense(k3, hidden, out_dim)]


def mlp_apply(params, x):
    h = x.reshape(x.shape[0], -1)
    for layer in params[:-1]:
        h = jnp.tanh(h @ layer["w"] + layer["b"])
    return h @ params[-1]["w"] + params[-1]["b"]


def model_of(params):
    return jax.tree_util.Partial(mlp_apply, params)


# ============================================================================ vectorized training


def train_many(loss, params, x, y, extra, *, steps, batch, lr, key):
    """Train M models at once (leading axis M of params, x, y, extra), adam, minibatches.

    ``loss(params, xb, yb, extra) -> scalar`` for one model.
    """
    optimizer = optax.adam(lr)
    num_models, n = x.shape[0], x.shape[1]
    batch = min(batch, n)
    states = jax.vmap(optimizer.init)(params)
    keys = jax.random.split(key, num_models)

    def one_step(p, s, xs, ys, ex, k):
        index = jax.random.randint(k, (batch,), 0, n)
        grads = jax.grad(loss)(p, xs[index], ys[index], ex)
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    @jax.jit
    def run(params, states, keys):
        def body(carry, step):
            p, s = carry
            ks = jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
            return jax.vmap(one_step)(p, s, x, y, extra, ks), None

        (params, states), _ = jax.lax.scan(body, (params, states), jnp.arange(steps))
        return params

    return run(params, states, keys)


def stack(trees):
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def unstack(tree, count):
    return [jax.tree_util.tree_map(lambda leaf, i=i: leaf[i], tree) for i in range(count)]


def mse(pred, y):
    return jnp.mean(jnp.sum((pred - y).reshape(y.shape[0], -1) ** 2, axis=-1))


# ============================================================================ the screen


def trained_already(x, folds, fold_models, full_model):
    """A plain ``fit(x, y)`` that returns models trained beforehand, in one vectorized loop.

    ``fold_models[k]`` was trained on ``x`` without ``folds[k]``, ``full_model`` on all
    of ``x``; looked up by the training inputs. Wrapped in :func:`jaxsym.post_hoc`, it
    gives the **post-hoc** screen: each option is the dial of one unconstrained fit per
    fold, not a network trained at that option (which would cost K · J trainings per
    seed instead of K + 1; docs/theory.md §8b says why the post-hoc screen underrates
    symmetry).
    """
    x = np.asarray(x)
    table = {x.tobytes(): full_model}
    for held_out, model in zip(folds, fold_models, strict=True):
        table[x[np.setdiff1d(np.arange(x.shape[0]), held_out)].tobytes()] = model

    def fit(x_fit, y_fit):
        return table[np.asarray(x_fit).tobytes()]

    return fit


# ============================================================================ study 1


def split_indices(n, *, key):
    """A fixed 80/20 split of ``range(n)`` into (fit, validation) index arrays."""
    order = np.asarray(jax.random.permutation(key, n))
    num_val = max(n // 5, 1)
    return np.sort(order[num_val:]), np.sort(order[:num_val])


def synthetic_cell(task_name, eta, n, cfg, key):
    """All methods on one (task, η, n) cell, all seeds; returns per-seed excess risks.

    The excess risk of a predictor ``g`` is ``mean (g − f*)²`` on fresh inputs
    (the test MSE on noisy labels minus σ², without its Monte Carlo noise).
    """
    make_group, target = TASKS[task_name]
    group = make_group()
    seeds = cfg["seeds"]
    train_kw = dict(steps=cfg["steps"], batch=cfg["batch"], lr=3e-3)
    data = [draw(target, jax.random.fold_in(key, s), n, eta) for s in range(seeds)]
    xs = jnp.stack([d[0] for d in data])
    ys = jnp.stack([d[1] for d in data])
    x_test = jax.random.normal(jax.random.fold_in(key, 10_000), (cfg["test_size"], 2))
    f_test = target(x_test, eta)
    inits = stack([mlp_init(jax.random.fold_in(key, 20_000 + s)) for s in range(seeds)])
    timings = {}

    def excess(predict):
        return float(mse(predict(x_test), f_test))

    def repeat(tree, times):
        return jax.tree_util.tree_map(lambda a: jnp.repeat(a, times, axis=0), tree)

    def plain_loss(p, xb, yb, _):
        return mse(mlp_apply(p, xb), yb)

    def penalized(p, xb, yb, lam):
        stats = orbit_stats(model_of(p), xb, group, chunk_size=group.size)
        return mse(stats.outputs, yb) + lam * stats.ee2_sq

    none = jnp.zeros((seeds,))
    results = {}

    # unconstrained (also the full-data fit of the regularizer and of the dial)
    t0 = time.perf_counter()
    plain = train_many(plain_loss, inits, xs, ys, none, key=jax.random.fold_in(key, 1), **train_kw)
    jax.block_until_ready(plain)
    timings["unconstrained"] = time.perf_counter() - t0
    plain_models = [model_of(p) for p in unstack(plain, seeds)]
    results["unconstrained"] = [excess(m) for m in plain_models]

    # exactly symmetrized
    t0 = time.perf_counter()
    sym = train_many(
        lambda p, xb, yb, _: mse(symmetrize(model_of(p), group, chunk_size=group.size)(xb), yb),
        inits, xs, ys, none, key=jax.random.fold_in(key, 2), **train_kw,
    )  # fmt: skip
    jax.block_until_ready(sym)
    timings["symmetrized"] = time.perf_counter() - t0
    results["symmetrized"] = [excess(symmetrize(model_of(p), group)) for p in unstack(sym, seeds)]

    # λ · ee_2², λ tuned per seed on a validation split: every λ of the grid trains on
    # 80% of the training set, the λ with the least validation MSE (noisy labels, as a
    # user has them) is retrained on the full training set.
    splits = [split_indices(n, key=jax.random.fold_in(key, 40_000 + s)) for s in range(seeds)]
    x_fit = jnp.stack([xs[s][splits[s][0]] for s in range(seeds)])
    y_fit = jnp.stack([ys[s][splits[s][0]] for s in range(seeds)])
    lams = jnp.tile(jnp.asarray(LAMBDAS), seeds)  # seed-major
    t0 = time.perf_counter()
    swept = train_many(
        penalized, repeat(inits, len(LAMBDAS)), jnp.repeat(x_fit, len(LAMBDAS), 0),
        jnp.repeat(y_fit, len(LAMBDAS), 0), lams, key=jax.random.fold_in(key, 3), **train_kw,
    )  # fmt: skip
    swept_models = unstack(swept, seeds * len(LAMBDAS))

    def val_mse_of(s, j):
        x_val, y_val = xs[s][splits[s][1]], ys[s][splits[s][1]]
        return float(mse(mlp_apply(swept_models[s * len(LAMBDAS) + j], x_val), y_val))

    val_mse = np.array([[val_mse_of(s, j) for j in range(len(LAMBDAS))] for s in range(seeds)])
    chosen = [LAMBDAS[int(j)] for j in np.argmin(val_mse, axis=1)]
    tuned = train_many(
        penalized, inits, xs, ys, jnp.asarray(chosen), key=jax.random.fold_in(key, 6), **train_kw
    )
    jax.block_until_ready(tuned)
    timings["lambda_tuned"] = time.perf_counter() - t0
    results["λ tuned"] = [excess(model_of(p)) for p in unstack(tuned, seeds)]

    # cross-fitted fold fits (5 per seed), one loop; then the regularizer per seed
    num_folds = 5
    fold_keys = [jax.random.fold_in(key, 30_000 + s) for s in range(seeds)]
    fold_x, fold_y = [], []
    for s in range(seeds):
        for held_out in cross_fitting_folds(n, num_folds, key=fold_keys[s]):
            train = np.setdiff1d(np.arange(n), held_out)
            fold_x.append(xs[s][train])
            fold_y.append(ys[s][train])
    t0 = time.perf_counter()
    folds = train_many(
        plain_loss, repeat(inits, num_folds), jnp.stack(fold_x), jnp.stack(fold_y),
        jnp.zeros((seeds * num_folds,)), key=jax.random.fold_in(key, 4), **train_kw,
    )  # fmt: skip
    jax.block_until_ready(folds)
    fold_models = [model_of(p) for p in unstack(folds, seeds * num_folds)]
    regs = []
    for s in range(seeds):
        fit = trained_already(
            xs[s],
            cross_fitting_folds(n, num_folds, key=fold_keys[s]),
            fold_models[s * num_folds : (s + 1) * num_folds],
            plain_models[s],
        )
        choice = jaxsym.choose_symmetry(
            xs[s], ys[s], group, fit=jaxsym.post_hoc(fit), key=fold_keys[s],
            num_folds=num_folds, t_grid=T_GRID,
        )  # fmt: skip
        regs.append(bound_regularizer(choice, chunk_size=group.size))
    timings["regularizer_build"] = time.perf_counter() - t0 + timings["unconstrained"]
    budgets = [float(r.budget) for r in regs]

    # post-hoc dial of the unconstrained fit at the screen's level t*
    t_star = [float(r.choice.t_star) for r in regs]
    results["dial(t*)"] = [
        excess(dial(plain_models[s], regs[s].group, t_star[s])) for s in range(seeds)
    ]

    # the regularizer (the budget projection), trained as a user's loop would
    def regularized(p, xb, yb, budget, reg0):
        reg = eqx.tree_at(lambda r: r.budget, reg0, budget)
        g = reg.model(model_of(p))
        return mse(g(xb), yb) + reg(g, xb)

    t0 = time.perf_counter()
    deployed = [None] * seeds
    for name in dict.fromkeys(r.group.name for r in regs):  # seeds sharing an active set
        idx = [s for s in range(seeds) if regs[s].group.name == name]
        pick = lambda tree, idx=idx: jax.tree_util.tree_map(lambda a: a[jnp.asarray(idx)], tree)  # noqa: E731
        params = train_many(
            partial(regularized, reg0=regs[idx[0]]), pick(inits), xs[jnp.asarray(idx)],
            ys[jnp.asarray(idx)], jnp.asarray([budgets[s] for s in idx]),
            key=jax.random.fold_in(key, 5), **train_kw,
        )  # fmt: skip
        for s, p in zip(idx, unstack(params, len(idx)), strict=True):
            deployed[s] = regs[s].freeze(model_of(p), xs[s])
    jax.block_until_ready(deployed)
    timings["regularizer"] = time.perf_counter() - t0
    results["regularizer"] = [excess(m) for m in deployed]

    return {
        "task": task_name,
        "group": group.name,
        "eta": eta,
        "n": n,
        "noise_variance": NOISE**2,
        "excess_risk": results,
        "lambda_chosen": chosen,
        "validation_mse": val_mse.tolist(),
        "active_set": [r.group.name for r in regs],
        "budget": budgets,
        "t_star": t_star,
        "learned_d2": [float(orbit_stats(m, x_test, group).d2) for m in deployed],
        "unconstrained_d2": [float(orbit_stats(m, x_test, group).d2) for m in plain_models],
        "seconds": timings,
    }


def log_ratio_interval(ratios, level=0.95):
    """Geometric mean of per-seed ratios and its t-interval (on the log scale).

    ``exp(mean(log r) ± t_{level, k−1} · sd(log r)/√k)`` over the k seeds.
    """
    from scipy import stats

    logs = np.log(np.asarray(ratios, dtype=float))
    k = logs.size
    centre = logs.mean()
    half = stats.t.ppf(0.5 + level / 2, k - 1) * logs.std(ddof=1) / math.sqrt(k) if k > 1 else 0
    return {"ratio": float(np.exp(centre)), "low": float(np.exp(centre - half)),
            "high": float(np.exp(centre + half))}  # fmt: skip


def verdict(interval):
    """``win`` (interval below 1), ``lose`` (above 1) or ``tie`` (it contains 1)."""
    if interval["high"] < 1:
        return "win"
    return "lose" if interval["low"] > 1 else "tie"


def summarize_cell(cell):
    """Excess-risk ratios of each method to the cell's best (least mean excess risk).

    Ratios are paired by seed (same data, same initialization): each method's
    per-seed excess risk over the best method's on that seed, summarized by the
    geometric mean and its 95% t-interval over seeds; the regularizer's worst
    seed is its largest per-seed ratio. ``against`` compares the regularizer
    with each other method the same way (ratio < 1: the regularizer is better).
    """
    risks = {k: np.asarray(v) for k, v in cell["excess_risk"].items()}
    means = {k: float(v.mean()) for k, v in risks.items()}
    best = min(means, key=means.get)
    ratio = {k: log_ratio_interval(v / risks[best]) for k, v in risks.items()}
    reg = risks["regularizer"]
    against = {}
    for k, v in risks.items():
        if k != "regularizer":
            interval = log_ratio_interval(reg / v)
            against[k] = {**interval, "verdict": verdict(interval)}
    return {
        "mean_excess": means,
        "best": best,
        "ratio": ratio,
        "regularizer_worst_seed": float(np.max(reg / risks[best])),
        "regularizer_against": against,
    }


# ============================================================================ study 2: digits


def digits_data(seed, num_train):
    from sklearn.datasets import load_digits

    data = load_digits()
    images = jnp.asarray(data.images / 16.0, jnp.float32)  # (1797, 8, 8)
    labels = np.asarray(data.target)
    order = np.random.default_rng(seed).permutation(len(labels))
    train, test = order[:num_train], order[num_train:]
    return images[train], labels[train], images[test], labels[test]


def digits_candidates():
    """``{e} ⊂ {e, r180} ⊂ C4 ⊂ D4`` on 8×8 images (element 2 of ``flip_rot90`` is r180)."""
    d4 = groups.flip_rot90()

    def sub(indices, name):
        return dataclasses.replace(d4.subset(indices), is_group=True, name=name)

    return [sub([0], "{e}"), sub([0, 2], "{e,r180}"), sub([0, 1, 2, 3], "C4"), d4]


def cnn_init(key, channels=(16, 32), classes=10):
    k1, k2, k3 = jax.random.split(key, 3)
    c1, c2 = channels
    return {
        "c1": jax.random.normal(k1, (3, 3, 1, c1)) * math.sqrt(2 / 9),
        "b1": jnp.zeros((c1,)),
        "c2": jax.random.normal(k2, (3, 3, c1, c2)) * math.sqrt(2 / (9 * c1)),
        "b2": jnp.zeros((c2,)),
        "w": jax.random.normal(k3, (16 * c2, classes)) / math.sqrt(16 * c2),
        "b": jnp.zeros((classes,)),
    }


def cnn_logits(params, x):
    """Class logits of a CNN on ``(B, 8, 8)`` images.

    Two 3×3 convolutions (16, 32 channels, ReLU), 2×2 average pooling to 4×4,
    a dense layer on the 512 flattened features.
    """
    h = x[..., None]
    dims = ("NHWC", "HWIO", "NHWC")
    for w, b in (("c1", "b1"), ("c2", "b2")):
        h = jax.lax.conv_general_dilated(h, params[w], (1, 1), "SAME", dimension_numbers=dims)
        h = jax.nn.relu(h + params[b])
    h = h.reshape(h.shape[0], 4, 2, 4, 2, h.shape[-1]).mean(axis=(2, 4))
    return h.reshape(h.shape[0], -1) @ params["w"] + params["b"]


def cnn_apply(params, x):
    """Class probabilities: the softmax of :func:`cnn_logits`."""
    return jax.nn.softmax(cnn_logits(params, x), axis=-1)


def invariant_cnn(params, group):
    """The exactly ``group``-invariant classifier: the softmax of the group-averaged logits."""
    averaged = symmetrize(partial(cnn_logits, params), group, chunk_size=group.size)
    return lambda x: jax.nn.softmax(averaged(x), axis=-1)


def cross_entropy(probs, labels):
    picked = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(picked + 1e-7))


def train_one(loss, params, x, y, *, steps, batch, lr, key, weight_decay=1e-3):
    """adamw, linear warm-up (5% of the steps) then cosine decay to 0, minibatches."""
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(steps // 20, 1), steps)
    optimizer = optax.adamw(schedule, weight_decay=weight_decay)
    n = x.shape[0]

    @jax.jit
    def step(p, s, k):
        index = jax.random.randint(k, (batch,), 0, n)
        grads = jax.grad(loss)(p, x[index], y[index], jax.random.fold_in(k, 1))
        updates, s = optimizer.update(grads, s, p)
        return optax.apply_updates(p, updates), s

    # a Python loop of jitted steps: XLA:CPU runs convolutions inside ``lax.scan``
    # tens of times slower than the same step called on its own
    state = optimizer.init(params)
    for i in range(steps):
        params, state = step(params, state, jax.random.fold_in(key, i))
    return params


def ece(probs, labels, bins=15):
    confidence = np.max(probs, axis=-1)
    correct = np.argmax(probs, axis=-1) == labels
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def classification_metrics(probs, labels):
    probs = np.asarray(probs)
    predicted = np.argmax(probs, axis=-1)
    six_nine = np.isin(labels, (6, 9))
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "ece": ece(probs, labels),
        "accuracy_6_9": float(np.mean(predicted[six_nine] == labels[six_nine])),
    }


def _plain(value):
    """JSON-ready copy of a NamedTuple / array / scalar (for the regularizer's choice)."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return np.asarray(value).tolist()
    return value if isinstance(value, (int, float, str, bool, type(None))) else repr(value)


def digits(cfg):
    """CNNs on scikit-learn's 8×8 digits (and, for C4, on ``rotated_digits``), per seed."""
    candidates = digits_candidates()
    c4, d4 = candidates[2], candidates[-1]
    kw = dict(steps=cfg["digits_steps"], batch=cfg["digits_batch"], lr=3e-3)
    names = ("plain", "D4-symmetrized", "D4-augmentation", "regularizer")
    methods = {name: [] for name in names}
    rotated = {"plain": [], "C4-symmetrized": []}
    kept, budgets, extra = [], [], []

    def plain_loss(p, xb, yb, _):
        return cross_entropy(cnn_apply(p, xb), yb)

    def sym_loss(p, xb, yb, _, group=d4):
        return cross_entropy(invariant_cnn(p, group)(xb), yb)

    def aug_loss(p, xb, yb, k):
        index = jax.random.randint(k, (xb.shape[0],), 0, d4.size)
        moved = jax.vmap(d4.act_in)(jax.tree_util.tree_map(lambda e: e[index], d4.elements), xb)
        return cross_entropy(cnn_apply(p, moved), yb)

    num_train = 300 if cfg.get("quick") else 1000
    turned = jaxsym.datasets.rotated_digits(seed=0)
    for seed in range(cfg["digits_seeds"]):
        x, y, x_test, y_test = digits_data(seed, num_train)
        labels = jnp.asarray(y)
        key = jax.random.key(seed)
        init = cnn_init(jax.random.fold_in(key, 1))

        def fit(xf, yf, seed_key=key, seed_init=init):
            p = train_one(plain_loss, seed_init, xf, jnp.argmax(yf, axis=-1), key=seed_key, **kw)
            return jax.tree_util.Partial(cnn_apply, p)

        plain = train_one(plain_loss, init, x, labels, key=key, **kw)
        methods["plain"].append(classification_metrics(cnn_apply(plain, x_test), y_test))
        sym = train_one(sym_loss, init, x, labels, key=key, **kw)
        methods["D4-symmetrized"].append(
            classification_metrics(invariant_cnn(sym, d4)(x_test), y_test)
        )
        aug = train_one(aug_loss, init, x, labels, key=key, **kw)
        methods["D4-augmentation"].append(classification_metrics(cnn_apply(aug, x_test), y_test))

        one_hot = jax.nn.one_hot(y, 10)
        folds = cross_fitting_folds(x.shape[0], 5, key=jax.random.fold_in(key, 2))
        fold_models = []
        for held_out in folds:
            train = np.setdiff1d(np.arange(x.shape[0]), held_out)
            fold_models.append(fit(x[train], one_hot[train]))
        screen = trained_already(x, folds, fold_models, jax.tree_util.Partial(cnn_apply, plain))
        choice = jaxsym.choose_symmetry(
            x, one_hot, d4, fit=jaxsym.post_hoc(screen), candidates=candidates,
            key=jax.random.fold_in(key, 2), t_grid=T_GRID,
        )  # fmt: skip
        reg = bound_regularizer(choice, chunk_size=d4.size)

        def reg_loss(p, xb, yb, _, reg=reg):
            g = reg.model(partial(cnn_apply, p))
            return cross_entropy(g(xb), yb) + reg(g, xb)

        trained = train_one(reg_loss, init, x, labels, key=key, **kw)
        deployed = reg.freeze(partial(cnn_apply, trained), x)
        methods["regularizer"].append(classification_metrics(deployed(x_test), y_test))
        kept.append(reg.group.name)
        budgets.append(float(reg.budget))
        extra.append(
            {
                "choice": _plain(reg.choice),
                "deployed_d2": float(
                    orbit_stats(deployed, x_test[:256], reg.group, chunk_size=None).d2
                ),
            }
        )

        # rotated digits (a random quarter turn per image): plain against C4-symmetrized
        order = np.random.default_rng(seed).permutation(turned.y.shape[0])
        tr, te = order[:num_train], order[num_train:]
        xr, yr = jnp.asarray(turned.x[..., 0]), np.asarray(turned.y)
        p = train_one(plain_loss, init, xr[tr], jnp.asarray(yr[tr]), key=key, **kw)
        rotated["plain"].append(classification_metrics(cnn_apply(p, xr[te]), yr[te]))
        p = train_one(partial(sym_loss, group=c4), init, xr[tr], jnp.asarray(yr[tr]), key=key, **kw)
        rotated["C4-symmetrized"].append(
            classification_metrics(invariant_cnn(p, c4)(xr[te]), yr[te])
        )
        print(
            f"[digits seed {seed}] plain {methods['plain'][-1]['accuracy']:.3f} "
            f"kept {reg.group.name} budget={budgets[-1]:.3f}",
            flush=True,
        )

    def mean_sd(values):
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        return {"mean": float(np.mean(values)), "sd": sd}

    def summary(table):
        return {
            name: {k: mean_sd([r[k] for r in rows]) for k in rows[0]}
            for name, rows in table.items()
        }

    return {
        "candidates": [c.name for c in candidates],
        "num_train": num_train,
        "num_test": 1797 - num_train,
        "methods": summary(methods),
        "rotated": summary(rotated),
        "per_seed": methods,
        "rotated_per_seed": rotated,
        "kept": kept,
        "budget": budgets,
        "choice": extra,
    }


# ============================================================================ study 3: cost


def interleaved(fns, repeats):
    """Median seconds of each function, timed in rotation (after warm-up)."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def cost(cfg):
    group = groups.cyclic_rotations(8)
    batch = 256
    x, y = draw(target_c8, jax.random.key(0), 800, 0.3)
    xb, yb = x[:batch], y[:batch]
    params = mlp_init(jax.random.key(1))
    optimizer = optax.adam(3e-3)
    state = optimizer.init(params)

    # building the regularizer (the post-hoc screen: 5 fold fits + the full fit, as
    # jaxsym.post_hoc runs a user's plain `fit`) against a 5-value λ sweep, each model alone
    kw = dict(steps=cfg["steps"], batch=cfg["batch"], lr=3e-3)
    init = stack([params])

    def fit(xf, yf):
        p = train_many(
            lambda q, a, b, _: mse(mlp_apply(q, a), b), init, xf[None], yf[None],
            jnp.zeros((1,)), key=jax.random.key(2), **kw,
        )  # fmt: skip
        return model_of(unstack(p, 1)[0])

    t0 = time.perf_counter()
    choice = jaxsym.choose_symmetry(
        x, y, group, fit=jaxsym.post_hoc(fit), key=jax.random.key(3), t_grid=T_GRID
    )
    reg = bound_regularizer(choice, chunk_size=group.size)
    jax.block_until_ready(reg.budget)
    build = time.perf_counter() - t0

    def penalized(q, a, b, lam):
        stats = orbit_stats(model_of(q), a, group, chunk_size=group.size)
        return mse(stats.outputs, b) + lam * stats.ee2_sq

    t0 = time.perf_counter()
    for lam in LAMBDAS:
        out = train_many(
            penalized, init, x[None], y[None], jnp.asarray([lam]), key=jax.random.key(4), **kw
        )
        jax.block_until_ready(out)
    sweep = time.perf_counter() - t0

    # The step timed is the regularizer's at a *soft* budget on the whole group: the screen
    # above may keep none (a plain step) or budget 0 (exact averaging), which would not
    # time the projection. Half the initial network's d_2 on the batch: 0 < s < 1.
    d2_init = float(orbit_stats(model_of(params), xb, group, chunk_size=group.size).d2)
    timed = BoundRegularizer(0.5 * d2_init, group, chunk_size=group.size)
    scale = float(timed.freeze(model_of(params), xb).scale)
    assert timed.group.size > 1 and 0.0 < scale < 1.0, (timed.group.size, scale)

    def make_step(loss):
        @jax.jit
        def step(p, s):
            grads = jax.grad(loss)(p)
            updates, s = optimizer.update(grads, s, p)
            return optax.apply_updates(p, updates), s

        return lambda: step(params, state)

    def regularized(p):
        g = timed.model(model_of(p))
        return mse(g(xb), yb) + timed(g, xb)

    def fused(p):
        moved = groups.transform_batch(group, group.elements, xb).reshape(-1, 2)
        out = mlp_apply(p, jnp.concatenate([xb, moved]))
        fx, orbit = out[:batch], out[batch:].reshape(group.size, batch, -1)
        qfx = jnp.mean(orbit, axis=0)
        d2 = jnp.sqrt(jnp.mean(jnp.sum((fx - qfx) ** 2, -1)))
        s = jnp.where(d2 > timed.budget, timed.budget / d2, 1.0)
        return mse(qfx + s * (fx - qfx), yb)

    def symmetrized(p):
        return mse(symmetrize(model_of(p), group)(xb), yb)

    times = interleaved(
        {
            "regularized": make_step(regularized),
            "hand_fused": make_step(fused),
            "symmetrized": make_step(symmetrized),
        },
        cfg["cost_repeats"],
    )
    return {
        "group": group.name,
        "batch": batch,
        "step_seconds": times,
        "ratio_to_fused": times["regularized"] / times["hand_fused"],
        "ratio_to_symmetrized": times["regularized"] / times["symmetrized"],
        "target_ratio_to_symmetrized": 1.2 * (group.size + 1) / group.size,
        "timed_set": timed.group.name,
        "timed_set_size": timed.group.size,
        "timed_budget": float(timed.budget),
        "timed_scale": scale,
        "screened_set": reg.group.name,
        "screened_budget": float(reg.budget),
        "build_seconds": build,
        "lambda_sweep_seconds": sweep,
        "build_over_sweep": build / sweep,
        "steps": cfg["steps"],
        "repeats": cfg["cost_repeats"],
    }


# ============================================================================ output


def _interval(r):
    return f"{r['ratio']:.2f} [{r['low']:.2f}, {r['high']:.2f}]"


def _mean_sd(m):
    return f"{m['mean']:.3f} ± {m['sd']:.3f}"


def markdown(results):
    lines = []
    cells = results.get("synthetic", [])
    s = results["settings"]
    if cells:
        methods = list(cells[0]["ratio"])
        seeds = len(cells[0]["budget"])
        grid = ", ".join(f"{v:g}" for v in LAMBDAS)
        lines += [
            f"2×64 tanh MLP, adam (lr 3e-3), {s['steps']} steps on minibatches of "
            f"min(n, {s['batch']}), {seeds} seeds per cell. **Excess risk** = mean (g − f*)² "
            f"on {s['test_size']} fresh inputs (the test MSE on noisy labels minus σ² = "
            f"{NOISE**2:.2f}). `λ tuned`: λ·ee₂² with λ ∈ {{{grid}}} "
            "chosen per seed by the MSE on a 20% validation split (each λ trained on the other "
            "80%), then retrained with that λ on the full training set. `dial(t*)`: the "
            "unconstrained fit dialed to the screen's level t*. `regularizer`: "
            "`bound_regularizer`'s budget projection (no knob), its set and budget from "
            "the post-hoc screen (`choose_symmetry` with `jaxsym.post_hoc`).",
            "",
            "Excess risk of each method / the cell's best method's (least mean excess risk), "
            "paired by seed: geometric mean over seeds [95% t-interval of the mean log ratio]; "
            "1.00 = the best. `reg. worst` is the regularizer's largest per-seed ratio. "
            "`reg. vs λ tuned` is the paired ratio regularizer / λ tuned with its 95% interval: "
            "**win** (interval below 1), **tie** (contains 1), **lose** (above 1).",
            "",
            "| task | η | n | best (excess) | " + " | ".join(methods)
            + " | reg. worst | reg. vs λ tuned | λ chosen | budget |",
            "|---|---|---|---|" + "---|" * (len(methods) + 4),
        ]  # fmt: skip
        for c in cells:
            ratios = " | ".join(_interval(c["ratio"][m]) for m in methods)
            vs = c["regularizer_against"]["λ tuned"]
            chosen = "/".join(f"{v:g}" for v in c["lambda_chosen"])
            lines.append(
                f"| {c['task']} | {c['eta']} | {c['n']} | {c['best']} "
                f"({c['mean_excess'][c['best']]:.4f}) | {ratios} | "
                f"{c['regularizer_worst_seed']:.2f} | {_interval(vs)} **{vs['verdict']}** | "
                f"{chosen} | {np.mean(c['budget']):.3f} |"
            )
        lines += ["", "Where the regularizer wins, ties and loses (paired 95% intervals):", ""]
        for other in cells[0]["regularizer_against"]:
            tally = {"win": [], "tie": [], "lose": []}
            for c in cells:
                tally[c["regularizer_against"][other]["verdict"]].append(
                    f"{c['task']} η={c['eta']} n={c['n']}"
                )
            lines.append(
                f"- against **{other}**: wins {len(tally['win'])}, ties {len(tally['tie'])}, "
                f"loses {len(tally['lose'])} of {len(cells)} cells"
                + "".join(
                    f"; {v}s in {', '.join(tally[v])}" if tally[v] else "" for v in ("win", "lose")
                )
                + "."
            )
        best_count = {m: sum(c["best"] == m for c in cells) for m in methods}
        worst = {m: max(c["ratio"][m]["ratio"] for c in cells) for m in methods}
        worst_seed = {
            m: max(
                float(np.max(np.asarray(c["excess_risk"][m]) / c["excess_risk"][c["best"]]))
                for c in cells
            )
            for m in methods
        }
        lines += [
            "",
            "| method | cells where best | worst mean ratio over cells | worst seed over cells |",
            "|---|---|---|---|",
            *[f"| {m} | {best_count[m]} | {worst[m]:.2f} | {worst_seed[m]:.2f} |" for m in methods],
            "",
        ]
    if "digits" in results:
        d = results["digits"]
        seeds = len(d["kept"])
        lines += [
            f"Digits (8×8, {d['num_train']} train / {d['num_test']} test, {seeds} seeds): a CNN "
            "(3×3 convolutions with 16 and 32 channels, 2×2 average pooling, dense head; "
            "the symmetrized CNNs average the logits over the group, then softmax), "
            f"adamw (lr 3e-3, weight decay 1e-3, warm-up then cosine decay), "
            f"{s['digits_steps']} steps on minibatches of {s['digits_batch']}, cross-entropy. "
            "Mean ± sd over seeds. The regularizer's candidates: "
            f"{' ⊂ '.join(d['candidates'])}; kept {d['kept']}, "
            f"budget = {[round(e, 3) for e in d['budget']]}.",
            "",
            "| data | method | accuracy | ECE (15 bins) | accuracy on 6 and 9 |",
            "|---|---|---|---|---|",
        ]
        for data, table in (("digits", d["methods"]), ("rotated digits", d["rotated"])):
            for name, m in table.items():
                lines.append(
                    f"| {data} | {name} | {_mean_sd(m['accuracy'])} | {_mean_sd(m['ece'])} | "
                    f"{_mean_sd(m['accuracy_6_9'])} |"
                )
        lines.append("")
    if "cost" in results:
        c = results["cost"]
        lines += [
            f"Cost ({c['group']}, 2×64 MLP, batch {c['batch']}, one adam step, median of "
            f"{c['repeats']} interleaved repeats), as ratios measured in the same run. The "
            f"regularized step is the budget projection on {c.get('timed_set', c['group'])} "
            f"(|S| = {c.get('timed_set_size', '?')}) at a soft budget, s = "
            f"{c.get('timed_scale', float('nan')):.2f} of the way to the plain network "
            "(0 < s < 1: the projection is active); building "
            f"the regularizer (5 fold fits + the full fit, {c['steps']} steps each) against a "
            "5-value λ sweep (5 penalized fits):",
            "",
            "| reg. step / hand-fused step | reg. step / symmetrized step (target) "
            "| build / 5-λ sweep |",
            "|---|---|---|",
            f"| {c['ratio_to_fused']:.2f} | {c['ratio_to_symmetrized']:.2f} "
            f"(≤ {c['target_ratio_to_symmetrized']:.2f}) | {c['build_over_sweep']:.2f} |",
            "",
        ]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings (for the test)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "training.json"))
    parser.add_argument("--markdown", default=None, help="default: --out with .md")
    parser.add_argument(
        "--only", nargs="*", default=["cost", "digits", "synthetic"],
        choices=["cost", "digits", "synthetic"],
    )  # fmt: skip
    parser.add_argument(
        "--update", action="store_true", help="keep the other sections of an existing --out"
    )
    args = parser.parse_args(argv)
    cfg = dict(QUICK if args.quick else FULL, quick=args.quick)
    out = Path(args.out)
    md = Path(args.markdown) if args.markdown else out.with_suffix(".md")
    out.parent.mkdir(parents=True, exist_ok=True)
    results = {
        "machine": platform.platform(),
        "processor": platform.processor(),
        "device": str(jax.devices()[0]),
        "jax": jax.__version__,
        "settings": {k: v for k, v in cfg.items()},
    }
    if args.update and out.exists():
        kept = json.loads(out.read_text())
        results = {**kept, **{k: v for k, v in results.items() if k != "settings"}}
        results["updated_sections"] = args.only

    def save():
        out.write_text(json.dumps(results, indent=1))
        md.write_text(markdown(results))

    started = time.perf_counter()
    if "cost" in args.only:
        results["cost"] = cost(cfg)
        save()
    if "digits" in args.only:
        results["digits"] = digits(cfg)
        save()
    if "synthetic" in args.only:
        results["synthetic"] = []
        for task_name, eta, n in cfg["cells"]:
            t0 = time.perf_counter()
            cell = synthetic_cell(
                task_name, eta, n, cfg,
                jax.random.key(zlib.crc32(f"{task_name}/{eta}/{n}".encode())),
            )  # fmt: skip
            cell.update(summarize_cell(cell))
            cell["wall_s"] = time.perf_counter() - t0
            results["synthetic"].append(cell)
            save()
            ratio = cell["ratio"]["regularizer"]["ratio"]
            print(f"[{task_name} η={eta} n={n}] {cell['wall_s']:.0f}s reg={ratio:.3f}", flush=True)
    results["total_seconds"] = time.perf_counter() - started
    save()
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
