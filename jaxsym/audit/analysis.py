"""The audit's numeric steps: each one call into jaxsym, in one small function.

Every dependency of the audit on jaxsym's numeric API sits in exactly one
function below, so that an API change is adapted at one call site:

============================ ==================================================
function                     jaxsym call (docs/theory.md section)
============================ ==================================================
:func:`data_profile`         ``data_defect(x, y, group, "knn")`` (§6)
:func:`stabilizers`          ``stabilizer``, ``stabilizer_measure`` (§2)
:func:`candidate_sets`       ``subgroups.subgroup_chain`` (§5)
:func:`covering`             ``covering.nested_covering_numbers`` (§4)
:func:`loss_constants`       ``squared_loss_constants`` (§4)
:func:`bound_curve`          ``generalization_bound_from_table``,
                             ``approximation_error`` (§4, §5)
:func:`bound_subset`         ``generalization_bound_from_table`` (§4, §5)
:func:`make_fit`             ``random_features_ridge`` (§8)
:func:`predicted_level`      ``predictive_tradeoff`` (§8)
:func:`symmetric_model`      ``symmetrize`` (§3)
:func:`dialed_model`         ``dial`` (§3)
:func:`bound_regularizer`    ``training.bound_regularizer`` (§7), if present
============================ ==================================================

The constants of the bound are *estimated* here (a Lipschitz constant measured
on the sample, output and label bounds read off the labels), so every bound the
audit prints is an estimate of the certified bound (docs/theory.md §4).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxsym
from jaxsym import bounds as _bounds
from jaxsym import covering as _covering
from jaxsym import subgroups
from jaxsym.approximation import default_eps_grid
from jaxsym.groups import TransformationSet

__all__ = [
    "BoundCurve",
    "DataProfile",
    "LossSetting",
    "bound_curve",
    "bound_regularizer",
    "bound_subset",
    "candidate_sets",
    "count_subgroups",
    "covering",
    "covering_radii",
    "dialed_model",
    "filled_profile",
    "lipschitz_estimate",
    "loss_constants",
    "make_fit",
    "median_distance",
    "predicted_level",
    "stabilizers",
    "subgroup",
    "symmetric_model",
]


# ----------------------------------------------------------------------------- 1. profile


class DataProfile(NamedTuple):
    """The data's kNN profile (docs/theory.md §6), as NumPy arrays.

    Attributes:
        profile: ``(|G|,)`` ``mean ‖y_j − ρ_Y(g) y_i‖²`` over matched samples.
        excess: ``(|G|,)`` ``profile − baseline``: estimates ``E_x e_{f*}(x, g)²``.
        stderr: ``(|G|,)`` standard error of ``excess``.
        matched_fraction: ``(|G|,)`` fraction of samples matched within the radius.
        rms: ``(|G|,)`` ``√max(excess, 0)``, the RMS data profile ``E_2(g)``
            (NaN where nothing was matched).
        baseline: the identity's level (``≈ 2σ²``).
        radius: the matching radius.
    """

    profile: np.ndarray
    excess: np.ndarray
    stderr: np.ndarray
    matched_fraction: np.ndarray
    rms: np.ndarray
    baseline: float
    radius: float


def data_profile(x: np.ndarray, targets: np.ndarray, group: TransformationSet) -> DataProfile:
    """The data's per-element equivariance profile by nearest-orbit matching (§6)."""
    result = jaxsym.data_defect(jnp.asarray(x), jnp.asarray(targets), group, method="knn")
    excess = np.asarray(result.excess, np.float64)
    return DataProfile(
        profile=np.asarray(result.profile, np.float64),
        excess=excess,
        stderr=np.asarray(result.stderr, np.float64),
        matched_fraction=np.asarray(result.matched_fraction, np.float64),
        rms=np.sqrt(np.maximum(excess, 0.0)),
        baseline=float(result.baseline),
        radius=float(result.radius),
    )


def filled_profile(profile: DataProfile, targets: np.ndarray) -> np.ndarray:
    """The RMS profile with unmatched elements set to the unrelated-labels level.

    An element that matches no sample gives no evidence of symmetry; it is given
    ``(2 mean ‖y − ȳ‖²)^{1/2}``, the RMS distance between two independent labels.
    """
    flat = np.asarray(targets, np.float64).reshape(len(targets), -1)
    unrelated = float(np.sqrt(2 * np.mean(np.sum((flat - flat.mean(0)) ** 2, axis=1))))
    rms = np.where(np.isnan(profile.rms), unrelated, profile.rms)
    rms[0] = 0.0  # the identity
    return rms


