"""The audit pipeline: the steps, in order, with progress bars.

:func:`run_audit` takes a validated :class:`~jaxsym.audit.inputs.Dataset` and a
group and returns a plain ``dict`` of results (NumPy arrays and floats) that
:mod:`jaxsym.audit.report` prints and serializes and :mod:`jaxsym.audit.plots`
draws. Every number comes from the library through :mod:`jaxsym.audit.analysis`
(one function per question). The decision is made once, by certificate
(docs/theory.md §9):

* **splits**: the training data is split into *train* and *certify*
  (:data:`CERTIFY_FRACTION`); the test split, if any, only measures;
* **screen** (train split): :func:`jaxsym.choose_symmetry` ranks every
  (set, level) option by the cross-fitted loss of the reference model *trained*
  at that option (docs/theory.md §8b; the certified loss: 0-1 error for
  classes) and keeps the most symmetric option within one standard error of
  the best;
* **train** (train split): the reference model (random features + ridge) in the
  class of every candidate set exactly (t = 0), without symmetry, and at the
  screened soft level when the screen chose one (0 < t* < 1), on groups and
  on partial sets alike;
* **certify** (certify split, every example): :func:`jaxsym.held_out_bound` for
  every trained model, with the union bound over all of them, at :data:`DELTA`;
* **recommend**: the most symmetric model tied, within two paired standard
  errors on the certify split, with the lowest certificate: never worse than
  another model the same report trained by more than the noise.

The covering-number bound of docs/theory.md §4 ("the theory bound", with
estimated constants) is reported for the trained sets; it decides nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxsym import groups
from jaxsym.audit import analysis, sweep
from jaxsym.audit.inputs import NUM_FOLDS, Dataset
from jaxsym.decision import TOLERANCE_FRACTIONS, set_name
from jaxsym.groups import TransformationSet
from jaxsym.models import predict_many

__all__ = ["CERTIFY_FRACTION", "DELTA", "AuditSettings", "run_audit", "settings"]

CERTIFY_FRACTION = 1 / 3  # of the training data, held out for the certificates
DELTA = 0.05  # the certificates' failure probability (all trained models together)
TIE_STANDARD_ERRORS = 2.0  # certify-loss differences within this many paired SEs are ties
RIDGES = (1e-5, 1e-4, 1e-3)  # the reference model's λ, tuned in each class


class AuditSettings(NamedTuple):
    """Sizes of the run (``--quick`` shrinks them)."""

    max_train: int
    max_test: int
    num_features: int
    ridges: tuple[float, ...]
    num_folds: int
    delta: float


def settings(quick: bool) -> AuditSettings:
    """The default or the ``--quick`` sizes of the reference model and the data."""
    if quick:
        return AuditSettings(
            max_train=1200, max_test=400, num_features=512, ridges=RIDGES, num_folds=NUM_FOLDS,
            delta=DELTA,
        )  # fmt: skip
    return AuditSettings(
        max_train=4000, max_test=2000, num_features=1024, ridges=RIDGES, num_folds=NUM_FOLDS,
        delta=DELTA,
    )  # fmt: skip


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


def _subsample(data: Dataset, config: AuditSettings, seed: int) -> Dataset:
    rng = np.random.default_rng(seed + 1)
    train = np.sort(rng.permutation(len(data.x))[: config.max_train])
    test = np.sort(rng.permutation(len(data.x_test))[: config.max_test])
    return data._replace(
        x=data.x[train], y=data.y[train], x_test=data.x_test[test], y_test=data.y_test[test]
    )


def _split(data: Dataset, seed: int) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """``(train, x_certify, y_certify)``: a random :data:`CERTIFY_FRACTION` of the training data
    is held out for the certificates (docs/theory.md §9)."""
    order = np.random.default_rng(seed + 2).permutation(len(data.x))
    num_certify = max(1, round(CERTIFY_FRACTION * len(data.x)))
    certify, train = np.sort(order[:num_certify]), np.sort(order[num_certify:])
    return data._replace(x=data.x[train], y=data.y[train]), data.x[certify], data.y[certify]


def run_audit(
    data: Dataset, group: TransformationSet, *, seed: int = 0, quick: bool = False, quiet=False
) -> dict[str, Any]:
    """Run the audit's steps and return their results as a dict (module docstring)."""
    config = settings(quick)
    data = _subsample(data, config, seed)
    train, x_certify, y_certify = _split(data, seed)
    progress = _Progress(quiet)
    timings: dict[str, float] = {}
    key_fit, key_folds = jax.random.split(jax.random.key(seed), 2)
    targets = train.targets()
    results: dict[str, Any] = {
        "data": {
            "source": data.source,
            "task": data.task,
            "num_train": len(train.x),
            "num_certify": len(x_certify),
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
            "elements": groups.element_labels(group),
        },
        "settings": {**config._asdict(), "certify_fraction": CERTIFY_FRACTION},
        "seed": seed,
        "quick": quick,
    }
    steps = progress.bar(6, "audit")

    # 1. the data's profile (docs/theory.md §6), on the training split
    with _timed(timings, "profile"):
        steps.set_description("audit: data profile")
        profile = analysis.data_profile(train.x, targets, group)
        rms = analysis.filled_profile(profile, targets)
    results["profile"] = {**profile._asdict(), "rms_filled": rms}
    steps.update()

    # 2. ε-stabilizers (docs/theory.md §2)
    flat = targets.reshape(len(targets), -1)
    spread = float(np.sqrt(np.mean(np.sum((flat - flat.mean(0)) ** 2, axis=1))))
    tolerances = [f * spread for f in TOLERANCE_FRACTIONS]
    with _timed(timings, "stabilizers"):
        stabs = analysis.stabilizers(rms, tolerances)
    labels = groups.element_labels(group)
    results["stabilizers"] = [
        {
            "tolerance": eps,
            "elements": members,
            "labels": [labels[int(k)] for k in members],
            "measure": measure,
        }
        for eps, (members, measure) in zip(tolerances, stabs, strict=True)
    ]
    steps.update()

    # 3. the screen: which set and how strictly (docs/theory.md §8b, §9), training split
    steps.set_description("audit: screen")
    spec = sweep.loss_spec(data.task, targets if data.task == "regression" else train.y)
    with _timed(timings, "screen"):
        loss = "zero_one" if data.task == "classification" else "squared"
        fit = analysis.make_fit(
            config.num_features,
            config.ridges,
            analysis.median_distance(train.x, seed=seed),
            key_fit,
        )
        choice = analysis.screen(
            fit, train.x, targets, group, key_folds, rms,
            loss=loss, num_folds=config.num_folds,
        )  # fmt: skip
    results["screen"] = _screen_results(group, choice)
    steps.update()

    # 4. train the reference model in each candidate's class; 5. certify each (§9)
    steps.set_description("audit: training")
    with _timed(timings, "training"):
        rows, predictors = _training(train, group, choice, fit)
    with _timed(timings, "certify"):
        certify_losses = _certify(
            rows, predictors, spec, (x_certify, y_certify), data, config.delta
        )
    results["loss"] = {"name": spec.name, "loss_range": spec.loss_range}
    results["model"] = {
        "name": "random-features network",
        "ridges": list(config.ridges),
        "description": (
            f"{config.num_features} random Fourier features of the inputs (averaged over the "
            f"set H and dialed at t), ridge λ tuned in each class by 5-fold cross-fitting "
            f"among {', '.join(f'{r:g}' for r in config.ridges)}, on "
            f"{'one-hot labels' if data.task == 'classification' else 'the targets'}"
        ),
    }
    results["training"] = rows
    steps.update()

    # 6. the theory bound (docs/theory.md §4): reported, decides nothing
    steps.set_description("audit: theory bound")
    with _timed(timings, "theory_bound"):
        plain = predictors[[row["method"] for row in rows].index("no symmetry")]
        results.update(_theory(train, targets, group, choice, plain))
    steps.update()

    results["recommendation"] = _recommendation(group, rows, choice, certify_losses)
    steps.update()
    steps.close()
    results["timings"] = timings
    return results


