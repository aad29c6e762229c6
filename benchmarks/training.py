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
   ``f* = e^{−‖x‖²/4} sin‖x‖ · 2 + η a₃(x)``, ``a₃ ∝ e^{−‖x‖²/4} Re(x₁ + i x₂)³``
   (angular frequency 3, so ``Q_{C6} a₃ = 0``; normalized to ``‖a₃‖ = 1``).
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

import math
import sys
import time
import zlib
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

from jaxsym import dial, groups, symmetrize  # noqa: E402
from jaxsym.training import (  # noqa: E402
    _cross_fitting_folds,
    _orbit_stats,
    bound_regularizer,
)

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
    digits_seeds=3,
    digits_steps=1500,
    cost_repeats=30,
)
QUICK = dict(
    etas=(0.0, 0.3),
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
    """``2 e^{−‖x‖²/4} sin‖x‖ + η a₃(x)``, ``‖a₃‖ = 1``, ``Q_{C6} a₃ = 0``: ``d_2 = η``."""
    radius = jnp.sqrt(jnp.sum(x * x, axis=-1))
    symmetric = 2 * jnp.exp(-(radius**2) / 4) * jnp.sin(radius)
    return (symmetric + eta * _a3_raw(x) / _A3_NORM)[:, None]


TASKS = {
    "C8/cos": (lambda: groups.cyclic_rotations(8), target_c8),
    "C6/sin-a3": (lambda: groups.cyclic_rotations(6), target_c6),
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
        stats = _orbit_stats(model_of(p), xb, group, chunk_size=group.size)
        return mse(stats.fx, yb) + lam * stats.ee2_sq

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
        for held_out in _cross_fitting_folds(n, num_folds, key=fold_keys[s]):
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
    for name, reg0 in (("regularizer", template), (f"hinge(β={HINGE_BETA:g})", hinge_template)):

        def regularized(p, xb, yb, e, reg0=reg0):
            reg = eqx.tree_at(lambda r: r.eps, reg0, e)
            g = reg.model(model_of(p))
            return mse(g(xb), yb) + reg(g, xb)

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
        name: [float(_orbit_stats(m, x_test, group).d2) for m in models]
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
        "unconstrained_d2": [float(_orbit_stats(m, x_test, group).d2) for m in plain_models],
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


def synthetic(cfg, tasks=tuple(TASKS)):
    cells = []
    for task_name in tasks:
        for eta in cfg["etas"]:
            for n in cfg["sizes"]:
                t0 = time.perf_counter()
                cell = synthetic_cell(
                    task_name,
                    eta,
                    n,
                    cfg,
                    jax.random.key(zlib.crc32(f"{task_name}/{eta}/{n}".encode())),
                )
                cell.update(summarize_cell(cell))
                cell["wall_s"] = time.perf_counter() - t0
                cells.append(cell)
                print(
                    f"[{task_name} η={eta} n={n}] {cell['wall_s']:.0f}s  "
                    + "  ".join(f"{k}={v:.3f}" for k, v in cell["ratio"].items()),
                    flush=True,
                )
    return cells