# ----------------------------------------------------------------------------- 2. stabilizers


def stabilizers(rms: np.ndarray, tolerances) -> list[tuple[np.ndarray, float]]:
    """``Stab_ε`` (element indices) and its Haar measure at each tolerance (§2)."""
    rows = []
    for eps in tolerances:
        mask = np.asarray(jaxsym.stabilizer(jnp.asarray(rms), float(eps)))
        measure = float(jaxsym.stabilizer_measure(jnp.asarray(rms), float(eps)))
        rows.append((np.flatnonzero(mask), measure))
    return rows


# ----------------------------------------------------------------------------- 3. covering


def subgroup(group: TransformationSet, indices, name: str) -> TransformationSet:
    """The elements ``indices`` of ``group`` as a set, flagged a group if they form one.

    ``indices`` come from :func:`candidate_sets`, whose sets are subgroups when
    ``group`` is a group.
    """
    subset = group.subset(np.asarray(indices), name=name)
    return dataclasses.replace(subset, is_group=group.is_group)


def candidate_sets(
    group: TransformationSet, rms: np.ndarray, stabilizer_sets: list[np.ndarray]
) -> list[np.ndarray]:
    """Nested candidate symmetry sets ``{e} = S_1 ⊂ … ⊂ S_K = G`` (docs/theory.md §5).

    For a finite group, the subgroups generated by the elements in the order of
    the data's profile (most symmetric first); otherwise the nested ε-stabilizers.
    """
    if group.is_group:
        chain = list(subgroups.subgroup_chain(group, rms))
    else:
        chain = [np.zeros(1, np.int64)]
        for members in [*stabilizer_sets, np.arange(group.size)]:
            members = np.union1d(members, [0])
            if len(members) > len(chain[-1]):
                chain.append(members)
    if len(chain[-1]) < group.size:
        chain.append(np.arange(group.size))
    return [np.asarray(c, np.int64) for c in chain]


def covering_radii(x: np.ndarray, num: int = 24, max_points: int = 1000) -> np.ndarray:
    """A geometric grid from half the smallest nearest-neighbour distance to the diameter.

    Below that scale every point is its own center (``N = n``), so the grid
    spends its radii where the counts change. Covering numbers are functions
    of the sample, so a data-dependent grid costs nothing in the bound (§4).
    """
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    sample = flat[:max_points]
    squares = (sample**2).sum(1)
    distances = squares[:, None] + squares[None] - 2 * sample @ sample.T
    np.fill_diagonal(distances, np.inf)
    nearest = np.sqrt(np.maximum(distances.min(1), 0.0))
    positive = nearest[nearest > 0]
    diameter = 2 * float(np.max(np.linalg.norm(flat - flat.mean(0), axis=1)))
    low = 0.5 * float(positive.min()) if positive.size else diameter * 1e-3
    low = min(max(low, diameter * 1e-4), diameter / 2)
    return np.geomspace(low, max(diameter, 1e-12), num)


def covering(
    x: np.ndarray, group: TransformationSet, candidates: list[np.ndarray], radii: np.ndarray
) -> np.ndarray:
    """Greedy orbit covering numbers ``N_S(X_n, r)`` of each nested candidate (§4).

    Returns:
        ``(K, R)`` counts; rows are non-increasing down the chain.
    """
    stages = [np.setdiff1d(candidates[0], [0])] + [
        np.setdiff1d(later, earlier) for earlier, later in itertools.pairwise(candidates)
    ]
    return np.asarray(_covering.nested_covering_numbers(jnp.asarray(x), group, radii, stages))


# ----------------------------------------------------------------------------- 4. bound


class LossSetting(NamedTuple):
    """The estimated constants of the bound (docs/theory.md §4), squared loss, as
    reported; :func:`_bound_constants` turns them into a :class:`jaxsym.BoundConstants`.
    """

    lipschitz: float
    output_bound: float
    label_bound: float
    output_dim: int
    loss_range: float
    loss_lipschitz: float
    delta: float = 0.05


def loss_constants(
    lipschitz: float, output_bound: float, label_bound: float, output_dim: int
) -> LossSetting:
    """Squared-loss constants ``B = (M√d_y + Y)²``, ``L_ℓ = 2(M√d_y + Y)`` (§4)."""
    loss = jaxsym.squared_loss_constants(output_bound, output_dim, label_bound)
    return LossSetting(
        lipschitz=float(lipschitz),
        output_bound=float(output_bound),
        label_bound=float(label_bound),
        output_dim=int(output_dim),
        loss_range=float(loss.loss_range),
        loss_lipschitz=float(loss.loss_lipschitz),
    )


