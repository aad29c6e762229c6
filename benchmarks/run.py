"""Benchmarks for jaxsym's hot path: group averaging, defects, memory, devices.

Usage::

    python benchmarks/run.py [--quick] [--out results.json]

Prints markdown tables (each averaging row is also logged to stderr as it
finishes, so that standard output holds each table once) and writes JSON: the
machine, the device kind, the jax version, every timing as min/median/max over
repeats (after warm-up and compilation, which is timed separately), and the
checks that every strategy computes the same numbers.

Averaging cases compare ``jax.jit(jaxsym.symmetrize(f, G))`` (default
settings) with references measured in the same run:

- (a) a Python loop over elements calling a jitted ``f∘ρ_X(g)`` (+ accumulate);
- (b) one jitted forward pass on all ``|G|·B`` transformed inputs, stacked;
- (c) ``|G|`` × the time of one jitted forward pass on ``B`` inputs (a floor
  for per-element strategies, not a strategy itself);
- (d) ``lax.map`` over elements, (d4) ``lax.map`` over 4 chunks of elements,
  each chunk folded into the batch axis;
- (e) PyTorch, only if importable (it is not a dependency).

The ratio column is jaxsym / best of (a), (b), (d), (d4).

Device-agnostic: runs on whatever ``jax.devices()`` gives and records it.
Memory and multi-device cases run in subprocesses (peak RSS must be per
process; the simulated device count must be set before jax initializes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jaxsym  # noqa: E402
from jaxsym import groups  # noqa: E402
from jaxsym._src.orbits import plan_chunks  # noqa: E402

# ----------------------------------------------------------------------------- timing


def block(tree):
    """Wait for every array in ``tree`` (host NumPy results pass through)."""
    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return tree


def measure(call: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Seconds per call: min / median / max over ``repeats`` after ``warmup`` calls."""
    for _ in range(warmup):
        block(call())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(call())
        times.append(time.perf_counter() - start)
    return {
        "min_ms": 1e3 * min(times),
        "median_ms": 1e3 * statistics.median(times),
        "max_ms": 1e3 * max(times),
        "repeats": repeats,
    }


def measure_many(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict]:
    """:func:`measure` for several calls, interleaved round-robin.

    On a shared machine the load drifts; interleaving makes the ratios between
    strategies of one case comparable even when absolute times are not.
    """
    for call in calls.values():
        block(call())
    times: dict[str, list[float]] = {key: [] for key in calls}
    for _ in range(repeats):
        for key, call in calls.items():
            start = time.perf_counter()
            block(call())
            times[key].append(time.perf_counter() - start)
    return {
        key: {
            "min_ms": 1e3 * min(t),
            "median_ms": 1e3 * statistics.median(t),
            "max_ms": 1e3 * max(t),
            "repeats": repeats,
        }
        for key, t in times.items()
    }


def compiled(fn: Callable, *args):
    """``(compiled_fn, compile_seconds)`` for ``jax.jit(fn)`` on these arguments."""
    start = time.perf_counter()
    exe = jax.jit(fn).lower(*args).compile()
    return exe, time.perf_counter() - start


def machine_info() -> dict:
    device = jax.devices()[0]
    return {
        "platform": device.platform,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# ----------------------------------------------------------------------------- models


def cnn_params(key):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (3, 3, 1, 16)) / 3.0,
        "w2": jax.random.normal(k2, (3, 3, 16, 32)) / 12.0,
        "w3": jax.random.normal(k3, (32, 10)) / np.sqrt(32),
    }


def cnn(p, x):
    """2 conv layers (16/32 channels, 3×3, ReLU), mean pool, dense: (B, H, H, 1) -> (B, 10)."""
    dn = ("NHWC", "HWIO", "NHWC")
    h = jax.lax.conv_general_dilated(x, p["w1"], (1, 1), "SAME", dimension_numbers=dn)
    h = jax.lax.conv_general_dilated(jax.nn.relu(h), p["w2"], (1, 1), "SAME", dimension_numbers=dn)
    return jax.nn.relu(h).mean(axis=(1, 2)) @ p["w3"]


