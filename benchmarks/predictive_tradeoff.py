"""The screen's level against the measured best level on the synthetic C8 task (theory.md §8b).

Task: ``x ~ N(0, I₂)``, ``y = cos‖x‖ + η (x₁ + x₁x₂)/√2 + 0.3 ε`` with
``G = C_8`` (so ``d_2(f*) = η``; :func:`jaxsym.tasks.planar_task`). Model:
random-features ridge (400 features, ridge 1e-4, lengthscale 0.5;
:func:`jaxsym.random_features_ridge`), **trained** at each option: on the
features averaged over ``C_8`` and dialed to ``t``.

For each (η, n) and each training draw:

* the **screen**: :func:`jaxsym.choose_symmetry` on the training data alone,
  candidates ``[C8]`` (so the options are ``C8`` at the default levels
  0, 0.25, 0.5, 0.75 and none), its level ``t*`` (1 for none);
* the **measured best level**: the model trained at each level
  ``t = 0, 0.1, …, 1`` on the same training data, scored by its excess risk
  ``mean (f_t − f*)²`` on fresh inputs; the level with the least excess risk.

Reported: the mean ``t*`` and measured best level, the excess risks at ``t*``,
at the best level and at both ends, and the regret ``excess(t*) / excess(best)``.

Usage::

    python benchmarks/predictive_tradeoff.py [--seeds 3] [--out results.json]
    python benchmarks/predictive_tradeoff.py --quick   # 1 seed, n ≤ 800, 2000 test points
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxsym
from jaxsym import groups
from jaxsym.tasks import planar_target, planar_task

ETAS = (0.1, 0.3)
SIZES = (200, 800, 3200)
NOISE = 0.3
#: The levels at which the best model is measured.
LEVELS = tuple(np.round(np.linspace(0.0, 1.0, 11), 2))


def run(seeds: int, test_size: int, sizes=SIZES) -> list[dict]:
    group = groups.cyclic_rotations(8)
    members = tuple(range(group.size))
    fit = jaxsym.random_features_ridge(400, 1e-4, key=jax.random.key(7), lengthscale=0.5)
    x_test = jax.random.normal(jax.random.key(1234), (test_size, 2))
    rows = []
    for eta in ETAS:
        f_test = planar_target(x_test, eta)
        for n in sizes:
            draws = []
            for seed in range(seeds):
                task = planar_task(n, eta, key=jax.random.key(1000 * seed + n), noise=NOISE)

                def excess(t, task=task, f_test=f_test):
                    option = jaxsym.Symmetry(group, float(t), members, group.name)
                    model = fit(task.x, task.y, symmetry=option)
                    return float(jnp.mean((model(x_test) - f_test) ** 2))

                choice = jaxsym.choose_symmetry(
                    task.x, task.y, group, fit=fit, key=jax.random.key(seed),
                    candidates=[np.arange(group.size)],
                )  # fmt: skip
                measured = np.array([excess(t) for t in LEVELS])
                best = int(np.argmin(measured))
                at_pick = excess(choice.t_star)
                draws.append(
                    {
                        "t_star": float(choice.t_star),
                        "chosen": choice.name,
                        "t_best": float(LEVELS[best]),
                        "excess_t_star": at_pick,
                        "excess_best": float(measured[best]),
                        "excess_t0": float(measured[0]),
                        "excess_t1": float(measured[-1]),
                        "regret": at_pick / float(measured[best]),
                        "excess_by_level": measured.tolist(),
                    }
                )
            keys = [k for k in draws[0] if k not in ("chosen", "excess_by_level")]
            mean = {key: float(np.mean([d[key] for d in draws])) for key in keys}
            error = float(np.mean([abs(d["t_star"] - d["t_best"]) for d in draws]))
            rows.append({"eta": eta, "n": n, **mean, "abs_error": error, "draws": draws})
    return rows


def markdown(rows: list[dict], seeds: int, test_size: int) -> str:
    lines = [
        f"Means over {seeds} training draws; excess risk mean (f_t − f*)² on {test_size} "
        "fresh inputs, of the ridge model trained at each level.",
        "",
        "| η | n | screen t* | measured best t | mean \\|t* − best\\| | excess t* "
        "| excess best | excess t=0 | excess t=1 | regret t* |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['eta']:.1f} | {r['n']} | {r['t_star']:.2f} | {r['t_best']:.2f} "
            f"| {r['abs_error']:.2f} | {r['excess_t_star']:.4f} | {r['excess_best']:.4f} "
            f"| {r['excess_t0']:.4f} | {r['excess_t1']:.4f} | {r['regret']:.2f} |"
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