def _bound_constants(constants: LossSetting) -> jaxsym.BoundConstants:
    return jaxsym.BoundConstants(
        lipschitz=constants.lipschitz,
        output_bound=constants.output_bound,
        loss=jaxsym.LossConstants(constants.loss_range, constants.loss_lipschitz),
        output_dim=constants.output_dim,
        delta=constants.delta,
    )


class BoundCurve(NamedTuple):
    """``σ² + A(ε) + Gen_n(ε)`` over ε, and its minimizer (docs/theory.md §5)."""

    eps: np.ndarray
    approximation: np.ndarray
    generalization: np.ndarray
    total: np.ndarray
    eps_star: float


def _generalization(table, trivial, eps: np.ndarray, num_levels: int, constants: LossSetting):
    """``Gen_n(S, ε)`` of docs/theory.md §4 at each ε, from covering tables (one jit, vmapped)."""
    bound_constants = _bound_constants(constants)

    def one(level):
        return _bounds.generalization_bound_from_table(
            table, trivial, constants=bound_constants, eps=level, num_levels=num_levels
        ).total

    return np.asarray(jax.jit(jax.vmap(one))(jnp.asarray(eps, jnp.float32)), np.float64)


def bound_curve(
    radii: np.ndarray,
    counts: np.ndarray,
    num_points: int,
    group_size: int,
    eta: float,
    constants: LossSetting,
) -> BoundCurve:
    """The bound-vs-ε curve ``A(ε) + Gen_n(ε)`` for the whole set (an estimate, §4, §5, §8).

    As :func:`jaxsym.tradeoff` with ``reduce="rms"`` (``A(ε) = (η_2 − ε)_+²``, the
    ``d_2 ≤ ε`` class), from the covering counts already computed: ``counts[0]``
    is ``{e}``, ``counts[-1]`` the whole set; the ε grid is
    :func:`jaxsym.approximation.default_eps_grid` (with η) and the union bound runs
    over its levels.
    """
    trivial, table = _covering.tables_from_counts(
        radii, counts[[0, -1]], num_points, [1, group_size]
    )
    eps = np.asarray(
        default_eps_grid(constants.output_bound, constants.output_dim, eta),
        np.float64,
    )
    generalization = _generalization(table, trivial, eps, len(eps), constants)
    error = jaxsym.approximation_error(float(eta), jnp.asarray(eps, jnp.float32)).upper
    error = np.asarray(error, np.float64)
    total = error + generalization
    return BoundCurve(
        eps=eps,
        approximation=error,
        generalization=generalization,
        total=total,
        eps_star=float(eps[int(np.argmin(total))]),
    )


def count_subgroups(group: TransformationSet) -> int:
    """How many candidate sets the data could have chosen: the union bound's K (§4).

    Every subgroup of ``group``; past the enumeration limit, every subset (``2^|G|``).
    """
    try:
        return len(subgroups.all_subgroups(group))
    except ValueError:  # more subgroups than the enumeration limit
        return 2**group.size


def bound_subset(
    radii: np.ndarray,
    counts: np.ndarray,
    candidates: list[np.ndarray],
    num_points: int,
    rms: np.ndarray,
    constants: LossSetting,
    num_levels: int | None = None,
) -> dict[str, Any]:
    """The bound-optimal candidate among exactly invariant classes (docs/theory.md §4, §5).

    As :func:`jaxsym.optimal_subset`, from the covering counts already computed
    (no second distance pass): for each candidate subgroup ``H``, approximation
    ``½ mean_{h∈H} E_2(h)²`` (exact for subgroups under H-invariant μ) plus the
    §4 bound at ε = 0 with ``N_H``. The candidates are ordered by a profile
    estimated from the same sample, so the union bound must count every set the
    data could have chosen: ``num_levels`` (e.g. the number of all subgroups of
    G, :func:`jaxsym.all_subgroups`); ``None`` counts only the chain.
    """
    tables = _covering.tables_from_counts(radii, counts, num_points, [len(c) for c in candidates])
    zero = np.zeros(1)
    generalization = np.array(
        [
            _generalization(t, None, zero, num_levels or len(candidates), constants)[0]
            for t in tables
        ]
    )
    approximation = np.array([0.5 * float(np.mean(rms[c] ** 2)) for c in candidates])
    total = approximation + generalization
    index = int(np.argmin(total))
    return {
        "elements": candidates[index],
        "index": index,
        "approximation": approximation,
        "generalization": generalization,
        "total": total,
    }