def mlp_params(key, in_dim: int, out_dim: int = 8, hidden: int = 256):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w1": jax.random.normal(k1, (in_dim, hidden)) / np.sqrt(in_dim),
        "w2": jax.random.normal(k2, (hidden, hidden)) / np.sqrt(hidden),
        "w3": jax.random.normal(k3, (hidden, out_dim)) / np.sqrt(hidden),
    }


def mlp(p, x):
    """MLP on flattened examples: in -> 256 -> 256 -> 8 (tanh)."""
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ p["w1"])
    return jnp.tanh(h @ p["w2"]) @ p["w3"]


# ----------------------------------------------------------------------------- references


def act_batch(G, element, x):
    return jax.vmap(G.act_in, in_axes=(None, 0))(element, x)


def stacked_average(f, G):
    def run(x):
        moved = groups.transform_batch(G, G.elements, x)
        y = f(moved.reshape((-1,) + x.shape[1:]))
        return y.reshape((G.size, x.shape[0]) + y.shape[1:]).mean(axis=0)

    return run


def map_average(f, G, num_chunks: int | None):
    """lax.map over elements (num_chunks=None) or over chunks folded into the batch."""

    def run(x):
        if num_chunks is None:
            ys = jax.lax.map(lambda e: f(act_batch(G, e, x)), G.elements)
            return ys.mean(axis=0)
        chunks = G.elements.reshape((num_chunks, -1) + G.elements.shape[1:])

        def one(elements):
            moved = groups.transform_batch(G, elements, x)
            y = f(moved.reshape((-1,) + x.shape[1:]))
            return y.reshape((elements.shape[0], x.shape[0]) + y.shape[1:]).sum(axis=0)

        return jax.lax.map(one, chunks).sum(axis=0) / G.size

    return run


def loop_average(f, G, x):
    """A Python loop over elements, each a call of a jitted ``acc + f(ρ_X(g) x)``."""
    step = jax.jit(lambda acc, e, x: acc + f(act_batch(G, e, x)))
    elements = [G.element(i) for i in range(G.size)]
    zero = jnp.zeros_like(f(x))
    scale = 1.0 / G.size

    def run():
        acc = zero
        for element in elements:
            acc = step(acc, element, x)
        return acc * scale

    return run


def torch_cnn_reference(x_np, repeats):
    """(e) PyTorch D4 CNN, stacked, if torch is importable; else None."""
    try:
        import torch  # type: ignore
    except ImportError:
        return None
    torch.set_num_threads(os.cpu_count() or 1)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(32, 10),
    )
    xt = torch.from_numpy(np.moveaxis(x_np, -1, 1).copy())

    def run():
        with torch.inference_mode():
            views = [torch.rot90(xt, k, (2, 3)) for k in range(4)]
            views += [torch.rot90(xt.flip(3), k, (2, 3)) for k in range(4)]
            return net(torch.cat(views)).reshape(8, xt.shape[0], 10).mean(0)

    return measure(lambda: (run(), None)[1], repeats)  # torch on CPU is synchronous


# ----------------------------------------------------------------------------- cases


