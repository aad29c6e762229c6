"""The audit's stages on MNIST: wall and CPU seconds, shares and XLA compilations per stage.

Runs :func:`jaxsym.audit.pipeline.run_audit` the way ``python -m jaxsym audit
--data mnist --group SPEC`` does (the data from the audit's own loader
:func:`jaxsym.audit.inputs.load_dataset`, the group from
:func:`jaxsym.audit.inputs.parse_group`), each group in a fresh process (a cold
start, like the CLI: every compilation is counted where it happens), and
records for each stage of the report's ``timings``:

* wall seconds and process CPU seconds (``time.process_time``, all threads; on
  a shared machine the CPU seconds are the steadier number), and the stage's
  share of the audit's total (the sum over the stages);
* the number of XLA compilations and their backend-compile seconds, from the
  ``/jax/core/compile/backend_compile_duration`` events of ``jax.monitoring``.
  A compilation is attributed to the stage that is running when it happens:
  the first stage (in the audit's order) not yet in the report's ``timings``
  (read from the ``run_audit`` frame on the stack), so the little work between
  two stages counts toward the later one.

Prints a markdown table and writes JSON (``--out``). Import and data loading
are outside the stages and outside the total.

Usage::

    python benchmarks/audit.py [--quick] [--groups c4-image rot-image:13:90]
        [--out benchmarks/results/audit.json]
"""

from __future__ import annotations

import argparse
import inspect
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: The audit's stages, in the order ``run_audit`` times them.
STAGES = ("profile", "stabilizers", "screen", "training", "certify", "theory_bound")
#: The ``jax.monitoring`` event of one XLA compilation.
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
GROUPS = ("c4-image", "rot-image:13:90")
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "audit.json"


# ----------------------------------------------------------------------------- one audit


class CompileCounter:
    """Counts XLA compilations (and their seconds, and names) per audit stage."""

    def __init__(self, run_audit_code):
        self.code = run_audit_code
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.names: dict[str, list[str]] = {}

    def stage(self) -> str:
        """The stage running now: the first of :data:`STAGES` not yet timed by ``run_audit``."""
        frame = inspect.currentframe()
        while frame is not None and frame.f_code is not self.code:
            frame = frame.f_back
        if frame is None:
            return "outside"
        done = frame.f_locals.get("timings", {})
        return next((s for s in STAGES if s not in done), "after")

    def __call__(self, event: str, duration: float, **kwargs) -> None:
        if event != COMPILE_EVENT:
            return
        stage = self.stage()
        self.counts[stage] = self.counts.get(stage, 0) + 1
        self.seconds[stage] = self.seconds.get(stage, 0.0) + float(duration)
        self.names.setdefault(stage, []).append(str(kwargs.get("fun_name", "?")))


def audit_child(spec: str, quick: bool, seed: int) -> dict:
    """One audit in this process: per-stage timings and compilations."""
    import jax

    from jaxsym.audit import inputs, pipeline

    group = inputs.parse_group(spec, seed)
    start = time.perf_counter()
    data = inputs.load_dataset("mnist", group, seed=seed)
    load_s = time.perf_counter() - start
    counter = CompileCounter(pipeline.run_audit.__code__)
    jax.monitoring.register_event_duration_secs_listener(counter)
    wall, cpu = time.perf_counter(), time.process_time()
    results = pipeline.run_audit(data, group, seed=seed, quick=quick, quiet=True)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    timings = results["timings"]
    total_wall = sum(timings[s] for s in STAGES)
    total_cpu = sum(timings[s + "_cpu"] for s in STAGES)
    stages = {}
    for s in STAGES:
        names = counter.names.get(s, [])
        stages[s] = {
            "wall_s": timings[s],
            "cpu_s": timings[s + "_cpu"],
            "wall_share": timings[s] / total_wall,
            "cpu_share": timings[s + "_cpu"] / total_cpu,
            "compilations": counter.counts.get(s, 0),
            "compile_s": round(counter.seconds.get(s, 0.0), 3),
            "compiled": {n: names.count(n) for n in sorted(set(names))},
        }
    theory = results["bound"]
    return {
        "group": spec,
        "group_size": group.size,
        "quick": quick,
        "seed": seed,
        "num_train": results["data"]["num_train"],
        "num_certify": results["data"]["num_certify"],
        "load_s": round(load_s, 3),
        "run_audit_wall_s": round(wall, 3),
        "run_audit_cpu_s": round(cpu, 3),
        "total_wall_s": round(total_wall, 3),
        "total_cpu_s": round(total_cpu, 3),
        "stages": stages,
        "other_compilations": {
            k: v for k, v in counter.counts.items() if k not in STAGES
        },  # outside the stages (recommendation, …)
        "theory": {
            "candidates": [
                {"name": c["name"], "elements": [int(k) for k in c["elements"]]}
                for c in results["candidates"]
            ],
            "counts": [list(map(int, row)) for row in results["covering"]["counts"]],
            "total": [float(v) for v in theory["total"]],
            "lipschitz": float(theory["constants"]["lipschitz"]),
            "loss_range": float(theory["constants"]["loss_range"]),
            "vacuous": bool(theory["vacuous"]),
        },
    }


def run_child(spec: str, quick: bool, seed: int) -> dict:
    """:func:`audit_child` in a fresh Python process (a cold start, as the CLI)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", spec, "--seed", str(seed)]
    if quick:
        cmd.append("--quick")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the audit of {spec} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- tables


def table(rows: list[dict]) -> str:
    """One markdown table: a line per (group, stage) and the totals."""
    lines = [
        "| group | stage | wall s | CPU s | CPU share | wall share | compilations | compile s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        for s in STAGES:
            st = row["stages"][s]
            lines.append(
                f"| {row['group']} | {s} | {st['wall_s']:.2f} | {st['cpu_s']:.2f} | "
                f"{100 * st['cpu_share']:.1f}% | {100 * st['wall_share']:.1f}% | "
                f"{st['compilations']} | {st['compile_s']:.2f} |"
            )
        compiles = sum(row["stages"][s]["compilations"] for s in STAGES)
        lines.append(
            f"| {row['group']} | **total** | {row['total_wall_s']:.2f} | "
            f"{row['total_cpu_s']:.2f} | 100% | 100% | {compiles} | "
            f"{sum(row['stages'][s]['compile_s'] for s in STAGES):.2f} |"
        )
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the audit's --quick sizes")
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), metavar="SPEC")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON (default: %(default)s)")
    parser.add_argument("--child", metavar="SPEC", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(audit_child(args.child, args.quick, args.seed)))
        return {}

    from run import machine_info

    results = {"machine": machine_info(), "quick": args.quick, "data": "mnist", "audits": []}
    for spec in args.groups:
        row = run_child(spec, args.quick, args.seed)
        results["audits"].append(row)
        print(table([row]), file=sys.stderr, flush=True)  # progress
    text = (
        f"Audit stages on MNIST ({'--quick' if args.quick else 'default'} sizes, "
        f"{results['audits'][0]['num_train']} training images; "
        f"{results['machine']['cpu_count']} CPU cores, one process per group)\n\n"
        + table(results["audits"])
    )
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        out.with_suffix(".txt").write_text(text)
    return results


if __name__ == "__main__":
    main()
