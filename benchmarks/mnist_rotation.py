"""How much rotation does MNIST want? Random features + ridge trained in each class.

The model is the package's **reference model**, random Fourier features + ridge
(:func:`jaxsym.random_features_ridge`, p = 1024 features, lengthscale the median
pairwise distance of the training images), trained in the class of each option
(docs/theory.md §8b). It is **not a CNN**: a CNN study of the same question
needs a GPU and is left for a GPU session.

Data: the 5000 MNIST digits of :func:`jaxsym.datasets.mnist`. Per seed ``s``
(0-4) a permutation from ``numpy.random.default_rng(s)``: its first 1000
images are the test set, the next ``n`` the training set (the training sets of
one seed are nested in ``n`` and always disjoint from its test set).

Options, all trained on the same training set of a seed:

* **plain**: ``fit(x, y)``;
* **in class ±r°**: the ridge on features averaged over the rotations within
  ±r° on a 15° grid (``image_rotations(2r/15 + 1, max_angle=r°)``), i.e.
  ``fit(x, y, symmetry=H)`` at ``t = 0``; **in class full (16)**: the same over
  the whole circle, ``image_rotations(16)``;
* **augmented ±r°** / **augmented full (16)**: the plain ridge fitted on the
  orbit-augmented training set (every training image rotated by every angle of
  the same set, labels repeated): ``fit(orbit_augment(x, H), tile(y))``;
* **screen pick**: :func:`jaxsym.choose_symmetry` over the nested ranges of the
  ±90° set (``{e}``, ±15°, …, ±90°) at ``t ∈ {0, 0.5, 1}``, ``loss="zero_one"``
  on one-hot labels, 5 folds; its chosen model, retrained on the whole
  training set, is tested like the others.

**Ridge λ, two protocols.** (A), the study's protocol: per n, the λ among
(1e-6, 1e-5, 1e-4, 1e-3) with the lowest 5-fold cross-fitted 0-1 error of the
*plain* model on seed 0's training set (ties to the larger λ), then fixed for
every seed and option (and the screen). Averaging shrinks the features, so a
λ tuned on the plain model regularizes the averaged models more; hence (B):
the same rule applied to *each option's own* model on *each seed's* training
set, for the plain and in-class options (the augmented ones, whose Gram
matrices cost |H| times more per fold, keep (A)'s λ). Both choose λ on
training data only. A table of test error at every
λ is printed too, as a diagnostic (nothing is chosen from it).

**Shared features.** The in-class and augmented models are computed from one
pass over each angle: ``Φ_g``, the features ``fit`` uses (the same ``W, b``
from the seed's key) of the training images rotated by ``g``; in class H is the
ridge on ``mean_{g∈H} Φ_g``, augmented H the ridge with Gram ``Σ_{g∈H} Φ_gᵀΦ_g``
over ``n|H|`` rows, both with per-fold moments so that cross-fits cost one
Cholesky each. The script checks this against the package's own calls on the
first seed of every n (``fit(x, y, symmetry=H)``, ``fit(orbit_augment(x, H),
tile(y))``, test outputs) and, on every seed the screen runs, its cross-fitted
errors against the screen's (same folds, same λ).

Reported per (n, option): test error (1000 test images) mean ± standard error
over seeds and per seed; the screen's pick per seed; a held-out certificate,
:func:`jaxsym.held_out_bound` (0-1 loss, δ = 0.05, union over the K models
trained on that seed, both protocols) on the *certify split*, the first third
of the test images. No model is chosen on the test images, so each seed's
bounds hold together.

Then, from those numbers: does an intermediate range (in class) beat both the
plain model and the full circle at each n? Paired differences over seeds ±
paired standard error, two-sided paired t-test (df = seeds − 1), Holm's
correction over every such comparison made (both protocols); and rotated MNIST
(:func:`jaxsym.datasets.rotated_mnist`), plain against in class over 8 and 16
full-circle rotations (its own Holm family).

Usage::

    python benchmarks/mnist_rotation.py            # the full study; writes the JSON below
    python benchmarks/mnist_rotation.py --quick    # smoke test: n = 500, 2 seeds, fewer options,
                                                   # the screen on seed 0 over ±30° only
    python benchmarks/mnist_rotation.py --out PATH
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import jaxsym  # noqa: E402
from jaxsym import groups  # noqa: E402
from jaxsym.datasets import mnist, rotated_mnist  # noqa: E402
from jaxsym.decision import Symmetry  # noqa: E402
from jaxsym.models import predict  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import machine_info  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "mnist_rotation.json"
NUM_FEATURES = 1024
RIDGES = (1e-6, 1e-5, 1e-4, 1e-3)
NUM_FOLDS = 5
TEST_SIZE = 1000
CERTIFY_SIZE = TEST_SIZE // 3
DELTA = 0.05
ALPHA = 0.05
SCREEN_T_GRID = (0.0, 0.5, 1.0)
STEP_DEG = 15
BATCH = 500  # rows per compiled feature call (every n and the test size are multiples)
PLAIN_CHECK = "plain: |fit() − shared| test error"
SCREEN_CHECK = "screen vs shared cross-fitted error, max |Δ|"
NOT_A_CNN = (
    "Model: random Fourier features + ridge (p = 1024), the package's reference model, trained "
    "in each class. This is NOT a CNN; a CNN study of the same question needs a GPU and is left "
    "for a GPU session."
)

FULL = dict(
    sizes=(500, 1000, 4000),
    seeds=(0, 1, 2, 3, 4),
    ranges=(15, 30, 45, 90),  # in class; "full (16)" is added
    augment=(15, 30, 45, 90),  # augmented; "full (16)" is added
    screen_seeds=(0, 1, 2, 3, 4),
    screen_range=90,  # the screen's candidates: the nested ranges of ±90°
    rotated_sizes=(1000, 4000),
    rotated_counts=(8, 16),
)
QUICK = dict(
    sizes=(500,),
    seeds=(0, 1),
    ranges=(15, 45),
    augment=(15,),
    screen_seeds=(0,),
    screen_range=30,
    rotated_sizes=(500,),
    rotated_counts=(8,),
)


# ----------------------------------------------------------------------------- helpers


def range_set(degrees: int | None):
    """Rotations within ±degrees on the 15° grid; ``None``: the whole circle (16 angles)."""
    if degrees is None:
        return groups.image_rotations(16)
    return groups.image_rotations(2 * degrees // STEP_DEG + 1, max_angle=math.radians(degrees))


def range_label(degrees: int | None) -> str:
    return "full (16)" if degrees is None else f"±{degrees}°"


def in_class(group) -> Symmetry:
    """The option "exact symmetry over ``group``" (t = 0) for ``fit(x, y, *, symmetry)``."""
    return Symmetry(group, 0.0, tuple(range(group.size)), group.name)


def split(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices of a seed: the permutation's first 1000 test, next n train."""
    order = np.random.default_rng(seed).permutation(5000)
    if n > len(order) - TEST_SIZE or n % BATCH or n % NUM_FOLDS:
        raise ValueError(f"n = {n}: need n ≤ 4000, a multiple of {BATCH} and of {NUM_FOLDS}.")
    return order[TEST_SIZE : TEST_SIZE + n], order[:TEST_SIZE]