def averaging_case(name, f, G, x, repeats, *, loop=True) -> dict:
    """Time jaxsym.symmetrize beside the reference strategies, check they agree."""
    row = {"case": name, "group": G.name, "G": G.size, "B": int(x.shape[0])}
    chunk = plan_chunks(None, f, G, x).size
    row["jaxsym_chunk"] = chunk
    exe, row["compile_s_jaxsym"] = compiled(jaxsym.symmetrize(f, G), x)
    calls = {"jaxsym": lambda: exe(x)}
    expected = np.asarray(exe(x))
    diffs = {}

    refs = {
        "b_stacked": stacked_average(f, G),
        "d_map_elements": map_average(f, G, None),
    }
    if G.size % 4 == 0 and G.size >= 8:
        refs["d4_map_4chunks"] = map_average(f, G, 4)
    for key, fn in refs.items():
        ref_exe, row[f"compile_s_{key}"] = compiled(fn, x)
        calls[key] = lambda ref_exe=ref_exe: ref_exe(x)
        diffs[key] = float(np.max(np.abs(np.asarray(ref_exe(x)) - expected)))
    if loop:
        run = loop_average(f, G, x)
        calls["a_loop"] = run
        diffs["a_loop"] = float(np.max(np.abs(np.asarray(run()) - expected)))
    single, _ = compiled(f, x)
    calls["single_forward"] = lambda: single(x)
    row.update(measure_many(calls, repeats))
    one = row.pop("single_forward")
    row["c_G_times_forward"] = {k: v * G.size if k != "repeats" else v for k, v in one.items()}
    row["max_abs_diff_vs_jaxsym"] = diffs
    best_key = min(
        (k for k in ("a_loop", "b_stacked", "d_map_elements", "d4_map_4chunks") if k in row),
        key=lambda k: row[k]["median_ms"],
    )
    row["best_reference"] = best_key
    row["ratio_jaxsym_vs_best"] = row["jaxsym"]["median_ms"] / row[best_key]["median_ms"]
    return row


def defect_case(name, net, params, G, x, repeats) -> dict:
    """Forward and gradient of equivariance_error / defect_profile (one training step)."""
    row = {"case": name, "group": G.name, "G": G.size, "B": int(x.shape[0])}

    def ee(p, reduce):
        return jaxsym.equivariance_error(lambda z: net(p, z), x, G, reduce)

    def prof(p):
        return jnp.sum(jaxsym.defect_profile(lambda z: net(p, z), x, G, "max"))

    def stacked_profile(p):  # reference: everything in one stacked call
        fx = net(p, x)
        moved = groups.transform_batch(G, G.elements, x)
        y = net(p, moved.reshape((-1,) + x.shape[1:])).reshape((G.size,) + fx.shape)
        return jnp.sum(jnp.max(jnp.sqrt(jnp.sum((y - fx) ** 2, -1) + 1e-30), axis=1))

    cases = {
        "ee_sup": lambda p: ee(p, "max"),
        "ee_rms": lambda p: ee(p, "rms"),
        "profile_max": prof,
        "stacked_profile_reference": stacked_profile,
    }
    calls = {}
    for key, fn in cases.items():
        fwd, row[f"compile_s_{key}"] = compiled(fn, params)
        grad, row[f"compile_s_{key}_grad"] = compiled(jax.value_and_grad(fn), params)
        calls[key] = lambda fwd=fwd: fwd(params)
        calls[f"{key}_grad"] = lambda grad=grad: grad(params)
        if key == "ee_sup":
            row["grad_temp_mb"] = grad.memory_analysis().temp_size_in_bytes / 2**20
    row.update(measure_many(calls, repeats))
    for key in cases:
        row[f"{key}_grad_ratio"] = row[f"{key}_grad"]["median_ms"] / row[key]["median_ms"]
    row["profile_vs_stacked"] = (
        row["profile_max"]["median_ms"] / row["stacked_profile_reference"]["median_ms"]
    )
    return row


def gemm_rate(repeats: int) -> float:
    """Measured float32 GEMM rate in flop/s (2048 × 64 by 64 × 2048)."""
    a = jax.random.normal(jax.random.key(0), (2048, 64))
    exe, _ = compiled(lambda a: a @ a.T, a)
    t = measure(lambda: exe(a), repeats)["median_ms"] / 1e3
    return 2 * 2048 * 2048 * 64 / t


