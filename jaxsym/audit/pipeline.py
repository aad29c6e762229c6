"""The audit pipeline: the seven steps, in order, with progress bars.

:func:`run_audit` takes a validated :class:`~jaxsym.audit.inputs.Dataset` and a
group and returns a plain ``dict`` of results (NumPy arrays and floats) that
:mod:`jaxsym.audit.report` prints and serializes and :mod:`jaxsym.audit.plots`
draws. The numbers come from :mod:`jaxsym.audit.analysis` (one function per
jaxsym call); the choices made here are:

* **candidates**: nested subgroups ``{e} ⊂ H_2 ⊂ … ⊂ G`` generated in the order
  of the data's RMS profile (most symmetric elements first), or nested
  ε-stabilizers for a set that is not a group (docs/theory.md §5);
* **which set and how strictly** (docs/theory.md §8): for every candidate ``H`` the
  cross-fitted risk of the dial ``Q_H f̂ + t (f̂ − Q_H f̂)`` of a random-features
  ridge fit. The unconstrained model (``t = 1``) has the same risk on every
  candidate. A candidate whose predicted level is ``t* ≥ T_NONE`` is in effect
  unconstrained. Among the other candidates whose best risk is within
  ``RISK_TOLERANCE`` × the unconstrained risk of the best option (cross-fitting
  noise), the largest set wins
  (more symmetry, smaller quotient, docs/theory.md §4); if there is none, the
  recommendation is no symmetry. The level is ``t*`` (bias-corrected) and
  ``ε* = t* d_2(f̂)``; ``t* ≤ T_EXACT`` is reported as exact symmetry. For a
  set that is not a group the dial uses the partial average ``Q_ν`` and the
  cross-fitted minimizer (see :func:`jaxsym.audit.analysis.predicted_level`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxsym.audit import analysis, sweep
from jaxsym.audit.inputs import Dataset
from jaxsym.groups import TransformationSet

__all__ = ["RISK_TOLERANCE", "T_EXACT", "T_NONE", "AuditSettings", "run_audit", "settings"]

RISK_TOLERANCE = 0.03  # slack (fraction of the unconstrained risk) within which a larger set wins
T_NONE = 0.9  # t* at or above this: the candidate is in effect unconstrained
T_EXACT = 0.05  # t* at or below this: exact symmetry
TOLERANCE_FRACTIONS = (0.05, 0.1, 0.25, 0.5)  # ε-stabilizer tolerances / label spread


class AuditSettings(NamedTuple):
    """Sizes of the run (``--quick`` shrinks them)."""

    max_train: int
    max_test: int
    num_features: int
    ridge: float
    hidden: int
    steps: int


def settings(quick: bool) -> AuditSettings:
    """The default or the ``--quick`` sizes."""
    if quick:
        return AuditSettings(
            max_train=400, max_test=400, num_features=256, ridge=1e-3, hidden=32, steps=75
        )
    return AuditSettings(
        max_train=4000, max_test=2000, num_features=1024, ridge=1e-3, hidden=64, steps=400
    )


class _Progress:
    """tqdm bars on stderr, silent when stderr is not a terminal or with ``quiet``."""

    def __init__(self, quiet: bool):
        self.enabled = not quiet and sys.stderr.isatty()

    def bar(self, total: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.enabled, leave=False, file=sys.stderr)


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Wall seconds in ``timings[name]``, process CPU seconds in ``timings[name + "_cpu"]``."""
    start, cpu = time.perf_counter(), time.process_time()
    yield
    timings[name] = round(time.perf_counter() - start, 3)
    timings[name + "_cpu"] = round(time.process_time() - cpu, 3)


def element_labels(group: TransformationSet) -> list[str]:
    """Readable names: rotations/reflections by angle for 2 × 2 matrices, else ``g<k>``."""
    leaves = jax.tree_util.tree_leaves(group.elements)
    labels = []
    if len(leaves) == 1 and leaves[0].shape[1:] == (2, 2):
        for k, m in enumerate(np.asarray(leaves[0], np.float64)):
            angle = np.degrees(np.arctan2(m[1, 0], m[0, 0])) % 360
            if np.linalg.det(m) > 0:
                labels.append("e" if k == 0 else f"rot {angle:.4g}°")
            else:
                labels.append(f"flip {(angle / 2) % 180:.4g}°")
        return labels
    if len(leaves) == 1 and leaves[0].ndim == 1:
        return ["e"] + [f"shift {int(v)}" for v in np.asarray(leaves[0])[1:]]
    return ["e"] + [f"g{k}" for k in range(1, group.size)]


def _candidate_name(group: TransformationSet, members: np.ndarray) -> str:
    if len(members) == group.size:
        return group.name
    if len(members) == 1:
        return "none"
    return f"{group.name}{{{','.join(str(int(k)) for k in members)}}}"


