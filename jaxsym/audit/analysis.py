"""The audit's numeric steps: each one call into jaxsym, in one small function.

Every dependency of the audit on jaxsym's numeric API sits in exactly one
function below, so that an API change is adapted at one call site. The audit
asks each question once, of the library:

============================ ==================================================
function                     jaxsym call (docs/theory.md section)
============================ ==================================================
:func:`data_profile`         ``data_defect(x, y, group, "knn")`` (§6)
:func:`stabilizers`          ``stabilizer``, ``stabilizer_measure`` (§2)
:func:`screen`               ``choose_symmetry`` — which set, how strictly (§8b, §9)
:func:`certify`              ``held_out_bound`` — the certificate (§9)
:func:`covering`             ``covering.nested_covering_numbers`` (§4)
:func:`bound_constants`      ``squared_loss_constants``, ``BoundConstants`` (§4)
:func:`theory_bound`         ``generalization_bound_from_table`` (§4)
:func:`make_fit`             ``random_features_ridge`` — the reference model (§8b)
============================ ==================================================

The constants of the theory bound are *estimated* (a Lipschitz constant
measured on the sample, output and label bounds read off the labels), so the
theory bound the audit prints is an estimate, never a certificate
(docs/theory.md §4). The certificates come from held-out data only (§9).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

import jaxsym
from jaxsym import bounds as _bounds
from jaxsym import covering as _covering
from jaxsym.groups import TransformationSet

__all__ = [
    "DataProfile",
    "bound_constants",
    "certify",
    "covering",
    "covering_radii",
    "data_profile",
    "filled_profile",
    "make_fit",
    "median_distance",
    "screen",
    "stabilizers",
    "theory_bound",
]


# ----------------------------------------------------------------------------- 1. profile


class DataProfile(NamedTuple):
    """The data's kNN profile (docs/theory.md §6), as NumPy arrays.

    All in RMS units, not squared (:class:`jaxsym.DataDefect`).

    Attributes:
        profile: ``(|G|,)`` ``(mean ‖y_j − ρ_Y(g) y_i‖²)^{1/2}`` over matched samples.
        excess: ``(|G|,)`` estimates the RMS data profile ``E_2(g) = (E_x e_{f*}(x, g)²)^{1/2}``.
        stderr: ``(|G|,)`` its one-standard-error shift (:func:`jaxsym.data.knn_data_defect`).
        matched_fraction: ``(|G|,)`` fraction of samples matched within the radius.
        rms: ``(|G|,)`` ``excess`` (NaN where nothing was matched).
        baseline: the identity's level (``≈ √2 σ``).
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
        rms=excess.copy(),
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


# ----------------------------------------------------------------------------- covering


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


# ----------------------------------------------------------------------------- theory bound


def bound_constants(
    model, x: np.ndarray, output_bound: float, label_bound: float, output_dim: int
) -> jaxsym.BoundConstants:
    """Estimated squared-loss constants of the §4 bound: ``L`` from the fitted model.

    ``L`` is the library's Lipschitz estimate (the largest Jacobian norm on a
    subsample, the one :func:`jaxsym.bound_regularizer` uses); ``M`` and ``Y``
    are read off the labels. Estimated, so every bound built on them is an
    estimate (docs/theory.md §4).
    """
    lipschitz = max(jaxsym.training.lipschitz_estimate(model, np.asarray(x)), 1e-6)
    loss = jaxsym.squared_loss_constants(output_bound, output_dim, label_bound)
    return jaxsym.BoundConstants(
        lipschitz=float(lipschitz), output_bound=float(output_bound), loss=loss,
        output_dim=int(output_dim),
    )  # fmt: skip


def theory_bound(
    radii: np.ndarray,
    counts: np.ndarray,
    sizes: list[int],
    num_points: int,
    constants: jaxsym.BoundConstants,
    num_levels: int,
) -> np.ndarray:
    """``Gen_n(S, ε = 0)`` of docs/theory.md §4 for each exactly invariant class (row of counts).

    :func:`jaxsym.generalization_bound_from_table` on the covering tables already
    computed (:func:`jaxsym.covering.tables_from_counts`), with the union bound
    over ``num_levels`` sets.
    """
    tables = _covering.tables_from_counts(radii, counts, num_points, sizes)
    return np.array(
        [
            float(
                _bounds.generalization_bound_from_table(
                    table, None, constants=constants, eps=0.0, num_levels=num_levels
                ).total
            )
            for table in tables
        ]
    )


# ----------------------------------------------------------------------------- screen


def median_distance(x: np.ndarray, max_points: int = 256, seed: int = 0) -> float:
    """Median pairwise distance of a subsample (the random features' lengthscale)."""
    rng = np.random.default_rng(seed)
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    flat = flat[rng.permutation(len(flat))[:max_points]]
    distances = np.sqrt(np.maximum(((flat[:, None] - flat[None]) ** 2).sum(-1), 0.0))
    upper = distances[np.triu_indices(len(flat), 1)]
    median = float(np.median(upper)) if upper.size else 1.0
    return median if median > 0 else 1.0


def make_fit(num_features: int, ridges, lengthscale: float, key: jax.Array):
    """The reference model: random features + ridge, ``fit(x, y, *, symmetry)`` (§8b).

    It trains in each option's class (features averaged over the set and
    dialed), with λ tuned in that class by cross-fitting among ``ridges``, and
    :func:`jaxsym.choose_symmetry` cross-fits it in closed form.
    """
    return jaxsym.random_features_ridge(num_features, ridges, key=key, lengthscale=lengthscale)


def screen(fit, x, targets, group: TransformationSet, key, profile, *, loss: str, num_folds: int):
    """Which set and how strictly, screened on the training split (docs/theory.md §8b, §9).

    :func:`jaxsym.choose_symmetry` with the reference model trained at each
    option, ranked by ``loss`` (the certified loss: ``"zero_one"`` for classes),
    with the data's RMS profile (used to order the candidates of a large group,
    or to build ε-stabilizers for a set that is neither a group nor a range).
    """
    return jaxsym.choose_symmetry(
        jnp.asarray(x), jnp.asarray(targets), group, fit=fit, key=key, profile=profile,
        loss=loss, num_folds=num_folds,
    )  # fmt: skip


def certify(
    losses: np.ndarray, loss_range: float, num_options: int, delta: float
) -> jaxsym.HeldOutBound:
    """The held-out certificate of one trained model (docs/theory.md §9), union over K."""
    return jaxsym.held_out_bound(
        losses, loss_range=loss_range, num_options=num_options, delta=delta
    )
