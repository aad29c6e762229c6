"""Images: Lie derivatives, continuous-rotation averaging, and C4 on rotated digits.

docs/theory.md §10, §11. Three parts, printed as markdown tables and written to
one JSON file (``--out``; the tables also to ``--out`` with ``.txt``):

1. **Cost of the infinitesimal defect** on one CNN (2 conv layers of 16/32
   channels, 3×3, ReLU, dense head on the flattened map; 32×32 images of
   Gaussian blobs, B = 64): one forward
   pass; ``jaxsym.lie_derivative`` (one ``jax.jvp``); the central finite
   difference ``(f(ρ(t)x) − f(ρ(−t)x)) / 2t`` (two rotations, two forward
   passes); and ``defect_profile`` over ``{0, ±t}``. Times are jitted, after
   compilation, interleaved; the ratio column is in forward passes. The two
   defect estimates are compared for agreement too.
2. **Averaging over 16 continuous rotations** (the mean-pooled CNN): ``jax.jit(symmetrize(f,
   image_rotations(16)))`` against 16 × one forward pass and against the C4
   average, with the averaged model's relative defect at 11.25° (between grid
   angles) next to the interpolation floor there.
3. **Rotated digits** (``jaxsym.datasets.rotated_digits``): the same small
   CNN (dense head on the flattened 8×8 feature map), plain against the CNN
   symmetrized over C4 (``symmetrize(f, rot90())`` inside the loss), adam
   (lr 3e-3) for a fixed number of steps on minibatches of 128, several seeds;
   test accuracy mean ± sd on a fixed held-out quarter.

Usage::

    python benchmarks/images.py [--quick] [--out benchmarks/results/images.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jaxsym  # noqa: E402
from jaxsym import groups  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import block, machine_info, measure_many  # noqa: E402

FULL = dict(repeats=20, digits_seeds=5, digits_steps=1000)
QUICK = dict(repeats=3, digits_seeds=2, digits_steps=100)


# ----------------------------------------------------------------------------- models


def cnn_params(key, *, head_inputs: int = 32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (3, 3, 1, 16)) / 3.0,
        "w2": jax.random.normal(k2, (3, 3, 16, 32)) / 12.0,
        "w3": jax.random.normal(k3, (head_inputs, 10)) / np.sqrt(head_inputs),
    }


def features(p, x):
    dn = ("NHWC", "HWIO", "NHWC")
    h = jax.lax.conv_general_dilated(x, p["w1"], (1, 1), "SAME", dimension_numbers=dn)
    h = jax.lax.conv_general_dilated(jax.nn.relu(h), p["w2"], (1, 1), "SAME", dimension_numbers=dn)
    return jax.nn.relu(h)


def cnn(p, x):
    """Mean-pooled head: (B, H, W, 1) -> (B, 10)."""
    return features(p, x).mean(axis=(1, 2)) @ p["w3"]


def cnn_flat(p, x):
    """Dense head on the flattened feature map (not rotation invariant by design)."""
    h = features(p, x)
    return h.reshape(h.shape[0], -1) @ p["w3"]


def blobs(key, batch: int, size: int) -> jax.Array:
    """Smooth test images: sums of three Gaussian blobs inside the inscribed disc."""
    kc, kw, ks = jax.random.split(key, 3)
    r = jnp.arange(size) - (size - 1) / 2
    centres = jax.random.uniform(kc, (batch, 3, 2), minval=-size / 4, maxval=size / 4)
    widths = jax.random.uniform(kw, (batch, 3), minval=size / 16, maxval=size / 8)
    signs = jax.random.uniform(ks, (batch, 3), minval=0.5, maxval=1.0)  # intensities ≥ 0
    d2 = (r[None, None, :, None] - centres[..., 0, None, None]) ** 2 + (
        r[None, None, None, :] - centres[..., 1, None, None]
    ) ** 2
    images = (signs[..., None, None] * jnp.exp(-d2 / (2 * widths[..., None, None] ** 2))).sum(1)
    return images[..., None]


def _stats(values) -> dict:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "values": list(values),
    }


# ----------------------------------------------------------------------------- parts


def lie_cost(cfg) -> dict:
    x = blobs(jax.random.key(0), 64, 32)
    p = cnn_params(jax.random.key(1), head_inputs=32 * 32 * 32)
    f = lambda z: cnn_flat(p, z)  # noqa: E731
    t = 1e-3
    rotations = groups.image_rotations(1)
    window = groups.image_rotations(3, max_angle=t)

    def rotate(theta, z):
        return jax.vmap(rotations.act_in, in_axes=(None, 0))(theta, z)

    forward = jax.jit(f)
    lie = jax.jit(lambda z: jaxsym.lie_derivative(f, z, "rotation"))
    central = jax.jit(
        lambda z: jnp.linalg.norm((f(rotate(t, z)) - f(rotate(-t, z))) / (2 * t), axis=-1)
    )
    profile = jax.jit(lambda z: jaxsym.defect_profile(f, z, window))
    calls = {
        "forward pass": lambda: forward(x),
        "lie_derivative (one jvp)": lambda: lie(x),
        "central difference (2 rotations + 2 passes)": lambda: central(x),
        "defect_profile over {0, ±t}": lambda: profile(x),
    }
    times = measure_many(calls, cfg["repeats"])
    base = times["forward pass"]["median_ms"]
    rows = [{"method": k, **v, "forward_passes": v["median_ms"] / base} for k, v in times.items()]
    lie_values, fd_values = np.asarray(lie(x)), np.asarray(central(x))
    relative = float(np.max(np.abs(lie_values - fd_values) / fd_values))
    slope = float(np.asarray(profile(x))[1]) / t  # E_f(t)/t → max_b ‖L f(x_b)‖
    return {
        "rows": rows,
        "t": t,
        "max_relative_gap_lie_vs_central": relative,
        "profile_slope_over_max_lie": slope / float(lie_values.max()),
    }


def averaging_cost(cfg) -> dict:
    x = blobs(jax.random.key(2), 64, 32)
    p = cnn_params(jax.random.key(3))
    f = lambda z: cnn(p, z)  # noqa: E731
    so2_16 = groups.image_rotations(16)
    forward = jax.jit(f)
    averaged = jax.jit(jaxsym.symmetrize(f, so2_16))
    c4 = jax.jit(jaxsym.symmetrize(f, groups.rot90()))
    times = measure_many(
        {
            "forward pass": lambda: forward(x),
            "symmetrize over image_rotations(16)": lambda: averaged(x),
            "symmetrize over rot90 (C4)": lambda: c4(x),
        },
        cfg["repeats"],
    )
    base = times["forward pass"]["median_ms"]
    rows = [{"method": k, **v, "forward_passes": v["median_ms"] / base} for k, v in times.items()]
    between = groups.image_rotations(32)  # odd elements lie between the 16 grid angles
    scale = float(jnp.max(jnp.linalg.norm(averaged(x), axis=-1)))
    relative = np.asarray(jaxsym.defect_profile(averaged, x, between)) / scale
    plain_scale = float(jnp.max(jnp.linalg.norm(forward(x), axis=-1)))
    plain = np.asarray(jaxsym.defect_profile(forward, x, between)) / plain_scale
    floor = np.asarray(groups.interpolation_floor(x, between))
    return {
        "rows": rows,
        "relative_defect_at_11.25deg": {
            "plain": float(plain[1]),
            "averaged_16": float(relative[1]),
            "floor": float(floor[1]),
        },
        "relative_defect_at_22.5deg": {
            "plain": float(plain[2]),
            "averaged_16": float(relative[2]),
            "floor": float(floor[2]),
        },
    }


def rotated_digits_study(cfg) -> dict:
    data = jaxsym.datasets.rotated_digits(seed=0)
    order = np.random.default_rng(0).permutation(len(data.y))
    test, train = order[: len(order) // 4], order[len(order) // 4 :]
    x_train, y_train = jnp.asarray(data.x[train]), jnp.asarray(data.y[train])
    x_test, y_test = jnp.asarray(data.x[test]), np.asarray(data.y[test])
    c4 = groups.rot90()
    optimizer = optax.adam(3e-3)

    def model(kind, p):
        plain = lambda z: cnn_flat(p, z)  # noqa: E731
        return plain if kind == "plain" else jaxsym.symmetrize(plain, c4)

    def train_one(kind, seed):
        params = cnn_params(jax.random.key(100 + seed), head_inputs=8 * 8 * 32)
        state = optimizer.init(params)

        @jax.jit
        def step(params, state, key):
            batch = jax.random.choice(key, x_train.shape[0], (128,), replace=False)

            def loss(q):
                logits = model(kind, q)(x_train[batch])
                return optax.softmax_cross_entropy_with_integer_labels(
                    logits, y_train[batch]
                ).mean()

            grads = jax.grad(loss)(params)
            updates, state = optimizer.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        key = jax.random.key(seed)
        start = time.perf_counter()
        for _ in range(cfg["digits_steps"]):
            key, sub = jax.random.split(key)
            params, state = step(params, state, sub)
        block(params)
        seconds = time.perf_counter() - start
        logits = np.asarray(jax.jit(model(kind, params))(x_test))
        predicted = logits.argmax(1)
        six_nine = np.isin(y_test, (6, 9))
        return {
            "accuracy": float(np.mean(predicted == y_test)),
            "accuracy_6_9": float(np.mean(predicted[six_nine] == y_test[six_nine])),
            "train_seconds": seconds,
        }

    out = {}
    for kind in ("plain", "C4-symmetrized"):
        runs = [train_one(kind, seed) for seed in range(cfg["digits_seeds"])]
        out[kind] = {key: _stats([r[key] for r in runs]) for key in runs[0]}
    out["n_train"], out["n_test"] = len(train), len(test)
    return out


# ----------------------------------------------------------------------------- report


def _cost_table(rows) -> list[str]:
    lines = ["| method | median ms | min ms | forward passes |", "|---|---:|---:|---:|"]
    for r in rows:
        ms = f"{r['median_ms']:.3g} | {r['min_ms']:.3g}"
        lines.append(f"| {r['method']} | {ms} | {r['forward_passes']:.2f} |")
    return lines


def report(results) -> str:
    lie, avg, dig = results["lie"], results["averaging"], results["digits"]
    lines = [json.dumps(results["machine"]), ""]
    lines += ["Lie derivative against the finite-difference defect (CNN, 32×32, B = 64)", ""]
    lines += _cost_table(lie["rows"])
    lines += [
        "",
        f"max relative gap, lie_derivative vs central difference (t = {lie['t']:g}): "
        f"{lie['max_relative_gap_lie_vs_central']:.2e}; defect_profile(t)/t over max ‖L f‖: "
        f"{lie['profile_slope_over_max_lie']:.4f}",
        "",
        "Averaging a CNN over 16 continuous rotations (32×32, B = 64)",
        "",
    ]
    lines += _cost_table(avg["rows"])
    lines += ["", "| relative defect | plain | averaged over 16 | interpolation floor |"]
    lines += ["|---|---:|---:|---:|"]
    for angle in ("11.25", "22.5"):
        d = avg[f"relative_defect_at_{angle}deg"]
        lines.append(
            f"| at {angle}° | {d['plain']:.2e} | {d['averaged_16']:.2e} | {d['floor']:.2e} |"
        )
    seeds = len(dig["plain"]["accuracy"]["values"])
    lines += [
        "",
        f"Rotated digits: CNN plain vs symmetrized over C4 ({seeds} seeds, "
        f"{results['settings']['digits_steps']} adam steps, n_train = {dig['n_train']}, "
        f"n_test = {dig['n_test']})",
        "",
        "| model | test accuracy | accuracy on 6 and 9 | training s |",
        "|---|---:|---:|---:|",
    ]
    for kind in ("plain", "C4-symmetrized"):
        d = dig[kind]
        lines.append(
            f"| {kind} | {d['accuracy']['mean']:.3f} ± {d['accuracy']['sd']:.3f} | "
            f"{d['accuracy_6_9']['mean']:.3f} ± {d['accuracy_6_9']['sd']:.3f} | "
            f"{d['train_seconds']['mean']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small settings")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "images.json"))
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    results = {"machine": machine_info(), "settings": cfg}
    results["lie"] = lie_cost(cfg)
    results["averaging"] = averaging_cost(cfg)
    results["digits"] = rotated_digits_study(cfg)
    text = report(results)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    out.with_suffix(".txt").write_text(text)


if __name__ == "__main__":
    main()