def median_distance(x: np.ndarray) -> float:
    """Median pairwise Euclidean distance of the rows of ``x`` (all pairs)."""
    flat = jnp.asarray(x, jnp.float32).reshape(len(x), -1)
    sq = jnp.sum(flat**2, axis=1)
    d2 = np.asarray(jnp.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0.0))
    return float(np.median(np.sqrt(d2[np.triu_indices(len(x), 1)])))


def errors_of(model, x_test: jax.Array, y_test: np.ndarray) -> np.ndarray:
    """0-1 errors (argmax of the outputs against the class) of one trained model."""
    outputs = np.asarray(predict(model, x_test))
    return (outputs.argmax(axis=1) != y_test).astype(np.float64)


def pick_ridge(cross_fitted: dict[float, float]) -> float:
    """The λ with the lowest cross-fitted error; ties to the larger λ."""
    best = min(cross_fitted.values())
    return max(r for r, v in cross_fitted.items() if v == best)


def paired(a, b) -> dict:
    """Paired difference ``a − b`` over seeds: mean, SE, two-sided t-test p (df = seeds − 1)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else float("nan")
    if len(d) < 2:
        p = float("nan")
    elif se == 0.0:
        p = 1.0 if mean == 0.0 else 0.0
    else:
        p = float(2 * stats.t.sf(abs(mean / se), df=len(d) - 1))
    return {"diff": mean, "se": se, "p": p, "per_seed": d.tolist()}


def holm(comparisons: list[dict]) -> None:
    """Holm's step-down adjusted p-values, in place (``p_holm``, ``significant``)."""
    order = sorted(range(len(comparisons)), key=lambda i: comparisons[i]["p"])
    m, running = len(comparisons), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * comparisons[i]["p"]))
        comparisons[i]["p_holm"] = running
        comparisons[i]["significant"] = bool(running <= ALPHA)


def mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def fmt(mean: float, se: float) -> str:
    return f"{mean:.3f} ± {se:.3f}" if math.isfinite(se) else f"{mean:.3f}"


class Clock:
    """Wall and CPU seconds since construction."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> dict:
        return {
            "wall_s": round(time.perf_counter() - self.wall, 1),
            "cpu_s": round(time.process_time() - self.cpu, 1),
        }


# ----------------------------------------------------------------------------- shared features


class Stats(NamedTuple):
    """Per-fold sufficient statistics of a ridge: ``Σ φφᵀ, Σ φyᵀ, Σ φ, Σ y, rows`` per fold."""

    gram: jax.Array  # (K, p, p)
    cross: jax.Array  # (K, p, d)
    sums: jax.Array  # (K, p)
    ysum: jax.Array  # (K, d)
    count: jax.Array  # (K,)


class Option(NamedTuple):
    """One option's statistics, its features of the training rows (scored when held out),
    and its features of the test images."""

    stats: Stats
    held: jax.Array
    test: jax.Array


@eqx.filter_jit
def _moved_features(model, group, element, x):
    """``φ(g·x)`` for one element ``g`` of ``group``: the model's own ``base_features``."""
    moved = groups.transform_batch(group, jax.tree_util.tree_map(lambda e: e[None], element), x)
    return model.base_features(moved[0])