def covering_case(n: int, repeats: int) -> dict | None:
    try:
        from jaxsym.covering import covering_numbers
    except Exception:
        return None
    d, size, num_radii = 64, 8, 30
    x = jax.random.normal(jax.random.key(3), (n, 8, 8))
    S = groups.cyclic_shifts(8).subset(np.arange(size), name="shifts8")
    radii = jnp.linspace(2.0, 14.0, num_radii)
    row = {"case": "covering_numbers", "n": n, "d": d, "S": size, "radii": num_radii}
    try:
        start = time.perf_counter()
        block(covering_numbers(x, S, radii))
        row["first_call_s"] = time.perf_counter() - start
        row["time"] = measure(lambda: covering_numbers(x, S, radii), repeats, warmup=0)
    except Exception as err:  # another helper's module: report, do not fail
        row["error"] = repr(err)
        return row
    rate = gemm_rate(repeats)
    row["gemm_flops_per_s"] = rate
    row["matmul_bound_ms"] = 1e3 * 2 * n * n * d * size / rate
    row["ratio_vs_matmul_bound"] = row["time"]["median_ms"] / row["matmul_bound_ms"]
    return row


# ----------------------------------------------------------------------------- subprocesses


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss survives exec on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(n: int, batch: int, chunk: int | None, repeats: int, run: bool) -> dict:
    """One process: symmetrize an MLP over C_n on (batch, 16, 2); peak RSS and time."""
    params = mlp_params(jax.random.key(0), 32)
    x = jax.random.normal(jax.random.key(1), (batch, 16, 2))
    G = groups.cyclic_rotations(n)
    f = lambda z: mlp(params, z)  # noqa: E731
    block(f(x))
    base = peak_rss_mb()
    exe, compile_s = compiled(jaxsym.symmetrize(f, G, chunk_size=chunk), x)
    memory = exe.memory_analysis()
    out = {
        "n": n,
        "B": batch,
        "chunk_size": chunk if chunk is not None else plan_chunks(None, f, G, x).size,
        "compile_s": compile_s,
        "temp_mb": memory.temp_size_in_bytes / 2**20 if memory is not None else None,
        "baseline_rss_mb": base,
    }
    if run:
        out["time"] = measure(lambda: exe(x), repeats)
        out["peak_rss_mb"] = peak_rss_mb()
    return out


