"""``python -m jaxsym`` / the ``jaxsym`` console script.

* ``jaxsym`` or ``jaxsym audit [options]`` — audit a data set's symmetry
  (default: scikit-learn's 8×8 digits under D4); see :mod:`jaxsym.audit`.
* ``jaxsym demo [options]`` — a short demo on built-in synthetic data: the
  per-element equivariance defect of a random MLP on planar point sets under
  D8, of its group average ``Q_G f`` and of the dial ``f_{1/2}``, with their
  ε-stabilizer measures (docs/theory.md §2–3).
"""

from __future__ import annotations

import argparse
import sys

import jax
import jax.numpy as jnp

import jaxsym
from jaxsym import groups
from jaxsym._src.validation import check_nonnegative, parse_seed, positive_int

__all__ = ["main"]


def _positive_int(text: str) -> int:
    """argparse ``type=``: a positive integer, or an argparse error (exit code 2)."""
    try:
        return positive_int("value", int(text))
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None


def _nonnegative_float(text: str) -> float:
    """argparse ``type=``: a finite float ≥ 0, or an argparse error (exit code 2)."""
    try:
        value = float(text)
        check_nonnegative("value", value)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a finite number ≥ 0, got {text!r}") from None
    return value


_DEMO_DESCRIPTION = "A short demo on built-in synthetic data (random MLP under D_n)."


def _random_mlp(key: jax.Array, in_dim: int, hidden: int, out_dim: int):
    k1, k2 = jax.random.split(key)
    w1 = jax.random.normal(k1, (in_dim, hidden)) / jnp.sqrt(in_dim)
    w2 = jax.random.normal(k2, (hidden, out_dim)) / jnp.sqrt(hidden)
    return lambda x: jnp.tanh(x.reshape(x.shape[0], -1) @ w1) @ w2


def demo(argv: list[str] | None = None) -> None:
    """The synthetic demo (``jaxsym demo``)."""
    parser = argparse.ArgumentParser(prog="jaxsym demo", description=_DEMO_DESCRIPTION)
    parser.add_argument(
        "--order", type=_positive_int, default=8, help="n of the dihedral group D_n (≥ 1)"
    )
    parser.add_argument(
        "--batch", type=_positive_int, default=256, help="number of point sets (≥ 1)"
    )
    parser.add_argument(
        "--eps", type=_nonnegative_float, default=0.1, help="tolerance for Stab_ε (≥ 0)"
    )
    parser.add_argument("--seed", type=parse_seed, default=0, help="PRNG seed in [0, 2**32 - 1]")
    args = parser.parse_args(argv)

    key_model, key_data = jax.random.split(jax.random.key(args.seed))
    group = groups.dihedral(args.order)
    x = jax.random.normal(key_data, (args.batch, 8, 2))
    f = _random_mlp(key_model, 16, 64, 1)
    models = {
        "f": f,
        "Q_G f": jaxsym.symmetrize(f, group),
        "dial t=0.5": jaxsym.dial(f, group, 0.5),
    }
    profiles = {
        name: jax.jit(lambda x, m=m: jaxsym.defect_profile(m, x, group))(x)
        for name, m in models.items()
    }
    print(
        f"Equivariance defect E_f(g) = max_x ‖f(g·x) − f(x)‖ under {group.name}, "
        f"{args.batch} random point sets (8 points in R²)\n"
    )
    print(f"{'element':>11} | " + " | ".join(f"{name:>12}" for name in models))
    for index in range(group.size):
        row = " | ".join(f"{float(p[index]):12.4f}" for p in profiles.values())
        print(f"{index:11d} | {row}")
    print(
        f"\n{'sup error':>11} | " + " | ".join(f"{float(p.max()):12.4f}" for p in profiles.values())
    )
    print(
        f"{'λ(Stab_' + format(args.eps, 'g') + ')':>11} | "
        + " | ".join(
            f"{float(jaxsym.stabilizer_measure(p, args.eps)):12.3f}" for p in profiles.values()
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Dispatch ``audit`` (the default) or ``demo``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["demo"]:
        demo(argv[1:])
        return 0
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__.strip())
        return 0
    from jaxsym.audit.cli import main as audit

    if argv[:1] == ["audit"]:
        argv = argv[1:]
    return audit(argv, prog="jaxsym audit")


if __name__ == "__main__":
    sys.exit(main())