def moved_features(model, group, index: int, x: jax.Array) -> jax.Array:
    """``φ(g_index · x)`` in batches of :data:`BATCH` rows."""
    element = group.element(index)
    return jnp.concatenate(
        [_moved_features(model, group, element, x[s : s + BATCH]) for s in range(0, len(x), BATCH)]
    )


@jax.jit
def _fold_stats(features, targets, folds) -> Stats:
    rows, ys = features[folds], targets[folds]  # (K, m, p), (K, m, d)
    return Stats(
        jnp.einsum("kmp,kmq->kpq", rows, rows),
        jnp.einsum("kmp,kmd->kpd", rows, ys),
        rows.sum(1),
        ys.sum(1),
        jnp.full(folds.shape[0], folds.shape[1], features.dtype),
    )


def _add(a: Stats | None, b: Stats) -> Stats:
    return b if a is None else jax.tree_util.tree_map(jnp.add, a, b)


def _solve(gram, cross, sums, ysum, count, ridge):
    """The package's ridge from moments: ``(ΦᵀΦ/N + λI) w = Φᵀ(y − m)/N``, ``m`` the label mean."""
    offset = ysum / count
    system = gram / count + ridge * jnp.eye(gram.shape[0], dtype=gram.dtype)
    rhs = (cross - sums[:, None] * offset[None, :]) / count
    factor = jax.scipy.linalg.cho_factor(system, lower=True)
    return jax.scipy.linalg.cho_solve(factor, rhs), offset


@functools.partial(jax.jit, static_argnames="cross_fit")
def _outputs(option: Option, folds, ridge, cross_fit: bool):
    """Test outputs of the ridge trained on all rows; with ``cross_fit``, each fold's
    outputs from the ridge trained on the other folds (one Cholesky per fold)."""
    total = jax.tree_util.tree_map(lambda a: a.sum(0), option.stats)
    weights, offset = _solve(*total, ridge)
    test = option.test @ weights + offset
    if not cross_fit:
        return test, None
    train = jax.tree_util.tree_map(lambda t, a: t[None] - a, total, option.stats)
    weights, offsets = jax.vmap(_solve, in_axes=(0, 0, 0, 0, 0, None))(*train, ridge)
    held = jnp.einsum("kmp,kpd->kmd", option.held[folds], weights) + offsets[:, None]
    return test, held


def evaluate(option: Option, folds, y, y_test, ridge: float, *, cross_fit: bool = True):
    """``(test 0-1 errors, cross-fitted 0-1 error or None, test outputs)`` at ``ridge``."""
    test, held = _outputs(option, folds, jnp.float32(ridge), cross_fit)
    test_errors = (np.asarray(test).argmax(1) != y_test).astype(np.float64)
    if held is None:
        return test_errors, None, test
    held_error = float(np.mean(np.asarray(held).argmax(-1) != np.asarray(y)[np.asarray(folds)]))
    return test_errors, held_error, test


def option_stats(model, x, targets, x_test, folds, specs) -> dict[str, Option]:
    """Every option's statistics from one pass over each angle of each parent set.

    ``specs``: ``[(parent, {in-class name: members}, {augmented name: members})]``,
    members as element indices of ``parent`` (element 0 the identity).
    In class H: the ridge on ``Φ̄_H = mean_{g∈H} Φ_g`` (what ``fit(x, y,
    symmetry=H)`` solves). Augmented H: Gram ``Σ_{g∈H} Φ_gᵀΦ_g`` over ``n|H|``
    rows with the labels repeated (what ``fit(orbit_augment(x, H), tile(y))``
    solves); its folds hold out every rotated copy of a held-out image and it
    is scored on the unrotated images, like the plain model.
    """
    plain = None
    averaged, augmented = {}, {}
    for parent, in_class_sets, augmented_sets in specs:
        wanted = set().union(*in_class_sets.values(), *augmented_sets.values())
        sums = {name: [0.0, 0.0] for name in in_class_sets}
        aug = dict.fromkeys(augmented_sets)
        for k in sorted(wanted):
            train_k = moved_features(model, parent, k, x)
            test_k = moved_features(model, parent, k, x_test)
            stats_k = None
            if k == 0 and plain is None:
                stats_k = _fold_stats(train_k, targets, folds)
                plain = Option(stats_k, train_k, test_k)
            for name, members in in_class_sets.items():
                if k in members:
                    sums[name][0] = sums[name][0] + train_k
                    sums[name][1] = sums[name][1] + test_k
            for name, members in augmented_sets.items():
                if k in members:
                    stats_k = _fold_stats(train_k, targets, folds) if stats_k is None else stats_k
                    aug[name] = _add(aug[name], stats_k)
        for name, (train_sum, test_sum) in sums.items():
            size = len(in_class_sets[name])
            mean = train_sum / size
            averaged[name] = Option(_fold_stats(mean, targets, folds), mean, test_sum / size)
        augmented.update(aug)
    out = {"plain": plain, **averaged}
    for name, stats_ in augmented.items():
        out[name] = Option(stats_, plain.held, plain.test)
    return out