def lipschitz_estimate(model, x: np.ndarray, max_points: int = 64) -> float:
    """``max_i ‖J_f(x_i)‖₂`` over a sample: an estimate of ``Lip(f)``, not a certificate."""
    points = jnp.asarray(x[:max_points])

    def one(point):
        jac = jax.jacrev(lambda p: model(p[None]).reshape(-1))(point)
        return jnp.linalg.norm(jac.reshape(jac.shape[0], -1), ord=2)

    return float(jnp.max(jax.lax.map(one, points)))


# ----------------------------------------------------------------------------- 5. level


def median_distance(x: np.ndarray, max_points: int = 256, seed: int = 0) -> float:
    """Median pairwise distance of a subsample (the random features' lengthscale)."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    flat = flat[rng.permutation(len(flat))[:max_points]]
    distances = np.sqrt(np.maximum(((flat[:, None] - flat[None]) ** 2).sum(-1), 0.0))
    upper = distances[np.triu_indices(len(flat), 1)]
    median = float(np.median(upper)) if upper.size else 1.0
    return median if median > 0 else 1.0


def make_fit(num_features: int, ridge: float, lengthscale: float, key: jax.Array):
    """A random-features ridge regressor ``fit(x, y) -> model`` (docs/theory.md §8).

    The fit is deterministic given ``key``, so it is memoized on the bytes of
    ``(x, y)``: the cross-fitting folds are shared by every candidate set.
    """
    try:  # after the API change it lives in jaxsym.models
        from jaxsym.models import random_features_ridge
    except ImportError:
        from jaxsym.predictive import random_features_ridge
    fit = random_features_ridge(num_features, ridge, key=key, lengthscale=lengthscale)
    cache: dict[bytes, Any] = {}

    def memoized(x, y):
        digest = hashlib.blake2b(digest_size=16)
        for array in (x, y):
            array = np.asarray(array)
            digest.update(repr((array.shape, array.dtype.str)).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        key_bytes = digest.digest()
        if key_bytes not in cache:
            cache[key_bytes] = fit(x, y)
        return cache[key_bytes]

    return memoized


def predicted_level(
    fit, x: np.ndarray, targets: np.ndarray, group: TransformationSet, key, *, exact: bool = True
):
    """Cross-fitted best dial level ``t*`` and ``ε* = t* d_2(f̂)`` on a set (§8).

    For a group (``exact=True``) this is :func:`jaxsym.predictive_tradeoff` as
    is. For a set that is not a group (a rotation range, a Monte Carlo sample of
    SO(3)) the average ``Q_ν`` is not a projection (docs/theory.md §3), but the
    held-out risk of ``Q_ν f̂ + t (f̂ − Q_ν f̂)`` is still exactly the quadratic
    ``A − 2tB + t²C``: the set is passed as if it were a group and the
    bias-corrected level (which assumes a projection) is replaced by the
    cross-fitted minimizer ``t_star_cv``; ``distance`` is then ``‖f̂ − Q_ν f̂‖``.
    """
    if not exact:
        group = dataclasses.replace(group, is_group=True)
    result = jaxsym.predictive_tradeoff(
        fit, jnp.asarray(x), jnp.asarray(targets), group, num_folds=5, key=key
    )
    if not exact:
        result = result._replace(
            t_star=result.t_star_cv, eps_star=result.t_star_cv * result.distance
        )
    return result


# ----------------------------------------------------------------------------- 6. models


def symmetric_model(f, group: TransformationSet):
    """``Q_G f`` (docs/theory.md §3)."""
    return jaxsym.symmetrize(f, group)


def dialed_model(f, group: TransformationSet, t: float):
    """``f_t = Q_G f + t (f − Q_G f)`` (docs/theory.md §3)."""
    return jaxsym.dial(f, group, t)


def bound_regularizer(x, targets, group, candidates, fit, key):
    """The bound regularizer of docs/theory.md §7, or ``None`` where jaxsym has none yet.

    TODO(integrator): ``jaxsym.training.bound_regularizer(x, y, group, *, fit,
    candidates=None, beta=None, num_folds=5, key)`` is written in parallel. Once
    it is merged this returns the regularizer and the training sweep trains
    ``reg.model(f)`` with ``loss + reg(g, x_batch)`` and evaluates
    ``reg.freeze(f, x)``; check that signature here and in ``sweep.py``.
    """
    try:
        from jaxsym.training import bound_regularizer as build
    except ImportError:
        return None
    return build(
        jnp.asarray(x), jnp.asarray(targets), group, fit=fit, candidates=candidates, key=key
    )