def _subsample(data: Dataset, config: AuditSettings, seed: int) -> Dataset:
    rng = np.random.default_rng(seed + 1)
    train = np.sort(rng.permutation(len(data.x))[: config.max_train])
    test = np.sort(rng.permutation(len(data.x_test))[: config.max_test])
    return data._replace(
        x=data.x[train], y=data.y[train], x_test=data.x_test[test], y_test=data.y_test[test]
    )


def _choose(candidates, predictive, names) -> dict[str, Any]:
    """Which set and how strictly, from the cross-fitted risks (module docstring)."""
    unconstrained = None
    options = []
    for k, result in predictive.items():
        t_cv = float(result["t_star_cv"])
        best = float(result["symmetric_risk"] - 2 * t_cv * result["alignment"])
        best += float(t_cv**2 * result["anti_energy"])
        unconstrained = float(
            result["symmetric_risk"] - 2 * result["alignment"] + result["anti_energy"]
        )
        options.append((k, best, float(result["t_star"])))
    if not options:
        return {"index": None}
    floor = min([unconstrained] + [best for _, best, _ in options])
    slack = RISK_TOLERANCE * abs(unconstrained)
    good = [
        (len(candidates[k]), k)
        for k, best, t_star in options
        if t_star < T_NONE and best <= floor + slack
    ]
    if not good:
        return {"index": 0, "unconstrained_risk": unconstrained}
    index = max(good)[1]
    return {"index": index, "unconstrained_risk": unconstrained, "name": names[index]}


def run_audit(
    data: Dataset, group: TransformationSet, *, seed: int = 0, quick: bool = False, quiet=False
) -> dict[str, Any]:
    """Run the seven steps of the audit and return their results as a dict."""
    config = settings(quick)
    data = _subsample(data, config, seed)
    progress = _Progress(quiet)
    timings: dict[str, float] = {}
    key_fit, key_folds, key_init, key_reg = jax.random.split(jax.random.key(seed), 4)
    targets = data.targets()
    results: dict[str, Any] = {
        "data": {
            "source": data.source,
            "task": data.task,
            "num_train": len(data.x),
            "num_test": len(data.x_test),
            "test_source": data.test_source,
            "input_shape": list(data.x.shape[1:]),
            "output_dim": data.output_dim,
            "classes": data.classes,
            "input_scale": data.scale,
        },
        "group": {
            "name": group.name,
            "size": group.size,
            "is_group": bool(group.is_group),
            "elements": element_labels(group),
        },
        "settings": config._asdict(),
        "seed": seed,
        "quick": quick,
    }
    steps = progress.bar(7, "audit")

    # 1. the data's profile (docs/theory.md §6)
    with _timed(timings, "profile"):
        steps.set_description("audit: data profile")
        profile = analysis.data_profile(data.x, targets, group)
        rms = analysis.filled_profile(profile, targets)
    results["profile"] = {**profile._asdict(), "rms_filled": rms}
    steps.update()

    # 2. ε-stabilizers (docs/theory.md §2)
    flat = targets.reshape(len(targets), -1)
    spread = float(np.sqrt(np.mean(np.sum((flat - flat.mean(0)) ** 2, axis=1))))
    tolerances = [f * spread for f in TOLERANCE_FRACTIONS]
    with _timed(timings, "stabilizers"):
        stabs = analysis.stabilizers(rms, tolerances)
    results["stabilizers"] = [
        {"tolerance": eps, "elements": members, "measure": measure}
        for eps, (members, measure) in zip(tolerances, stabs, strict=True)
    ]
    steps.update()

    # 3. candidates and their orbit covering numbers (docs/theory.md §4)
    steps.set_description("audit: covering numbers")
    with _timed(timings, "covering"):
        candidates = analysis.candidate_sets(group, rms, [m for m, _ in stabs])
        names = [_candidate_name(group, c) for c in candidates]
        radii = analysis.covering_radii(data.x)
        counts = analysis.covering(data.x, group, candidates, radii)
    results["candidates"] = [
        {"name": name, "elements": members, "size": len(members)}
        for name, members in zip(names, candidates, strict=True)
    ]
    results["covering"] = {"radii": radii, "counts": counts}
    steps.update()

    # 4. the bound curve and the bound-optimal level (docs/theory.md §4, §5)
    steps.set_description("audit: bound")
    with _timed(timings, "bound"):
        fit = analysis.make_fit(
            config.num_features, config.ridge, analysis.median_distance(data.x, seed=seed), key_fit
        )
        lipschitz = analysis.lipschitz_estimate(fit(data.x, targets), data.x)
        label_bound = float(np.max(np.linalg.norm(flat, axis=1)))
        output_bound = 1.0 if data.task == "classification" else float(np.max(np.abs(flat)))
        constants = analysis.loss_constants(
            max(lipschitz, 1e-6), max(output_bound, 1e-6), label_bound, flat.shape[1]
        )
        eta = float(np.sqrt(0.5 * np.mean(rms**2)))
        curve = analysis.bound_curve(radii, counts, len(data.x), group.size, eta, constants)
        subset = None
        if group.is_group:
            subset = analysis.bound_subset(
                radii,
                counts,
                candidates,
                len(data.x),
                rms,
                constants,
                num_levels=analysis.count_subgroups(group),
            )
    results["bound"] = {
        "constants": constants._asdict(),
        "estimated": True,
        "eta": eta,
        **curve._asdict(),
        "subset": subset,
    }
    if subset is not None:
        subset["symmetry"] = _candidate_name(group, subset["elements"])
    steps.update()

    # 5. the predicted best level on each candidate (docs/theory.md §8)
    predictive: dict[int, dict[str, Any]] = {}
    with _timed(timings, "predictive"):
        steps.set_description("audit: predicted level")
        bar = progress.bar(len(candidates) - 1, "predictive trade-off")
        for k, members in enumerate(candidates):
            if len(members) == 1:
                continue
            sub = group if len(members) == group.size else None
            sub = sub or analysis.subgroup(group, members, names[k])
            result = analysis.predicted_level(
                fit, data.x, targets, sub, key_folds, exact=group.is_group
            )
            predictive[k] = {
                name: np.asarray(value, np.float64) for name, value in result._asdict().items()
            }
            predictive[k]["symmetric_risk"] = predictive[k]["risk"][0]
            bar.update()
        bar.close()
    results["predictive"] = [
        {"symmetry": names[k], "candidate": k, **value} for k, value in predictive.items()
    ]
    steps.update()

    # 7 (before 6, which trains at the recommended level). The recommendation.
    choice = _choose(candidates, predictive, names)
    results["recommendation"] = _recommendation(group, candidates, names, choice, predictive)

    # 6. the training sweep (docs/theory.md §3, §7)
    steps.set_description("audit: training sweep")
    with _timed(timings, "training"):
        results["training"] = _training(
            data,
            group,
            candidates,
            names,
            results["recommendation"],
            fit,
            config,
            (key_init, key_reg),
            progress,
        )
    steps.update()
    steps.update()
    steps.close()
    results["timings"] = timings
    return results