def mnist_specs(cfg) -> list:
    ranges = sorted({*cfg["ranges"], *cfg["augment"]})
    parent = range_set(ranges[-1])
    magnitudes = np.degrees(groups.element_magnitudes(parent))
    members = {}
    for r in ranges:
        members[r] = {int(k) for k in np.flatnonzero(magnitudes <= r + 1e-3)}
        if len(members[r]) != range_set(r).size:  # the same angles as range_set(r)
            raise AssertionError(f"±{r}°: {len(members[r])} angles, not {range_set(r).size}")
    full = range_set(None)
    everything = set(range(full.size))
    return [
        (
            parent,
            {f"in class {range_label(r)}": members[r] for r in cfg["ranges"]},
            {f"augmented {range_label(r)}": members[r] for r in cfg["augment"]},
        ),
        (full, {"in class full (16)": everything}, {"augmented full (16)": everything}),
    ]


def rotated_specs(cfg) -> list:
    largest = max(cfg["rotated_counts"])
    parent = groups.image_rotations(largest)
    in_class_sets = {}
    for count in cfg["rotated_counts"]:
        if largest % count:
            raise ValueError(f"rotated_counts must divide {largest}; got {count}.")
        in_class_sets[f"in class {count} rotations"] = set(range(0, largest, largest // count))
    return [(parent, in_class_sets, {})]


# ----------------------------------------------------------------------------- one seed


def screen_label(choice) -> str:
    if choice.name == "none" or choice.t_star >= 1.0:
        return "none"
    angles = np.degrees(groups.element_magnitudes(choice.group))
    return f"±{round(float(angles.max()))}° at t = {choice.t_star:g}"


def verify(fit, x, targets, x_test, options, folds, y, y_test, ridge, names) -> dict:
    """Shared-feature models against the package's own calls: max |Δ test output|."""
    checks = {}
    for name in names:
        if name not in options:
            continue
        if name.startswith("augmented"):
            group = range_set(int(name.split("±")[1].rstrip("°")))
            model = fit(groups.orbit_augment(x, group), jnp.tile(targets, (group.size, 1)))
        elif name.endswith("rotations"):
            group = groups.image_rotations(int(name.split()[2]))
            model = fit(x, targets, symmetry=in_class(group))
        else:
            degrees = name.split("±")[1].rstrip("°")
            model = fit(x, targets, symmetry=in_class(range_set(int(degrees))))
        reference = np.asarray(predict(model, x_test))
        ours = np.asarray(evaluate(options[name], folds, y, y_test, ridge)[2])
        checks[name] = {
            "max_abs_output_difference": float(np.max(np.abs(ours - reference))),
            "argmax_agreement": float(np.mean(ours.argmax(1) == reference.argmax(1))),
        }
    return checks


def one_seed(data, n: int, seed: int, ridge: float | None, specs, cfg, *, screen: bool,
             check_names: tuple[str, ...]) -> dict:  # fmt: skip
    """Train every option on one seed's split; ``ridge=None``: choose (A)'s λ here."""
    images, labels = data
    train, test = split(seed, n)
    x, y = jnp.asarray(images[train]), labels[train]
    x_test, y_test = jnp.asarray(images[test]), labels[test]
    targets = jax.nn.one_hot(y, 10)
    lengthscale = median_distance(images[train])
    key, fold_key = jax.random.key(seed), jax.random.key(1000 + seed)
    folds = jaxsym.cross_fitting_folds(n, NUM_FOLDS, key=fold_key)  # the screen's folds
    fold_index = jnp.asarray(np.stack(folds))
    seconds, checks = {}, {}

    clock = Clock()
    # W, b depend on the key, the lengthscale and the input size only: any fit gives them.
    feature_model = jaxsym.random_features_ridge(
        NUM_FEATURES, RIDGES[-1], key=key, lengthscale=lengthscale
    )(x[:2], targets[:2])
    options = option_stats(feature_model, x, targets, x_test, fold_index, specs)
    test_by_ridge, held_by_ridge, test_errors = {}, {}, {}
    for name, option in options.items():
        # (B) cross-fits the plain and in-class models; the augmented ones are only tested
        cross_fit = not name.startswith("augmented")
        test_by_ridge[name] = {}
        if cross_fit:
            held_by_ridge[name] = {}
        for r in RIDGES:
            errs, held, _ = evaluate(option, fold_index, y, y_test, r, cross_fit=cross_fit)
            test_errors[name, r] = errs
            test_by_ridge[name][f"{r:g}"] = float(errs.mean())
            if cross_fit:
                held_by_ridge[name][r] = held
    seconds["shared features, every option at every λ"] = clock.read()
    chosen_here = ridge is None
    if chosen_here:
        ridge = pick_ridge(held_by_ridge["plain"])

    # (A): λ fixed for the seed's options; plain through the package's fit()
    fit = jaxsym.random_features_ridge(NUM_FEATURES, ridge, key=key, lengthscale=lengthscale)
    clock = Clock()
    errors = {"plain": errors_of(fit(x, targets), x_test, y_test)}
    seconds["plain via fit()"] = clock.read()
    checks[PLAIN_CHECK] = abs(float(errors["plain"].mean()) - test_by_ridge["plain"][f"{ridge:g}"])
    for name in options:
        if name != "plain":
            errors[name] = test_errors[name, ridge]
    # (B): λ per option, cross-fitted on this seed's training set
    tuned_ridge = {name: pick_ridge(held) for name, held in held_by_ridge.items()}
    tuned = {name: test_errors[name, r] for name, r in tuned_ridge.items()}

    screen_record = None
    if screen:
        clock = Clock()
        choice = jaxsym.choose_symmetry(
            x, targets, range_set(cfg["screen_range"]), fit=fit, key=fold_key, t_grid=SCREEN_T_GRID,
            num_folds=NUM_FOLDS, loss="zero_one",
        )  # fmt: skip
        errors["screen pick"] = errors_of(choice.model, x_test, y_test)
        seconds["screen"] = clock.read()
        rows = [
            {"set": nm, "size": int(sz), "t": float(t), "risk": float(rk), "stderr": float(se)}
            for nm, sz, t, rk, se in zip(
                choice.names, choice.sizes, choice.levels, choice.risks, choice.stderrs,
                strict=True,
            )
        ]  # fmt: skip
        screen_record = {
            "pick": screen_label(choice),
            "elements": choice.elements.tolist(),
            "t_star": choice.t_star,
            "cross_fitted": rows,
            "reason": choice.reason,
        }
        # the screen's cross-fitted errors (same folds, same λ) against the shared features'
        gaps = {}
        for name in options:
            if name == "plain":
                size = 1
            elif name.startswith("in class ±"):
                size = 2 * int(name.split("±")[1].rstrip("°")) // STEP_DEG + 1
            else:
                continue
            risk = [r["risk"] for r in rows if r["size"] == size and r["t"] in (0.0, 1.0)]
            if risk:  # the in-class ranges the screen also cross-fitted
                gaps[name] = abs(risk[0] - held_by_ridge[name][ridge])
        checks[SCREEN_CHECK] = max(gaps.values())
    if check_names:
        clock = Clock()
        checks["fit() vs shared features"] = verify(
            fit, x, targets, x_test, options, fold_index, y, y_test, ridge, check_names
        )
        seconds["checks against fit()"] = clock.read()

    certify = np.arange(CERTIFY_SIZE)
    models = {**errors, **{f"λ per option: {name}": e for name, e in tuned.items()}}
    certificates = {}
    for name, e in models.items():
        bound = jaxsym.held_out_bound(e[certify], delta=DELTA, num_options=len(models))
        certificates[name] = {"bound": bound.bound, "empirical": bound.empirical}
    return {
        "seed": seed,
        "lengthscale": lengthscale,
        "ridge": ridge,
        "ridge_chosen_on_this_seed": chosen_here,
        "cross_fitted_error_plain": {f"{r:g}": v for r, v in held_by_ridge["plain"].items()},
        "test_error": {name: float(e.mean()) for name, e in errors.items()},
        "tuned": {
            "ridge": tuned_ridge,
            "test_error": {name: float(e.mean()) for name, e in tuned.items()},
            "cross_fitted_error": {
                name: {f"{r:g}": v for r, v in row.items()} for name, row in held_by_ridge.items()
            },
        },
        "test_error_by_ridge": test_by_ridge,
        "certificate": certificates,
        "num_models_certified": len(models),
        "certify_size": CERTIFY_SIZE,
        "screen": screen_record,
        "checks": checks,
        "seconds": seconds,
    }


def study(name: str, load, sizes, specs, cfg, emit, *, screen_seeds=(), check_names=()) -> dict:
    out = {}
    for n in sizes:
        clock, ridge, runs = Clock(), None, []
        for seed in cfg["seeds"]:
            run = one_seed(
                load(seed), n, seed, ridge, specs, cfg, screen=seed in screen_seeds,
                check_names=check_names if seed == cfg["seeds"][0] else (),
            )  # fmt: skip
            if ridge is None:
                ridge = run["ridge"]
                emit(
                    f"{name}, n = {n}: λ = {ridge:g} (A: 5-fold cross-fitted 0-1 error of the "
                    f"plain model on seed {seed}'s training set: "
                    + ", ".join(f"{k}: {v:.3f}" for k, v in run["cross_fitted_error_plain"].items())
                    + ")"
                )
            runs.append(run)
            best = min(run["test_error"], key=run["test_error"].get)
            pick = f", screen pick {run['screen']['pick']}" if run["screen"] else ""
            wall = sum(s["wall_s"] for s in run["seconds"].values())
            emit(
                f"  seed {seed}: plain {run['test_error']['plain']:.3f}, lowest (A) {best} "
                f"{run['test_error'][best]:.3f}{pick} ({wall:.0f} s)"
            )
        out[str(n)] = {"ridge": ridge, "runs": runs, "seconds": clock.read()}
    return out


# ----------------------------------------------------------------------------- analysis


def tables(block: dict, names: list[str]) -> dict:
    """Per option: (A) and (B) mean ± SE over seeds, per seed, certificates, (B)'s λ."""
    runs = block["runs"]
    out = {"A": {}, "B": {}, "by_ridge": {}}
    for name in names:
        have = [run for run in runs if name in run["test_error"]]
        per_seed = [run["test_error"][name] for run in have]
        mean, se = mean_se(per_seed)
        out["A"][name] = {
            "mean": mean, "se": se, "seeds": [run["seed"] for run in have], "per_seed": per_seed,
            "certificate_per_seed": [run["certificate"][name]["bound"] for run in have],
        }  # fmt: skip
        if name in runs[0]["tuned"]["test_error"]:
            per_seed = [run["tuned"]["test_error"][name] for run in runs]
            mean, se = mean_se(per_seed)
            out["B"][name] = {
                "mean": mean, "se": se, "per_seed": per_seed,
                "ridge_per_seed": [run["tuned"]["ridge"][name] for run in runs],
                "certificate_per_seed": [
                    run["certificate"][f"λ per option: {name}"]["bound"] for run in runs
                ],
            }  # fmt: skip
    for name in runs[0]["test_error_by_ridge"]:
        out["by_ridge"][name] = {
            r: float(np.mean([run["test_error_by_ridge"][name][r] for run in runs]))
            for r in runs[0]["test_error_by_ridge"][name]
        }
    return out


def compare(per_n: dict, protocol: str, pairs) -> list[dict]:
    """Paired comparisons ``(option, against)`` at every n under one protocol."""
    out = []
    for n, tab in per_n.items():
        for option, against in pairs:
            c = paired(tab[protocol][option]["per_seed"], tab[protocol][against]["per_seed"])
            out.append(
                {"protocol": protocol, "n": int(n), "option": option, "against": against, **c}
            )
    return out


def option_names(cfg) -> list[str]:
    names = ["plain"] + [f"in class {range_label(r)}" for r in [*cfg["ranges"], None]]
    names += [f"augmented {range_label(r)}" for r in [*cfg["augment"], None]]
    return [*names, "screen pick"]


def summarize(cfg, mnist_runs: dict, rotated_runs: dict) -> dict:
    names = option_names(cfg)
    per_n = {n: tables(block, names) for n, block in mnist_runs.items()}
    intermediate = [f"in class {range_label(r)}" for r in cfg["ranges"]]
    pairs = [(r, other) for r in intermediate for other in ("plain", "in class full (16)")]
    comparisons = compare(per_n, "A", pairs) + compare(per_n, "B", pairs)
    holm(comparisons)
    winners = {}
    for protocol in ("A", "B"):
        winners[protocol] = {}
        for n in per_n:
            winners[protocol][n] = [
                r for r in intermediate
                if all(
                    c["significant"] and c["diff"] < 0 for c in comparisons
                    if c["protocol"] == protocol and c["n"] == int(n) and c["option"] == r
                )
            ]  # fmt: skip
    rotated_names = ["plain"] + [f"in class {c} rotations" for c in cfg["rotated_counts"]]
    rotated_per_n = {n: tables(block, rotated_names) for n, block in rotated_runs.items()}
    rotated_pairs = [(name, "plain") for name in rotated_names[1:]]
    if len(rotated_names) == 3:
        rotated_pairs.append((rotated_names[2], rotated_names[1]))
    rotated_comparisons = compare(rotated_per_n, "A", rotated_pairs)
    rotated_comparisons += compare(rotated_per_n, "B", rotated_pairs)
    holm(rotated_comparisons)
    m = len(comparisons)
    return {
        "mnist": per_n,
        "comparisons": comparisons,
        "winners": winners,
        "chance": {
            "num_comparisons": m,
            "alpha": ALPHA,
            "expected_false_calls_uncorrected": ALPHA * m,
            "holm_familywise_error_at_most": ALPHA,
            "significant_calls_holm": sum(c["significant"] for c in comparisons),
        },
        "rotated": rotated_per_n,
        "rotated_comparisons": rotated_comparisons,
    }


def _table(emit, title, per_n, protocol, names, ridges=None):
    sizes = list(per_n)
    emit("")
    emit(title)
    emit("")
    emit("| option | " + " | ".join(f"n = {n}" for n in sizes) + " |")
    emit("|---|" + "---:|" * len(sizes))
    if ridges:
        emit("| λ | " + " | ".join(f"{ridges[n]:g}" for n in sizes) + " |")
    for name in names:
        if name not in per_n[sizes[0]][protocol]:
            continue
        cells = [
            fmt(per_n[n][protocol][name]["mean"], per_n[n][protocol][name]["se"]) for n in sizes
        ]
        emit(f"| {name} | " + " | ".join(cells) + " |")


def _comparison_table(emit, comparisons, winners, option_pairs) -> None:
    emit("| protocol | n | range | − plain | p (Holm) | − full (16) | p (Holm) | beats both |")
    emit("|---|---:|---|---:|---:|---:|---:|---|")
    for protocol in ("A", "B"):
        for n in winners[protocol]:
            for option in option_pairs:
                pair = {
                    c["against"]: c for c in comparisons
                    if c["protocol"] == protocol and c["n"] == int(n) and c["option"] == option
                }  # fmt: skip
                a, b = pair["plain"], pair["in class full (16)"]
                emit(
                    f"| {protocol} | {n} | {option.removeprefix('in class ')} | "
                    f"{a['diff']:+.3f} ± {a['se']:.3f} | {a['p_holm']:.2g} | "
                    f"{b['diff']:+.3f} ± {b['se']:.3f} | {b['p_holm']:.2g} | "
                    f"{'yes' if option in winners[protocol][n] else 'no'} |"
                )


def report(cfg, mnist_runs, rotated_runs, summary, emit) -> None:
    names = option_names(cfg)
    per_n = summary["mnist"]
    sizes = list(per_n)
    seeds = len(cfg["seeds"])
    ridges = {n: mnist_runs[n]["ridge"] for n in sizes}
    _table(
        emit,
        f"MNIST test error (1000 test images), mean ± SE over {seeds} seeds. (A): λ per n from "
        "the plain model's cross-fit on seed 0 (the study's protocol)",
        per_n, "A", names, ridges,
    )  # fmt: skip
    _table(
        emit,
        f"(B): λ per option and seed, each option's own 5-fold cross-fit on the training set "
        f"(mean ± SE over {seeds} seeds; the λ picked per seed are in the per-seed table; "
        "plain and in-class options only)",
        per_n, "B", names,
    )  # fmt: skip
    emit("")
    emit(
        "Per seed: test error (A), certificate (A), test error (B) with λ, certificate (B). "
        f"Certificates: held_out_bound, 0-1 loss, δ = {DELTA}, union over the K models trained "
        f"on the seed (both protocols), on the first {CERTIFY_SIZE} test images"
    )
    emit("")
    emit("| n | option | test error (A) | certificate (A) | test error (B) [λ] | certificate (B) |")
    emit("|---:|---|---|---|---|---|")
    for n in sizes:
        for name in names:
            a = per_n[n]["A"][name]
            b = per_n[n]["B"].get(name)
            cells = [
                " ".join(f"{v:.3f}" for v in a["per_seed"]),
                " ".join(f"{v:.3f}" for v in a["certificate_per_seed"]),
                " ".join(f"{v:.3f} [{r:g}]" for v, r in zip(b["per_seed"], b["ridge_per_seed"],
                                                             strict=True)) if b else "-",
                " ".join(f"{v:.3f}" for v in b["certificate_per_seed"]) if b else "-",
            ]  # fmt: skip
            emit(f"| {n} | {name} | " + " | ".join(cells) + " |")
    ks = sorted({run["num_models_certified"] for b in mnist_runs.values() for run in b["runs"]})
    emit("")
    emit(
        f"K = {' or '.join(map(str, ks))} models per seed; nothing was chosen on the test images, "
        f"so each seed's bounds hold together with probability ≥ {1 - DELTA:g}."
    )
    emit("")
    emit(
        f"The screen's pick per seed (choose_symmetry over the nested ranges of "
        f"±{cfg['screen_range']}°, "
        "t ∈ {0, 0.5, 1}, 0-1 loss, 5 folds, λ of (A)):"
    )
    emit("")
    emit("| n | " + " | ".join(f"seed {s}" for s in cfg["seeds"]) + " |")
    emit("|---:|" + "---|" * seeds)
    for n in sizes:
        picks = [run["screen"]["pick"] if run["screen"] else "-" for run in mnist_runs[n]["runs"]]
        emit(f"| {n} | " + " | ".join(picks) + " |")
    emit("")
    emit(
        "Test error at each λ of the grid, mean over seeds (a diagnostic read off the test "
        "images; nothing is chosen from it)"
    )
    for n in sizes:
        grid = per_n[n]["by_ridge"]
        grid_ridges = list(next(iter(grid.values())))
        emit("")
        emit(f"| n = {n} | " + " | ".join(f"λ = {r}" for r in grid_ridges) + " |")
        emit("|---|" + "---:|" * len(grid_ridges))
        for name, row in grid.items():
            emit(f"| {name} | " + " | ".join(f"{row[r]:.3f}" for r in grid_ridges) + " |")
    emit("")
    chance = summary["chance"]
    emit(
        "Does an intermediate range (in class) beat both plain and the full circle? Paired "
        "difference in test error (range − other; negative: the range is better) ± paired SE "
        f"over {seeds} seeds, two-sided paired t-test (df = {seeds - 1}), Holm over all "
        f"{chance['num_comparisons']} comparisons (both protocols)"
    )
    emit("")
    intermediate = [f"in class {range_label(r)}" for r in cfg["ranges"]]
    _comparison_table(emit, summary["comparisons"], summary["winners"], intermediate)
    emit("")
    for protocol in ("A", "B"):
        for n, winners in summary["winners"][protocol].items():
            if winners:
                text = ", ".join(w.removeprefix("in class ") for w in winners)
                emit(f"({protocol}) n = {n}: beats both plain and the full circle (Holm): {text}.")
            else:
                emit(f"({protocol}) n = {n}: no intermediate range beats both after Holm.")
    emit(
        f"Significant calls (Holm, α = {ALPHA}): {chance['significant_calls_holm']} of "
        f"{chance['num_comparisons']}. Chance alone: if no option differed, "
        f"{chance['expected_false_calls_uncorrected']:.1f} of the {chance['num_comparisons']} "
        f"would be called significant on average at α = {ALPHA} uncorrected; Holm keeps the "
        f"probability of even one false call ≤ {ALPHA}."
    )
    rotated_names = ["plain"] + [f"in class {c} rotations" for c in cfg["rotated_counts"]]
    rotated_ridges = {n: rotated_runs[n]["ridge"] for n in rotated_runs}
    _table(
        emit,
        f"Rotated MNIST (rotated_mnist(seed=s)), test error, mean ± SE over {seeds} seeds, (A)",
        summary["rotated"], "A", rotated_names, rotated_ridges,
    )  # fmt: skip
    _table(emit, "Rotated MNIST, (B)", summary["rotated"], "B", rotated_names)
    emit("")
    for c in summary["rotated_comparisons"]:
        emit(
            f"rotated ({c['protocol']}), n = {c['n']}: {c['option']} − {c['against']} = "
            f"{c['diff']:+.3f} ± {c['se']:.3f} (Holm p = {c['p_holm']:.2g} over "
            f"{len(summary['rotated_comparisons'])})"
        )
    emit("")
    for label, block in (("MNIST", mnist_runs), ("rotated MNIST", rotated_runs)):
        for n, b in block.items():
            checks = b["runs"][0]["checks"]
            parts = [f"plain fit() vs shared: |Δ error| {checks[PLAIN_CHECK]:.1e}"]
            for name, c in checks.get("fit() vs shared features", {}).items():
                parts.append(
                    f"{name}: max |Δ output| {c['max_abs_output_difference']:.1e}, argmax "
                    f"agreement {c['argmax_agreement']:.3f}"
                )
            gaps = [
                run["checks"][SCREEN_CHECK]
                for run in b["runs"] if SCREEN_CHECK in run["checks"]
            ]  # fmt: skip
            if gaps:
                parts.append(f"screen vs shared cross-fitted errors: max |Δ| {max(gaps):.1e}")
            emit(f"check, {label} n = {n}: " + "; ".join(parts))


# ----------------------------------------------------------------------------- main


def one_blas_thread() -> str:
    """Run LAPACK (which jax's CPU Cholesky calls, through scipy's OpenBLAS) on one thread.

    OpenBLAS's worker threads spin while they wait; on a shared 2-core machine
    a 1024 × 1024 Cholesky ran several times slower with them than on one thread.
    XLA's own matrix products keep their thread pool.
    """
    try:
        import threadpoolctl
    except ImportError:
        return "threadpoolctl not installed: BLAS threads left as they are"
    threadpoolctl.threadpool_limits(1, user_api="blas")
    return "BLAS/LAPACK on one thread (threadpoolctl)"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 500, 2 seeds, fewer options")
    parser.add_argument("--out", type=str, default=None, help="JSON path")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.out:
        out = Path(args.out)
    else:
        out = Path(tempfile.gettempdir()) / "mnist_rotation.quick.json" if args.quick else RESULTS
    lines: list[str] = []

    def emit(line: str) -> None:
        lines.append(line)
        print(line, flush=True)

    blas = one_blas_thread()
    total = Clock()
    info = {**machine_info(), "blas": blas}
    emit(json.dumps(info))
    emit(NOT_A_CNN)
    upright = mnist()
    mnist_runs = study(
        "MNIST", lambda seed: upright, cfg["sizes"], mnist_specs(cfg), cfg, emit,
        screen_seeds=cfg["screen_seeds"],
        check_names=("in class ±15°", "in class ±90°", "augmented ±15°"),
    )  # fmt: skip

    @functools.lru_cache(maxsize=len(cfg["seeds"]))
    def rotated(seed):
        data = rotated_mnist(seed=seed)
        return data.x, data.y

    rotated_runs = study(
        "rotated MNIST", rotated, cfg["rotated_sizes"], rotated_specs(cfg), cfg, emit,
        check_names=(f"in class {cfg['rotated_counts'][0]} rotations",),
    )  # fmt: skip
    summary = summarize(cfg, mnist_runs, rotated_runs)
    report(cfg, mnist_runs, rotated_runs, summary, emit)
    seconds = total.read()
    emit("")
    emit(f"total: {seconds['wall_s']:.0f} s wall, {seconds['cpu_s']:.0f} s CPU")
    result = {
        "machine": info,
        "quick": args.quick,
        "model": NOT_A_CNN,
        "config": {
            **{k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()},
            "num_features": NUM_FEATURES,
            "ridges": list(RIDGES),
            "num_folds": NUM_FOLDS,
            "test_size": TEST_SIZE,
            "certify_size": CERTIFY_SIZE,
            "delta": DELTA,
            "alpha": ALPHA,
            "screen_t_grid": list(SCREEN_T_GRID),
        },
        "options": option_names(cfg),
        "mnist": mnist_runs,
        "rotated_mnist": rotated_runs,
        "summary": summary,
        "seconds": seconds,
        "printed": lines,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
