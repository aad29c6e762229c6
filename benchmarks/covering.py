"""Orbit covering numbers past the n×n memory wall: streaming vs matrix path (docs/theory.md §4).

Cases (each in its own subprocess, so that its peak RSS is its own):

* ``n = 100 000``, ``d = 64`` (32 planar points per example), ``|S| = 8`` (C8),
  30 radii from :func:`jaxsym.covering.default_radii`: the streaming path
  (``O(n·|S|)`` memory). Beside it, in the same process, the **GEMM bound**:
  the time of one blocked pass of the same kernel over every (center, point)
  pair and every element, reduced on the fly (the least work any exact
  method needs; nothing stored).
* ``n = 20 000``, same shape: the matrix path and the streaming path, whose
  counts must be equal.

Peak RSS is the child's ``VmHWM``. Usage::

    python benchmarks/covering.py [--sizes 20000 100000] [--out benchmarks/results/covering.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np, jax, jax.numpy as jnp
from jaxsym import groups
from jaxsym._src import distances
from jaxsym.covering import covering_numbers, default_radii

n, method, gemm = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
x = np.random.default_rng(0).normal(size=(n, 32, 2)).astype(np.float32)
group = groups.cyclic_rotations(8)
radii = default_radii(x, 30)
row = {"n": n, "d": 64, "S": 8, "radii": 30, "method": method}
if gemm:
    flat = jnp.asarray(x.reshape(n, -1))
    moved = groups.transform_batch(group, group.elements, jnp.asarray(x)).reshape(8, n, 64)
    stacks = jnp.concatenate([flat[None], moved])
    scale = distances.conservative_scale(64, jnp.float32)
    block = 512

    @jax.jit
    def full_pass(stacks, flat):
        padded = jnp.pad(stacks, ((0, 0), (0, -stacks.shape[1] % block), (0, 0)))
        blocks = padded.reshape(stacks.shape[0], -1, block, 64).swapaxes(0, 1)
        rows = jax.lax.map(
            lambda centers: jnp.min(distances.min_squares(centers, flat[None], scale), 0),
            blocks,
        )
        return rows.min()

    full_pass(stacks[:, :1024], flat[:1024]).block_until_ready()  # compile a small one
    start = time.perf_counter()
    full_pass(stacks, flat).block_until_ready()
    row["gemm_bound_s"] = time.perf_counter() - start
start = time.perf_counter()
counts = covering_numbers(x, group, radii, method=method)
row["seconds"] = time.perf_counter() - start
row["counts"] = [int(c) for c in counts]
with open("/proc/self/status") as handle:
    for line in handle:
        if line.startswith("VmHWM"):
            row["peak_rss_mb"] = int(line.split()[1]) / 1024
print("ROW" + json.dumps(row))
"""


def run_case(n: int, method: str, gemm: bool) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), method, "1" if gemm else "0"],
        capture_output=True,
        text=True,
        env=env,
    )
    for line in result.stdout.splitlines():
        if line.startswith("ROW"):
            return json.loads(line[3:])
    raise RuntimeError(result.stderr[-4000:])


def markdown(rows: list[dict]) -> str:
    lines = [
        "| n | d | \\|S\\| | radii | path | time (s) | GEMM bound (s) | time / GEMM "
        "| peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gemm = row.get("gemm_bound_s")
        ratio = f"{row['seconds'] / gemm:.2f}" if gemm else "–"
        gemm_text = f"{gemm:.1f}" if gemm else "–"
        lines.append(
            f"| {row['n']} | {row['d']} | {row['S']} | {row['radii']} | {row['method']} "
            f"| {row['seconds']:.1f} | {gemm_text} | {ratio} | {row['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--out", default="benchmarks/results/covering.json")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        if n <= 20_000:
            rows.append(run_case(n, "matrix", gemm=False))
            rows.append(run_case(n, "streaming", gemm=True))
            same = rows[-1]["counts"] == rows[-2]["counts"]
            rows[-1]["counts_equal_matrix"] = same
        else:
            rows.append(run_case(n, "streaming", gemm=True))
        print(markdown(rows[-2:] if n <= 20_000 else rows[-1:]), flush=True)
    table = markdown(rows)
    print("\n" + table)
    meta = {"machine": platform.platform(), "cpus": os.cpu_count(), "time": time.ctime()}
    with open(args.out, "w") as handle:
        json.dump({"rows": rows, "meta": meta, "markdown": table}, handle, indent=2)


if __name__ == "__main__":
    main()