def _screen_results(group: TransformationSet, choice) -> dict[str, Any]:
    """The screen's evidence: one entry per candidate set (its risk curve over t) and the pick."""
    sets = []
    for members in choice.candidates:
        name = set_name(group, members)
        rows = [j for j, n in enumerate(choice.names) if n == name and len(members) > 1]
        rows.append(0)  # t = 1 is the unconstrained model on every set
        sets.append(
            {
                "symmetry": name,
                "elements": members,
                "size": len(members),
                "t": choice.levels[rows],
                "risk": choice.risks[rows],
                "stderr": choice.stderrs[rows],
            }
        )
    return {
        "symmetry": choice.name,
        "elements": choice.elements,
        "t_star": choice.t_star,
        "budget": choice.budget,
        "risk": choice.risks[choice.index],
        "stderr": choice.stderrs[choice.index],
        "best": {
            "symmetry": choice.names[choice.best],
            "t": choice.levels[choice.best],
            "risk": choice.risks[choice.best],
            "stderr": choice.stderrs[choice.best],
        },
        "reason": choice.reason,
        "num_options": choice.num_options,
        "loss": choice.problem.loss,
        "sets": sets,
    }


def _training(train, group: TransformationSet, choice, fit):
    """The reference model trained in each candidate's class on the training split.

    Every candidate set exactly (t = 0), no symmetry, and the screened option when
    it is soft (its model is the screen's own ``choice.model``). ``(rows, predictors)``.
    """
    targets = train.targets()
    options = choice.problem.options
    planned = [j for j, option in enumerate(options) if option.t in (0.0, 1.0)]
    if 0.0 < choice.t_star < 1.0:
        planned.append(choice.index)
    rows, predictors = [], []
    for j in planned:
        subset, t, name = options[j].group, options[j].t, options[j].name
        members = np.asarray(options[j].elements, np.int64)
        screened = j == choice.index
        predictor = choice.model if screened else fit(train.x, targets, symmetry=options[j])
        exact = "Q_H f" if subset.is_group else "Q_ν f (partial average)"
        if len(members) == 1:
            method, note = "no symmetry", "f"
        elif t == 0.0:
            method, note = f"{name} exactly", exact
        else:
            method, note = f"{name} at t = {t:.2g}", f"the dial {exact.split()[0]} + t (f − …)"
        rows.append(
            {
                "method": method,
                "available": True,
                "elements": members,
                "size": len(members),
                "t": float(t),
                "budget": choice.budget if (0.0 < t < 1.0) else 0.0,
                "note": note,
                "screened": screened,
            }
        )
        predictors.append(predictor)
    return rows, predictors


