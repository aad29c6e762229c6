"""Predicted vs measured best symmetry level on the synthetic C8 task (docs/theory.md §8).

Task: ``x ~ N(0, I₂)``, ``y = cos‖x‖ + η (x₁ + x₁x₂)/√2 + 0.3 ε`` with
``G = C_8`` (so ``d_2(f*) = η``). Model: random-features ridge (400 features,
ridge 1e-4, lengthscale 0.5). For each (η, n) and each training draw, the
predicted ``t*`` comes from :func:`jaxsym.predictive.predictive_tradeoff` on the
training data alone; the measured best t is the exact minimizer of the dial's
risk on 20 000 fresh samples (:func:`jaxsym.predictive.dial_risk`). The model
is :func:`jaxsym.models.random_features_ridge`, the task
:func:`jaxsym.tasks.planar_task`.

Usage::

    python benchmarks/predictive_tradeoff.py [--seeds 3] [--out results.json]
    python benchmarks/predictive_tradeoff.py --quick   # 1 seed, n ≤ 800, 2000 test points
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from jaxsym import groups
from jaxsym.models import random_features_ridge
from jaxsym.predictive import dial_risk, predictive_tradeoff
from jaxsym.tasks import planar_target, planar_task

ETAS = (0.1, 0.3)
SIZES = (200, 800, 3200)
NOISE = 0.3


def run(seeds: int, test_size: int, sizes=SIZES) -> list[dict]:
    group = groups.cyclic_rotations(8)
    fit = random_features_ridge(400, 1e-4, key=jax.random.key(7), lengthscale=0.5)
    x_test = jax.random.normal(jax.random.key(1234), (test_size, 2))
    noise = NOISE * jax.random.normal(jax.random.key(4321), (test_size, 1))
    rows = []
    for eta in ETAS:
        y_test = planar_target(x_test, eta) + noise
        for n in sizes:
            draws = []
            for seed in range(seeds):
                task = planar_task(n, eta, key=jax.random.key(1000 * seed + n), noise=NOISE)
                result = predictive_tradeoff(fit, task.x, task.y, group, key=jax.random.key(seed))
                t_star = float(result.t_star)
                fresh = dial_risk(fit(task.x, task.y), x_test, y_test, group, [0.0, t_star, 1.0])
                draws.append(
                    {
                        "t_star": t_star,
                        "t_star_cv": float(result.t_star_cv),
                        "t_best": float(fresh.t_best),
                        "eps_star": float(result.eps_star),
                        "eta_hat": float(result.eta),
                        "risk_t0": float(fresh.risk[0]),
                        "risk_t_star": float(fresh.risk[1]),
                        "risk_t1": float(fresh.risk[2]),
                    }
                )
            mean = {key: float(np.mean([d[key] for d in draws])) for key in draws[0]}
            error = float(np.mean([abs(d["t_star"] - d["t_best"]) for d in draws]))
            rows.append({"eta": eta, "n": n, **mean, "abs_error": error, "draws": draws})
    return rows


def markdown(rows: list[dict], seeds: int, test_size: int) -> str:
    lines = [
        f"Means over {seeds} training draws; risks on {test_size} fresh samples (σ² = 0.09).",
        "",
        "| η | n | predicted t* | measured best t | mean \\|t* − best\\| | η̂ | ε* "
        "| risk t=0 | risk t* | risk t=1 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['eta']:.1f} | {r['n']} | {r['t_star']:.2f} | {r['t_best']:.2f} "
            f"| {r['abs_error']:.2f} | {r['eta_hat']:.3f} | {r['eps_star']:.3f} "
            f"| {r['risk_t0']:.4f} | {r['risk_t_star']:.4f} | {r['risk_t1']:.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="training draws per (η, n)")
    parser.add_argument("--test-size", type=int, default=20000)
    parser.add_argument("--out", type=str, default=None, help="write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="1 seed, n ≤ 800: a smoke run")
    args = parser.parse_args()
    if args.seeds < 1 or args.test_size < 1:
        parser.error("--seeds and --test-size must be positive")
    sizes = SIZES
    if args.quick:
        args.seeds, args.test_size, sizes = 1, 2000, SIZES[:2]
    start = time.perf_counter()
    rows = run(args.seeds, args.test_size, sizes)
    elapsed = time.perf_counter() - start
    print(markdown(rows, args.seeds, args.test_size))
    print(f"\n({elapsed:.0f} s, {jax.devices()[0].platform})")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump({"rows": rows, "seconds": elapsed, "seeds": args.seeds}, handle, indent=2)


if __name__ == "__main__":
    main()
