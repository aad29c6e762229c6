"""Training at the right level of symmetry: the bound regularizer against tuned baselines.

theory.md §7, §8. Three studies, written to one JSON file and a markdown table
generated from it (``--out`` / ``--markdown``):

1. **Synthetic** (§8's task): ``x ~ N(0, I₂)``, ``y = f*(x) + 0.3 ε`` with
   ``d_2(f*) = η``, ``η ∈ {0, 0.1, 0.3}``, ``n ∈ {200, 800, 3200}``; a 2×64
   tanh MLP, adam (lr 3e-3) for 2000 steps on minibatches of ``min(n, 256)``,
   5 seeds. Methods: unconstrained; exactly symmetrized ``Q_G f``; fixed
   ``λ · ee_2²`` for λ ∈ {0.01, 0.1, 1, 10, 100}; the post-hoc dial of the
   unconstrained fit at the predicted ``t*``; the hinge ``β (d_2 − ε̂*)_+²`` with
   β = 30; and the regularizer's default (the budget projection). Test MSE is
   ``mean (g − f*)² + σ²`` on 4000 fresh inputs (the risk on noisy labels,
   without its Monte Carlo noise). Two tasks: C8 with
   ``f* = cos‖x‖ + η (x₁ + x₁x₂)/√2``, and C6 with a second target
   ``f* = cos(2.5‖x‖) + η a₃(x)``, ``a₃ ∝ e^{−‖x‖²/4} Re(x₁ + i x₂)³``
   (angular frequency 3, so ``Q_{C6} a₃ = 0``; normalized to ``‖a₃‖ = 1``),
   whose radial oscillation a small MLP represents badly as an invariant
   function by itself (where penalty designs fail). A third design, the
   "hybrid" (projection + hinge β = 30 on the raw network), is compared too.
   Seeds, folds and λ values train in one vectorized loop (``vmap``).
2. **Digits** (scikit-learn's 8×8 digits): a small CNN that outputs class
   probabilities, trained with cross-entropy; plain, D4-symmetrized, D4
   augmentation, and the regularizer with nested candidates
   ``{e} ⊂ {e, r180} ⊂ C4 ⊂ D4`` (6 and 9 swap under r180). Test accuracy,
   ECE (15 bins), the accuracy on classes 6 and 9, the kept set and ε*.
3. **Cost**: one regularized training step against a hand-fused step that
   evaluates the model once on the orbit, and against one step of the
   symmetrized model, interleaved in one run; building the regularizer
   (cross-fitted fits included) against a 5-value λ sweep.

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

from jaxsym import dial, groups, orbit_stats, symmetrize  # noqa: E402
from jaxsym.constants import BoundConstants, squared_loss_constants  # noqa: E402
from jaxsym.predictive import cross_fitting_folds  # noqa: E402
from jaxsym.training import bound_regularizer  # noqa: E402

NOISE = 0.3
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)
HINGE_BETA = 30.0

FULL = dict(
    etas=(0.0, 0.1, 0.3),
    sizes=(200, 800, 3200),
    seeds=5,
    steps=2000,
    batch=256,
    test_size=4000,
    digits_seeds=2,
    digits_steps=600,
    cost_repeats=200,
)
QUICK = dict(
    etas=(0.3,),
    sizes=(200,),
    seeds=2,
    steps=60,
    batch=64,
    test_size=500,
    digits_seeds=1,
    digits_steps=20,
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


# ============================================================================ study 1


def synthetic_cell(task_name, eta, n, cfg, key):
    """All methods on one (task, η, n) cell, all seeds; returns per-seed test MSEs."""
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

    def test_mse(predict):
        return float(mse(predict(x_test), f_test)) + NOISE**2

    def repeat(tree, times):
        return jax.tree_util.tree_map(lambda a: jnp.repeat(a, times, axis=0), tree)

    none = jnp.zeros((seeds,))
    results = {}

    # unconstrained (also the full-data fit of the regularizer and of the dial)
    t0 = time.perf_counter()
    plain = train_many(
        lambda p, xb, yb, _: mse(mlp_apply(p, xb), yb),
        inits,
        xs,
        ys,
        none,
        key=jax.random.fold_in(key, 1),
        **train_kw,
    )
    jax.block_until_ready(plain)
    timings["unconstrained"] = time.perf_counter() - t0
    plain_models = [model_of(p) for p in unstack(plain, seeds)]
    results["unconstrained"] = [test_mse(m) for m in plain_models]

    # exactly symmetrized
    t0 = time.perf_counter()
    sym = train_many(
        lambda p, xb, yb, _: mse(symmetrize(model_of(p), group, chunk_size=group.size)(xb), yb),
        inits,
        xs,
        ys,
        none,
        key=jax.random.fold_in(key, 2),
        **train_kw,
    )
    jax.block_until_ready(sym)
    timings["symmetrized"] = time.perf_counter() - t0
    results["symmetrized"] = [test_mse(symmetrize(model_of(p), group)) for p in unstack(sym, seeds)]

    # fixed λ · ee_2², all λ and seeds in one loop
    def penalized(p, xb, yb, lam):
        stats = orbit_stats(model_of(p), xb, group, chunk_size=group.size)
        return mse(stats.outputs, yb) + lam * stats.ee2_sq

    lams = jnp.tile(jnp.asarray(LAMBDAS), seeds)  # seed-major
    t0 = time.perf_counter()
    swept = train_many(
        penalized,
        repeat(inits, len(LAMBDAS)),
        jnp.repeat(xs, len(LAMBDAS), 0),
        jnp.repeat(ys, len(LAMBDAS), 0),
        lams,
        key=jax.random.fold_in(key, 3),
        **train_kw,
    )
    jax.block_until_ready(swept)
    timings["lambda_sweep"] = time.perf_counter() - t0
    swept_models = unstack(swept, seeds * len(LAMBDAS))
    for j, lam in enumerate(LAMBDAS):
        results[f"lambda={lam:g}"] = [
            test_mse(model_of(swept_models[s * len(LAMBDAS) + j])) for s in range(seeds)
        ]

    # cross-fitted fold fits (5 per seed), one loop
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
        lambda p, xb, yb, _: mse(mlp_apply(p, xb), yb),
        repeat(inits, num_folds),
        jnp.stack(fold_x),
        jnp.stack(fold_y),
        jnp.zeros((seeds * num_folds,)),
        key=jax.random.fold_in(key, 4),
        **train_kw,
    )
    jax.block_until_ready(folds)
    fold_models = [model_of(p) for p in unstack(folds, seeds * num_folds)]
    regs = []
    for s in range(seeds):
        regs.append(
            bound_regularizer(
                xs[s],
                ys[s],
                group,
                fit=None,
                key=fold_keys[s],
                fold_models=fold_models[s * num_folds : (s + 1) * num_folds],
                full_model=plain_models[s],
                chunk_size=group.size,
            )
        )
    timings["regularizer_build"] = time.perf_counter() - t0 + timings["unconstrained"]
    eps = jnp.stack([r.eps for r in regs])
    t_star = [float(r.choice.t_star[r.choice.index]) for r in regs]

    # post-hoc dial at the predicted t*
    results["dial(t*)"] = [test_mse(dial(plain_models[s], group, t_star[s])) for s in range(seeds)]

    # the regularizer: default (budget projection) and the hinge β = 30, the user's loop
    template = regs[0]
    hinge_template = dataclasses.replace(template, beta=HINGE_BETA)
    trained = {}
    designs = (
        ("regularizer", template, False),
        (f"hinge(β={HINGE_BETA:g})", hinge_template, False),
        (f"hybrid(β={HINGE_BETA:g})", template, True),
    )
    for name, reg0, hybrid in designs:

        def regularized(p, xb, yb, e, reg0=reg0, hybrid=hybrid):
            reg = eqx.tree_at(lambda r: r.eps, reg0, e)
            g = reg.model(model_of(p))
            loss = mse(g(xb), yb) + reg(g, xb)
            if hybrid:  # the projection plus the hinge on the raw network
                loss = loss + dataclasses.replace(reg, beta=HINGE_BETA)(model_of(p), xb)
            return loss

        t0 = time.perf_counter()
        params = train_many(
            regularized, inits, xs, ys, eps, key=jax.random.fold_in(key, 5), **train_kw
        )
        jax.block_until_ready(params)
        timings[name] = time.perf_counter() - t0
        deployed = [
            eqx.tree_at(lambda r: r.eps, reg0, regs[s].eps).freeze(model_of(p), xs[s])
            for s, p in enumerate(unstack(params, seeds))
        ]
        trained[name] = deployed
        results[name] = [test_mse(m) for m in deployed]

    learned_d2 = {
        name: [float(orbit_stats(m, x_test, group).d2) for m in models]
        for name, models in trained.items()
    }
    return {
        "task": task_name,
        "group": group.name,
        "eta": eta,
        "n": n,
        "test_mse": results,
        "eps_star": [float(e) for e in eps],
        "t_star": t_star,
        "learned_d2": learned_d2,
        "unconstrained_d2": [float(orbit_stats(m, x_test, group).d2) for m in plain_models],
        "seconds": timings,
    }


def summarize_cell(cell):
    means = {k: float(np.mean(v)) for k, v in cell["test_mse"].items()}
    best = min(means.values())
    per_seed = np.array(list(cell["test_mse"].values()))  # (methods, seeds)
    best_seed = per_seed.min(axis=0)
    ratio_seed = {k: (np.asarray(v) / best_seed).tolist() for k, v in cell["test_mse"].items()}
    return {
        "mean": means,
        "ratio": {k: v / best for k, v in means.items()},
        "worst_seed_ratio": {k: float(max(v)) for k, v in ratio_seed.items()},
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


def cnn_init(key, channels=(8, 16), classes=10):
    k1, k2, k3 = jax.random.split(key, 3)
    c1, c2 = channels
    return {
        "c1": jax.random.normal(k1, (3, 3, 1, c1)) / 3.0,
        "b1": jnp.zeros((c1,)),
        "c2": jax.random.normal(k2, (3, 3, c1, c2)) / math.sqrt(9 * c1),
        "b2": jnp.zeros((c2,)),
        "w": jax.random.normal(k3, (c2, classes)) / math.sqrt(c2),
        "b": jnp.zeros((classes,)),
    }


def cnn_apply(params, x):
    """Class probabilities of a 2-layer CNN on ``(B, 8, 8)`` images."""
    h = x[..., None]
    dims = ("NHWC", "HWIO", "NHWC")
    for w, b in (("c1", "b1"), ("c2", "b2")):
        h = jax.lax.conv_general_dilated(h, params[w], (1, 1), "SAME", dimension_numbers=dims)
        h = jax.nn.relu(h + params[b])
    logits = jnp.mean(h, axis=(1, 2)) @ params["w"] + params["b"]
    return jax.nn.softmax(logits, axis=-1)


def cross_entropy(probs, labels):
    picked = jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return -jnp.mean(jnp.log(picked + 1e-7))


def train_one(loss, params, x, y, *, steps, batch, lr, key):
    optimizer = optax.adam(lr)
    n = x.shape[0]

    @jax.jit
    def run(params, key):
        def body(carry, step):
            p, s = carry
            k = jax.random.fold_in(key, step)
            index = jax.random.randint(k, (batch,), 0, n)
            grads = jax.grad(loss)(p, x[index], y[index], jax.random.fold_in(k, 1))
            updates, s = optimizer.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), None

        return jax.lax.scan(body, (params, optimizer.init(params)), jnp.arange(steps))[0][0]

    return run(params, key)


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


def digits(cfg):
    candidates = digits_candidates()
    d4 = candidates[-1]
    kw = dict(steps=cfg["digits_steps"], batch=64, lr=3e-3)
    methods = {"plain": [], "D4-symmetrized": [], "D4-augmentation": [], "regularizer": []}
    kept, eps, extra = [], [], []

    def plain_loss(p, xb, yb, _):
        return cross_entropy(cnn_apply(p, xb), yb)

    def sym_loss(p, xb, yb, _):
        return cross_entropy(symmetrize(partial(cnn_apply, p), d4)(xb), yb)

    def aug_loss(p, xb, yb, k):
        index = jax.random.randint(k, (xb.shape[0],), 0, d4.size)
        moved = jax.vmap(d4.act_in)(jax.tree_util.tree_map(lambda e: e[index], d4.elements), xb)
        return cross_entropy(cnn_apply(p, moved), yb)

    for seed in range(cfg["digits_seeds"]):
        x, y, x_test, y_test = digits_data(seed, 1000 if not cfg.get("quick") else 300)
        key = jax.random.key(seed)
        init = cnn_init(jax.random.fold_in(key, 1))

        def fit(xf, yf, seed_key=key, seed_init=init):
            labels = jnp.argmax(yf, axis=-1)
            p = train_one(plain_loss, seed_init, xf, labels, key=seed_key, **kw)
            return jax.tree_util.Partial(cnn_apply, p)

        one_hot = jax.nn.one_hot(y, 10)
        plain = train_one(plain_loss, init, x, jnp.asarray(y), key=key, **kw)
        methods["plain"].append(classification_metrics(cnn_apply(plain, x_test), y_test))
        sym = train_one(sym_loss, init, x, jnp.asarray(y), key=key, **kw)
        methods["D4-symmetrized"].append(
            classification_metrics(symmetrize(partial(cnn_apply, sym), d4)(x_test), y_test)
        )
        aug = train_one(aug_loss, init, x, jnp.asarray(y), key=key, **kw)
        methods["D4-augmentation"].append(classification_metrics(cnn_apply(aug, x_test), y_test))

        folds = cross_fitting_folds(x.shape[0], 5, key=jax.random.fold_in(key, 2))
        fold_models = []
        for held_out in folds:
            train = np.setdiff1d(np.arange(x.shape[0]), held_out)
            fold_models.append(fit(x[train], one_hot[train]))
        reg = bound_regularizer(
            x, one_hot, d4, fit=None, candidates=candidates, key=jax.random.fold_in(key, 2),
            fold_models=fold_models, full_model=jax.tree_util.Partial(cnn_apply, plain),
        )  # fmt: skip

        def reg_loss(p, xb, yb, _, reg=reg):
            g = reg.model(partial(cnn_apply, p))
            return cross_entropy(g(xb), yb) + reg(g, xb)

        trained = train_one(reg_loss, init, x, jnp.asarray(y), key=key, **kw)
        deployed = reg.freeze(partial(cnn_apply, trained), x)
        methods["regularizer"].append(classification_metrics(deployed(x_test), y_test))
        kept.append(reg.group.name)
        eps.append(float(reg.eps))
        extra.append(
            {
                "approximation": np.asarray(reg.choice.approximation).tolist(),
                "generalization": np.asarray(reg.choice.generalization).tolist(),
                "eps_star": np.asarray(reg.choice.eps_star).tolist(),
                "t_star": np.asarray(reg.choice.t_star).tolist(),
                "unconstrained_distance": np.asarray(reg.choice.distance).tolist(),
                "deployed_distance": float(
                    orbit_stats(deployed, x_test[:256], reg.group, chunk_size=None).d2
                ),
            }
        )
        print(f"[digits seed {seed}] kept {reg.group.name} ε*={float(reg.eps):.3f}", flush=True)
    summary = {
        name: {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        for name, rows in methods.items()
    }
    return {
        "candidates": [c.name for c in candidates],
        "methods": summary,
        "per_seed": methods,
        "kept": kept,
        "eps_star": eps,
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
    nan = jnp.full((1,), jnp.nan)
    from jaxsym.training import BoundRegularizer, CandidateChoice

    reg = BoundRegularizer(
        eps=jnp.asarray(0.2), group=group, candidates=(group,),
        choice=CandidateChoice(0, nan, nan, nan, nan, nan, nan),
        constants=BoundConstants(1.0, 1.0, squared_loss_constants(1.0, 1, 1.0)), chunk_size=None,
    )  # fmt: skip

    def make_step(loss):
        @jax.jit
        def step(p, s):
            grads = jax.grad(loss)(p)
            updates, s = optimizer.update(grads, s, p)
            return optax.apply_updates(p, updates), s

        return lambda: step(params, state)

    def regularized(p):
        g = reg.model(model_of(p))
        return mse(g(xb), yb) + reg(g, xb)

    def fused(p):
        moved = groups.transform_batch(group, group.elements, xb).reshape(-1, 2)
        out = mlp_apply(p, jnp.concatenate([xb, moved]))
        fx, orbit = out[:batch], out[batch:].reshape(group.size, batch, -1)
        qfx = jnp.mean(orbit, axis=0)
        d2 = jnp.sqrt(jnp.mean(jnp.sum((fx - qfx) ** 2, -1)))
        s = jnp.where(d2 > reg.eps, reg.eps / d2, 1.0)
        return mse(qfx + s * (fx - qfx), yb)

    def symmetrized(p):
        return mse(symmetrize(model_of(p), group)(xb), yb)

    def hinge(p):
        h = dataclasses.replace(reg, beta=HINGE_BETA)
        return mse(model_of(p)(xb), yb) + h(model_of(p), xb)

    times = interleaved(
        {
            "regularized": make_step(regularized),
            "hand_fused": make_step(fused),
            "symmetrized": make_step(symmetrized),
            "hinge": make_step(hinge),
        },
        cfg["cost_repeats"],
    )
    bound = 1.2 * (group.size + 1) / group.size

    # building the regularizer (5 fold fits + the full fit, as a user's `fit` runs them)
    # against a 5-value λ sweep, each model trained alone
    steps = cfg["steps"]
    kw = dict(steps=steps, batch=cfg["batch"], lr=3e-3)
    init = stack([params])

    def fit(xf, yf):
        p = train_many(
            lambda q, a, b, _: mse(mlp_apply(q, a), b), init, xf[None], yf[None],
            jnp.zeros((1,)), key=jax.random.key(2), **kw,
        )  # fmt: skip
        return model_of(unstack(p, 1)[0])

    t0 = time.perf_counter()
    bound_regularizer(x, y, group, fit=fit, key=jax.random.key(3), chunk_size=group.size)
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
    return {
        "group": group.name,
        "batch": batch,
        "step_seconds": times,
        "ratio_to_fused": times["regularized"] / times["hand_fused"],
        "ratio_to_symmetrized": times["regularized"] / times["symmetrized"],
        "target_ratio_to_symmetrized": bound,
        "build_seconds": build,
        "lambda_sweep_seconds": sweep,
        "steps": steps,
        "repeats": cfg["cost_repeats"],
    }


# ============================================================================ output


def markdown(results):
    lines = []
    cells = results.get("synthetic", [])
    if cells:
        methods = list(cells[0]["ratio"])
        lines += [
            "2×64 tanh MLP, adam (lr 3e-3), 2000 steps on minibatches of min(n, 256); test MSE "
            "= mean (g − f*)² + σ² on 4000 fresh inputs, σ = 0.3. `regularizer` is "
            "`bound_regularizer`'s default (the budget projection); `hinge` and `hybrid` "
            "(projection + hinge on the raw network) are the alternative designs.",
            "",
            "Test MSE of each method / the best method's, per (task, η, n) cell (means over "
            f"{len(cells[0]['eps_star'])} seeds; 1.00 = best). `worst seed` is the regularizer's "
            "largest per-seed ratio to that seed's best method.",
            "",
            "| task | η | n | " + " | ".join(methods) + " | reg. worst seed | ε̂* | learned d₂ |",
            "|---|---|---|" + "---|" * (len(methods) + 3),
        ]
        for c in cells:
            ratios = " | ".join(f"{c['ratio'][m]:.3f}" for m in methods)
            lines.append(
                f"| {c['task']} | {c['eta']} | {c['n']} | {ratios} | "
                f"{c['worst_seed_ratio']['regularizer']:.3f} | "
                f"{np.mean(c['eps_star']):.3f} | {np.mean(c['learned_d2']['regularizer']):.3f} |"
            )
        worst = {m: max(c["ratio"][m] for c in cells) for m in methods}
        lines += [
            "",
            "| method | worst mean ratio over cells |",
            "|---|---|",
            *[f"| {m} | {v:.3f} |" for m, v in worst.items()],
            "",
        ]
    if "digits" in results:
        d = results["digits"]
        lines += [
            f"Digits (8×8, {len(d['kept'])} seeds): candidates {' ⊂ '.join(d['candidates'])}; "
            f"kept {d['kept']}, ε* = {[round(e, 3) for e in d['eps_star']]}.",
            "",
            "| method | accuracy | ECE | accuracy on 6 and 9 |",
            "|---|---|---|---|",
        ]
        for name, m in d["methods"].items():
            lines.append(
                f"| {name} | {m['accuracy']:.3f} | {m['ece']:.3f} | {m['accuracy_6_9']:.3f} |"
            )
        lines.append("")
    if "cost" in results:
        c = results["cost"]
        t = c["step_seconds"]
        lines += [
            f"Cost ({c['group']}, 2×64 MLP, batch {c['batch']}, median ms per adam step, "
            "interleaved):",
            "",
            "| regularized | hand-fused | symmetrized | hinge | reg/fused | reg/symmetrized "
            "(target) | build | 5-λ sweep |",
            "|---|---|---|---|---|---|---|---|",
            f"| {1e3 * t['regularized']:.2f} | {1e3 * t['hand_fused']:.2f} | "
            f"{1e3 * t['symmetrized']:.2f} | {1e3 * t['hinge']:.2f} | "
            f"{c['ratio_to_fused']:.2f} | {c['ratio_to_symmetrized']:.2f} "
            f"(≤ {c['target_ratio_to_symmetrized']:.2f}) | {c['build_seconds']:.1f} s | "
            f"{c['lambda_sweep_seconds']:.1f} s |",
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
    if "synthetic" in args.only:
        results["synthetic"] = []
        for task_name in TASKS:
            sizes = cfg["sizes"]
            etas = cfg["etas"]
            if task_name != "C8/cos" and not args.quick:  # the second task: 4 cells
                etas, sizes = (etas[0], etas[-1]), sizes[:2]
            for eta in etas:
                for n in sizes:
                    t0 = time.perf_counter()
                    cell = synthetic_cell(
                        task_name, eta, n, cfg,
                        jax.random.key(zlib.crc32(f"{task_name}/{eta}/{n}".encode())),
                    )  # fmt: skip
                    cell.update(summarize_cell(cell))
                    cell["wall_s"] = time.perf_counter() - t0
                    results["synthetic"].append(cell)
                    save()
                    print(
                        f"[{task_name} η={eta} n={n}] {cell['wall_s']:.0f}s "
                        f"reg={cell['ratio']['regularizer']:.3f}",
                        flush=True,
                    )
            if task_name == "C8/cos" and "digits" in args.only:
                results["digits"] = digits(cfg)
                save()
    elif "digits" in args.only:
        results["digits"] = digits(cfg)
        save()
    results["total_seconds"] = time.perf_counter() - started
    save()
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