def _certify(rows, predictors, spec, certify_split, data, delta: float) -> np.ndarray:
    """Held-out certificate on every certify example (union over every trained model) and
    test metrics, in place; returns the ``(models, n_certify)`` certify losses."""
    x_certify, y_certify = certify_split
    trained = [row for row in rows if row["available"]]
    both = np.concatenate([np.asarray(x_certify), np.asarray(data.x_test)])
    outputs = predict_many(predictors, both)  # one orbit pass per batch for the family
    split = len(x_certify)
    table = []
    for row, output in zip(trained, outputs, strict=True):
        on_certify, on_test = output[:split], output[split:]
        losses = sweep.losses(on_certify, y_certify, spec)
        row["certificate"] = analysis.certify(
            losses, spec.loss_range, len(trained), delta
        )._asdict()
        row.update(sweep.metrics(on_test, data.y_test, data.task, spec))
        table.append(losses)
    return np.asarray(table, np.float64)


def _theory(train, targets, group, choice, plain) -> dict[str, Any]:
    """Covering numbers and the §4 theory bound for ``{e} ⊂ screened set ⊂ G``.

    ``plain`` is the reference model trained without symmetry on the training
    split (the "no symmetry" row of :func:`_training`); its Lipschitz estimate
    is the bound's ``L``.
    """
    chain = [np.zeros(1, np.int64)]
    for members in (np.asarray(choice.elements), np.arange(group.size)):
        if len(members) > len(chain[-1]):
            chain.append(np.asarray(members, np.int64))
    names = [set_name(group, c) for c in chain]
    radii = analysis.covering_radii(train.x)
    counts = analysis.covering(train.x, group, chain, radii)
    flat = targets.reshape(len(targets), -1)
    label_bound = max(float(np.max(np.linalg.norm(flat, axis=1))), 1e-6)
    output_bound = 1.0 if train.task == "classification" else float(np.max(np.abs(flat)))
    constants = analysis.bound_constants(
        plain, train.x, max(output_bound, 1e-6), label_bound, flat.shape[1]
    )
    total = analysis.theory_bound(
        radii, counts, [len(c) for c in chain], len(train.x), constants, len(chain)
    )
    loss_range = float(constants.loss.loss_range)
    return {
        "candidates": [
            {"name": name, "elements": members, "size": len(members)}
            for name, members in zip(names, chain, strict=True)
        ],
        "covering": {"radii": radii, "counts": counts},
        "bound": {
            "name": "theory bound",
            "estimated": True,
            "constants": {
                "lipschitz": constants.lipschitz,
                "output_bound": constants.output_bound,
                "label_bound": label_bound,
                "output_dim": constants.output_dim,
                "loss_range": loss_range,
                "loss_lipschitz": float(constants.loss.loss_lipschitz),
                "delta": constants.delta,
            },
            "symmetry": names,
            "eps": [0.0] * len(chain),
            "generalization": total,
            "total": total,
            "num_levels": len(chain),
            "n": len(train.x),
            "vacuous": bool(np.min(total) >= loss_range),
        },
    }