def devices_child(count: int, repeats: int) -> dict:
    """One process with ``count`` devices: batch-sharded symmetrize / defect_profile."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    mesh = Mesh(np.array(jax.devices()[:count]), ("batch",))
    shard = NamedSharding(mesh, PartitionSpec("batch"))
    out = {"devices": jax.device_count(), "platform": jax.devices()[0].platform}
    cases = {
        "mlp_C64_B1024": (
            (lambda p: lambda z: mlp(p, z))(mlp_params(jax.random.key(0), 32)),
            groups.cyclic_rotations(64),
            jax.random.normal(jax.random.key(1), (1024, 16, 2)),
        ),
        "cnn_D4_B128": (
            (lambda p: lambda z: cnn(p, z))(cnn_params(jax.random.key(2))),
            groups.flip_rot90(),
            jax.random.normal(jax.random.key(3), (128, 28, 28, 1)),
        ),
    }
    for name, (f, G, x) in cases.items():
        xs = jax.device_put(x, shard)
        sym = jax.jit(jaxsym.symmetrize(f, G))
        prof = jax.jit(lambda z, f=f, G=G: jaxsym.defect_profile(f, z, G))
        out[name] = {
            "symmetrize": measure(lambda sym=sym, xs=xs: sym(xs), repeats),
            "defect_profile": measure(lambda prof=prof, xs=xs: prof(xs), repeats),
            "output_sharded": str(sym(xs).sharding.spec),
        }
    return out


def run_child(args: list[str], env: dict | None = None, timeout: int = 600) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    done = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout
    )
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory_cases(quick: bool, repeats: int) -> list[dict]:
    batch = 256 if quick else 1024
    plan = [(64, None, True), (4096, None, True), (4096, 4096, False)]
    if not quick:
        plan += [(1024, None, True), (1024, 1024, True)]
    repeats = 1 if quick else 3
    rows = []
    for n, chunk, run in plan:
        args = ["--child-memory", str(n), str(batch), str(chunk or 0), str(repeats), str(int(run))]
        rows.append(run_child(args))
    return rows


def device_cases(quick: bool, repeats: int) -> list[dict]:
    rows = []
    for count in (1, 2, 4):
        flags = f"--xla_force_host_platform_device_count={count}"
        env = {"XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
        rows.append(run_child(["--child-devices", str(count), str(repeats)], env=env))
        rows[-1]["simulated_devices"] = count
    return rows


# ----------------------------------------------------------------------------- tables


def ms(cell) -> str:
    if not isinstance(cell, dict):
        return "—"
    value = cell["median_ms"]
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def averaging_table(rows: list[dict]) -> str:
    head = (
        "| case | \\|G\\| | B | jaxsym (chunk) | (a) loop | (b) stacked | (c) \\|G\\|×f | "
        "(d) map/elem | (d4) map/4 chunks | jaxsym / best(a,b,d,d4) | compile jaxsym s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['case']} | {r['G']} | {r['B']} | {ms(r['jaxsym'])} ({r['jaxsym_chunk']}) | "
        f"{ms(r.get('a_loop'))} | {ms(r.get('b_stacked'))} | {ms(r.get('c_G_times_forward'))} | "
        f"{ms(r.get('d_map_elements'))} | {ms(r.get('d4_map_4chunks'))} | "
        f"**{r['ratio_jaxsym_vs_best']:.2f}** | {r['compile_s_jaxsym']:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def defect_table(rows: list[dict]) -> str:
    head = (
        "| case | \\|G\\| | B | ee sup fwd | ee sup grad | grad/fwd | ee rms grad/fwd | "
        "profile fwd | profile grad/fwd | profile / stacked ref | stacked ref grad/fwd |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['case']} | {r['G']} | {r['B']} | {ms(r['ee_sup'])} | {ms(r['ee_sup_grad'])} | "
        f"**{r['ee_sup_grad_ratio']:.2f}** | {r['ee_rms_grad_ratio']:.2f} | "
        f"{ms(r['profile_max'])} | {r['profile_max_grad_ratio']:.2f} | "
        f"{r['profile_vs_stacked']:.2f} | {r['stacked_profile_reference_grad_ratio']:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def memory_table(rows: list[dict]) -> str:
    head = (
        "| C_n | B | chunk_size | XLA temp MB | peak RSS MB | peak RSS before compile MB | "
        "time ms |\n|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| error | | | | | | {r['error'][-120:]!r} |")
            continue
        lines.append(
            f"| {r['n']} | {r['B']} | {r['chunk_size']} | {r['temp_mb']:.1f} | "
            f"{r.get('peak_rss_mb', float('nan')):.0f} | {r['baseline_rss_mb']:.0f} | "
            f"{ms(r.get('time'))} |"
        )
    return head + "\n".join(lines) + "\n"


def device_table(rows: list[dict]) -> str:
    head = (
        "| simulated devices | MLP C64 B=1024 symmetrize | defect_profile | "
        "CNN D4 B=128 symmetrize | defect_profile | output sharding |\n"
        "|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['simulated_devices']} | error | | | | |")
            continue
        a, b = r["mlp_C64_B1024"], r["cnn_D4_B128"]
        lines.append(
            f"| {r['simulated_devices']} | {ms(a['symmetrize'])} | {ms(a['defect_profile'])} | "
            f"{ms(b['symmetrize'])} | {ms(b['defect_profile'])} | {a['output_sharded']} |"
        )
    return head + "\n".join(lines) + "\n"


def covering_table(rows: list[dict]) -> str:
    head = (
        "| n | d | \\|S\\| | radii | time ms | matmul bound ms | ratio | first call s |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']} | {r['d']} | {r['S']} | {r['radii']} | error | | | |")
            continue
        lines.append(
            f"| {r['n']} | {r['d']} | {r['S']} | {r['radii']} | {ms(r['time'])} | "
            f"{r['matmul_bound_ms']:.3g} | {r['ratio_vs_matmul_bound']:.2f} | "
            f"{r['first_call_s']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats (~2 min)")
    parser.add_argument("--out", default=None, help="write JSON results here")
    parser.add_argument("--child-memory", nargs=5, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--child-devices", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child_memory:
        n, batch, chunk, repeats, run = args.child_memory
        print(json.dumps(memory_child(n, batch, chunk or None, repeats, bool(run))))
        return
    if args.child_devices:
        count, repeats = args.child_devices
        print(json.dumps(devices_child(count, repeats)))
        return

    quick = args.quick
    repeats = 5 if quick else 15
    key = jax.random.key(0)
    results = {"machine": machine_info(), "quick": quick}
    print(f"# jaxsym benchmarks ({'quick' if quick else 'full'})\n")
    print(json.dumps(results["machine"]), "\n", flush=True)

    started = time.perf_counter()
    rows = []
    cnn_p = cnn_params(key)
    cnn_f = lambda z: cnn(cnn_p, z)  # noqa: E731
    for batch in (64,) if quick else (64, 256):
        x = jax.random.normal(jax.random.key(batch), (batch, 28, 28, 1))
        rows.append(averaging_case("CNN, D4", cnn_f, groups.flip_rot90(), x, repeats))
        if batch == 64:
            results["torch_cnn_d4_b64"] = torch_cnn_reference(np.asarray(x), repeats)
        print(averaging_table(rows[-1:]), file=sys.stderr, flush=True)  # progress
    mlp_p = mlp_params(key, 32)
    mlp_f = lambda z: mlp(mlp_p, z)  # noqa: E731
    x = jax.random.normal(jax.random.key(1), (256, 16, 2))
    for n in (4, 16, 64) if quick else (4, 16, 64, 256):
        rows.append(averaging_case("MLP, C_n", mlp_f, groups.cyclic_rotations(n), x, repeats))
        print(averaging_table(rows[-1:]), file=sys.stderr, flush=True)  # progress
    if not quick:
        rows.append(averaging_case("MLP, C1024", mlp_f, groups.cyclic_rotations(1024), x, repeats))
        print(averaging_table(rows[-1:]), file=sys.stderr, flush=True)  # progress
    set_p = mlp_params(key, 15)
    set_f = lambda z: mlp(set_p, z)  # noqa: E731
    xs = jax.random.normal(jax.random.key(2), (128, 5, 3))
    rows.append(averaging_case("MLP, S5", set_f, groups.permutations(5), xs, repeats))
    print(averaging_table(rows[-1:]), file=sys.stderr, flush=True)  # progress
    results["averaging"] = rows

    defects = [defect_case("MLP, C64", mlp, mlp_p, groups.cyclic_rotations(64), x, repeats)]
    if not quick:
        xi = jax.random.normal(jax.random.key(4), (64, 28, 28, 1))
        defects.append(defect_case("CNN, D4", cnn, cnn_p, groups.flip_rot90(), xi, repeats))
        defects.append(defect_case("MLP, S5", mlp, set_p, groups.permutations(5), xs, repeats))
    results["defects"] = defects

    covering = []
    for n in (2000,) if quick else (2000, 20000):
        row = covering_case(n, 3 if n > 5000 else repeats)
        if row is not None:
            covering.append(row)
    results["covering"] = covering

    results["memory"] = memory_cases(quick, repeats)
    results["devices"] = device_cases(quick, 3 if quick else 10)
    results["total_s"] = time.perf_counter() - started

    print("## Group averaging (ms per call, medians)\n")
    print(averaging_table(rows))
    if results.get("torch_cnn_d4_b64"):
        print(f"(e) PyTorch D4 CNN B=64: {ms(results['torch_cnn_d4_b64'])} ms\n")
    print("## Defects with gradients (ms per call, medians)\n")
    print(defect_table(defects))
    print("## Memory: symmetrize, MLP, C_n on (B, 16, 2), one process per row\n")
    print(memory_table(results["memory"]))
    print("## Simulated CPU devices, batch sharded (ms per call, medians)\n")
    print(device_table(results["devices"]))
    if covering:
        print("## covering_numbers (30 radii)\n")
        print(covering_table(covering))
    else:
        print("covering_numbers: jaxsym.covering not available, case skipped.\n")
    print(f"total {results['total_s']:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