def _recommendation(group, candidates, names, choice, predictive) -> dict[str, Any]:
    basis = "predictive" if group.is_group else "predictive (partial average)"
    if choice["index"] is None:  # a one-element set: nothing to choose
        return {
            "symmetry": "none",
            "elements": candidates[0],
            "t_star": 1.0,
            "eps_star": 0.0,
            "strictness": "none",
            "basis": basis,
        }
    index = choice["index"]
    if index == 0:  # no candidate helps: keep the unconstrained model
        full = max(predictive) if predictive else None
        distance = float(predictive[full]["distance"]) if full is not None else 0.0
        return {
            "symmetry": "none",
            "elements": candidates[0],
            "t_star": 1.0,
            "eps_star": distance,
            "strictness": "none",
            "basis": basis,
        }
    result = predictive[index]
    t_star = float(result["t_star"])
    return {
        "symmetry": names[index],
        "elements": candidates[index],
        "t_star": t_star,
        "eps_star": float(result["eps_star"]),
        "strictness": "exact" if t_star <= T_EXACT else "soft",
        "basis": basis,
    }


def _training(data, group, candidates, names, recommendation, fit, config, keys, progress):
    key_init, key_reg = keys
    in_dim = int(np.prod(data.x.shape[1:]))
    params = sweep.init_mlp(key_init, in_dim, config.hidden, data.output_dim)
    rows_planned = [
        ("no symmetry", lambda f: f, ""),
        (
            f"full symmetry ({group.name})",
            lambda f: analysis.symmetric_model(f, group),
            "Q_G f" if group.is_group else "Q_ν f (partial average)",
        ),
    ]
    members = recommendation["elements"]
    t_star = recommendation["t_star"]
    if recommendation["strictness"] != "none" and not (
        len(members) == group.size and recommendation["strictness"] == "exact"
    ):
        sub = group if len(members) == group.size else analysis.subgroup(group, members, "H")
        rows_planned.append(
            (
                f"recommended ({recommendation['symmetry']}, t={t_star:.2f})",
                lambda f: analysis.dialed_model(f, sub, t_star),
                "dial Q_H f + t*(f − Q_H f)",
            )
        )
    bar = progress.bar(config.steps * (len(rows_planned) + 1), "training sweep")
    rows = [
        sweep.train_row(
            name, wrap, params, data, steps=config.steps, note=note, progress=bar.update
        )
        for name, wrap, note in rows_planned
    ]
    nested = [
        analysis.subgroup(group, c, names[k]) if len(c) < group.size else group
        for k, c in enumerate(candidates)
        if len(c) > 1
    ]
    if group.is_group:
        rows.append(
            sweep.regularizer_row(
                params, data, group, nested, fit, key_reg, steps=config.steps, progress=bar.update
            )
        )
    else:
        rows.append(sweep.SweepRow("bound regularizer", False, note="needs a group"))
    bar.close()
    return [row._asdict() for row in rows]