def _recommendation(group, rows, choice, certify_losses: np.ndarray) -> dict[str, Any]:
    """The trained model to recommend: tied, within noise, with the lowest certificate.

    Model ``j`` ties with the lowest-certificate model ``b`` when its certify loss
    exceeds ``b``'s by at most :data:`TIE_STANDARD_ERRORS` paired standard errors,
    ``mean(ℓ_j − ℓ_b) ≤ 2 std(ℓ_j − ℓ_b) / √n`` on the same certify examples. Among
    the tied models the screen's own option wins when it is one of them (the
    certificates cannot tell them apart; the screen's cross-fit is further
    evidence), else the largest set, then the smallest t (the screen's rule,
    docs/theory.md §9). Every tied model's certificate holds with the same union
    bound, so the recommendation's certificate is its own.
    """
    trained = [row for row in rows if row["available"]]
    best = min(range(len(trained)), key=lambda j: trained[j]["certificate"]["bound"])
    n = certify_losses.shape[1]
    tied = []
    for j in range(len(trained)):
        difference = certify_losses[j] - certify_losses[best]
        noise = float(difference.std(ddof=1)) / np.sqrt(n) if n > 1 else 0.0
        if float(difference.mean()) <= TIE_STANDARD_ERRORS * noise + 1e-12:
            tied.append(j)
    screened = [j for j in tied if trained[j].get("screened")]
    pick = (
        screened[0] if screened else min(tied, key=lambda j: (-trained[j]["size"], trained[j]["t"]))
    )
    row = trained[pick]
    size = row["size"]
    if size == 1:
        strictness = "none"
    elif row["t"] == 0.0:
        strictness = "exact"
    else:
        strictness = "soft"
    return {
        "symmetry": set_name(group, row["elements"]),
        "elements": row["elements"],
        "t_star": 1.0 if size == 1 else float(row["t"]),
        "eps_star": float(row["budget"]) if strictness == "soft" else 0.0,
        "strictness": strictness,
        "method": row["method"],
        "basis": "held-out certificate",
        "certificate": row["certificate"],
        "lowest_certificate": {
            "method": trained[best]["method"],
            "bound": trained[best]["certificate"]["bound"],
        },
        "tied": [trained[j]["method"] for j in tied],
        "test_error": row.get("error"),
        "screened": {"symmetry": choice.name, "t_star": choice.t_star, "budget": choice.budget},
        "agrees_with_screen": bool(row.get("screened", False)),
    }
