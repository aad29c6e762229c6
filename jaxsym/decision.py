"""Which symmetry, and how much: one decision, screened within noise, certified on held-out data.

docs/theory.md §9 (with §8). Two pieces:

* :func:`choose_symmetry` **screens** (set, level) options by the cross-fitted
  risk of the dial ``f_t = Q_H f̂ + t (f̂ − Q_H f̂)`` (§8) with fold-level standard
  errors, and applies the one-standard-error rule: among the options whose risk
  is within one standard error of the best, the most symmetric wins (largest
  set, then smallest t). The screen is an *estimate*: it ranks options, it does
  not certify them.
* :func:`held_out_bound` **certifies** a trained model: an upper confidence
  bound on its mean risk from losses on data used neither to train nor to
  select it, with the union bound over the K options compared (exact binomial
  tail for 0-1 losses, Chernoff's kl inversion for losses in ``[0, B]``).

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import check_callable, check_group, check_unit_interval, positive_int
from jaxsym.data import data_defect
from jaxsym.defects import distance_to_equivariance, stabilizer
from jaxsym.groups import TransformationSet, element_labels, orbit_augment
from jaxsym.groups import element_indices as _index_of
from jaxsym.predictive import Fit, Model, cross_fitting_folds, dial_risk
from jaxsym.subgroups import all_subgroups, subgroup_chain

__all__ = [
    "SymmetryChoice",
    "candidate_sets",
    "choose_symmetry",
    "set_name",
]

#: All subgroups are screened when a group has at most this many; else the profile chain.
MAX_SCREENED_SUBGROUPS = 64
#: ε-stabilizer tolerances for a set that is not a group, as fractions of the label spread.
TOLERANCE_FRACTIONS = (0.05, 0.1, 0.25, 0.5)


# ============================================================================ candidates


def _labels(y, n: int) -> jax.Array:
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != n:
        raise ValueError(
            f"y must have a leading axis of length {n} (one label per input); got {y.shape}."
        )
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(jnp.float32)
    if not bool(jnp.all(jnp.isfinite(y))):
        raise ValueError("y holds NaN or infinite values.")
    return y.reshape(n, -1) if y.ndim == 1 else y


def _rms_profile(x, y, group: TransformationSet) -> np.ndarray:
    """The kNN estimate of the RMS data profile ``E_2(g)`` (§6); unmatched elements at +inf."""
    rms = np.array(data_defect(x, y, group, method="knn").excess, np.float64)
    rms[~np.isfinite(rms)] = np.inf
    rms[0] = 0.0
    return rms


def candidate_sets(x, y, group: TransformationSet, *, profile=None) -> list[np.ndarray]:
    """Candidate symmetry sets as sorted element indices of ``group``, smallest first (§5, §9).

    * A group with at most :data:`MAX_SCREENED_SUBGROUPS` subgroups: every
      subgroup (:func:`jaxsym.all_subgroups`), so the choice does not depend on
      a noisy ordering of the elements.
    * A larger group: the nested chain :func:`jaxsym.subgroup_chain` in the
      order of the data's profile.
    * A set that is not a group: the nested ε-stabilizers ``{g : E_2(g) ≤ ε}``
      (§2) at ε = 5%, 10%, 25%, 50% of the labels' RMS spread, then the whole set.

    Args:
        x: ``(n, *input)`` inputs.
        y: ``(n, *output)`` labels.
        group: the symmetry group or set (element 0 the identity).
        profile: optional ``(|G|,)`` RMS data profile ``E_2(g)``; default the kNN
            profile of ``(x, y)`` (computed only when needed).
    """
    check_group(group)
    if group.is_group:
        try:
            return [np.asarray(h, np.int64) for h in all_subgroups(group, limit=64)]
        except ValueError:
            pass
    if profile is None:
        profile = _rms_profile(jnp.asarray(x), _labels(y, len(x)), group)
    profile = np.asarray(profile, np.float64).reshape(-1)
    if profile.shape != (group.size,):
        raise ValueError(f"profile must have shape ({group.size},); got {profile.shape}.")
    if group.is_group:
        chain = list(subgroup_chain(group, np.where(np.isfinite(profile), profile, 1e300)))
    else:
        flat = np.asarray(y, np.float64).reshape(len(y), -1)
        spread = float(np.sqrt(np.mean(np.sum((flat - flat.mean(0)) ** 2, axis=1))))
        finite = jnp.asarray(np.where(np.isfinite(profile), profile, 1e300))
        chain = [np.zeros(1, np.int64)]
        for fraction in TOLERANCE_FRACTIONS:
            members = np.union1d(
                np.flatnonzero(np.asarray(stabilizer(finite, fraction * spread))), [0]
            )
            if len(members) > len(chain[-1]):
                chain.append(members)
    if len(chain[-1]) < group.size:
        chain.append(np.arange(group.size))
    if len(chain[0]) > 1:
        chain.insert(0, np.zeros(1, np.int64))
    return [np.asarray(c, np.int64) for c in chain]


def set_name(group: TransformationSet, members) -> str:
    """The name a candidate set is reported under: ``group.name``, ``"none"``, or its elements.

    A proper subset is named by its elements' labels (:func:`jaxsym.groups.element_labels`),
    e.g. ``"{e, rot 180°}"``; sets of more than 8 elements by their size and a few labels.

    Args:
        group: the group or set the candidates are drawn from.
        members: sorted element indices of the candidate (element 0 first).
    """
    members = np.asarray(members).reshape(-1)
    if len(members) == group.size:
        return group.name
    if len(members) == 1:
        return "none"
    labels = element_labels(group)
    if len(members) <= 8:
        return "{" + ", ".join(labels[int(k)] for k in members) + "}"
    shown = ", ".join(labels[int(k)] for k in members[:3])
    return f"{{{shown}, … ({len(members)} of {group.size})}}"


def _as_set(group: TransformationSet, members: np.ndarray) -> TransformationSet:
    """The elements ``members`` of ``group``; a subgroup of a group is flagged a group."""
    if len(members) == group.size:
        return group
    subset = group.subset(np.asarray(members), name=set_name(group, members))
    return dataclasses.replace(subset, is_group=group.is_group)


# ============================================================================ the choice


class SymmetryChoice(NamedTuple):
    """Which symmetry set to keep and how strictly, with the evidence (docs/theory.md §8, §9).

    The options are (set, level) pairs: ``t = 0`` is exact symmetry ``Q_H f̂``,
    ``t = 1`` the unconstrained model (one option, named ``"none"``, set ``{e}``).

    Attributes:
        group: the chosen set as a :class:`TransformationSet` (``{e}`` for none).
        elements: its element indices in the given group (sorted).
        name: its name (:func:`set_name`: the group's name, ``"none"``, or its elements).
        t_star: the chosen dial level (0 exact, 1 none).
        budget: ``ε̂* = t* · d_2(f̂)`` in ``d_2`` units (RMS equivariance error of
            the model, §2, §8), with ``f̂`` fitted on all the data and ``d_2``
            measured on the orbit-augmented inputs; 0 for exact symmetry or none.
        distance: ``d_2(f̂)`` on the chosen set (0 for none).
        index: the chosen option's row in the table below.
        best: the row with the lowest cross-fitted risk.
        names: ``(J,)`` option names (set name).
        sizes: ``(J,)`` the sets' sizes.
        levels: ``(J,)`` the options' dial levels ``t``.
        risks: ``(J,)`` cross-fitted risk ``mean ‖y − f_t(x)‖²`` (an estimate).
        stderrs: ``(J,)`` fold-level standard errors ``std_k(risk_k) / √K``.
        fold_risks: ``(J, K)`` held-out risk on each fold.
        candidates: the candidate sets (element indices), smallest first.
        reason: why the winner won, in words, with the numbers.
    """

    group: TransformationSet
    elements: np.ndarray
    name: str
    t_star: float
    budget: float
    distance: float
    index: int
    best: int
    names: tuple[str, ...]
    sizes: np.ndarray
    levels: np.ndarray
    risks: np.ndarray
    stderrs: np.ndarray
    fold_risks: np.ndarray
    candidates: tuple[np.ndarray, ...]
    reason: str


def _check_t_grid(t_grid) -> np.ndarray:
    levels = np.asarray(t_grid, np.float64).reshape(-1)
    if levels.size == 0:
        raise ValueError("t_grid must hold at least one level in [0, 1].")
    check_unit_interval("t_grid", levels)
    return np.union1d(levels, [0.0, 1.0])


def _members_of(group: TransformationSet, subset: TransformationSet, k: int) -> np.ndarray:
    """Indices in ``group`` of the elements of a candidate set given as a TransformationSet."""
    try:
        return _index_of(group, subset.elements)
    except (ValueError, IndexError, TypeError):
        raise ValueError(
            f"candidates[{k}] ({subset.name}) must be a subset of {group.name}: one of its "
            "elements is not an element of group."
        ) from None


def _check_candidates(group, candidates) -> list[np.ndarray]:
    if isinstance(candidates, TransformationSet) or not isinstance(candidates, Sequence):
        raise TypeError(
            "candidates must be a list of element-index arrays of group (e.g. "
            "[[0], [0, 2], [0, 1, 2, 3]]) or of subsets of group (TransformationSets); "
            f"got {type(candidates).__name__}."
        )
    out = []
    for k, members in enumerate(candidates):
        if isinstance(members, TransformationSet):
            members = _members_of(group, members, k)
        members = np.unique(np.asarray(members).reshape(-1))
        if members.size == 0 or not np.issubdtype(members.dtype, np.integer):
            raise ValueError(f"candidates[{k}] must be a non-empty array of element indices.")
        if members.min() < 0 or members.max() >= group.size:
            raise ValueError(
                f"candidates[{k}] holds indices outside [0, {group.size}): {members.tolist()}."
            )
        out.append(np.union1d(members, [0]).astype(np.int64))
    if not any(len(m) == 1 for m in out):
        out.insert(0, np.zeros(1, np.int64))
    return out


def _fold_risks(models, x, y, folds, sets, levels) -> np.ndarray:
    """``(S, T, K)`` held-out risk of the dial of fold model k on fold k, per set and level."""
    out = np.empty((len(sets), len(levels), len(folds)))
    grid = jnp.asarray(levels, jnp.float32)
    for s, subset in enumerate(sets):
        for k, (model, rows) in enumerate(zip(models, folds, strict=True)):
            risk = dial_risk(model, x[rows], y[rows], subset, grid).risk
            out[s, :, k] = np.asarray(risk, np.float64)
    return out


def _pick(sizes, levels, risks, stderrs, none: int) -> tuple[int, int, str]:
    """The one-standard-error rule with the soft-level check (docs/theory.md §9)."""
    best = int(np.argmin(risks))
    ceiling = risks[best] + stderrs[best]
    order = sorted(range(len(risks)), key=lambda j: (-sizes[j], levels[j], risks[j]))
    for j in order:
        if risks[j] > ceiling:
            continue
        if 0.0 < levels[j] < 1.0:
            exact = [i for i in range(len(risks)) if sizes[i] == sizes[j] and levels[i] == 0.0]
            ends = [none] + [i for i in exact if i != j]
            if not all(risks[i] - risks[j] > stderrs[best] for i in ends):
                continue  # a soft level must beat both ends by more than the noise
        return j, best, ceiling
    return none, best, ceiling


def choose_symmetry(
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    fit: Fit | None,
    key: jax.Array | None,
    candidates: Sequence | None = None,
    t_grid=None,
    num_folds: int = 5,
    profile=None,
    fold_models: Sequence[Model] | None = None,
    full_model: Model | None = None,
) -> SymmetryChoice:
    """Choose which symmetry set to keep and how strictly, within noise (docs/theory.md §8, §9).

    1. **Options**: each candidate set ``H`` (:func:`candidate_sets`) at each dial
       level ``t`` of ``t_grid`` (0 and 1 always included), the dial being
       ``f_t = Q_H f̂ + t (f̂ − Q_H f̂)``; ``t = 1`` is the same unconstrained model
       for every ``H`` and appears once, as ``"none"``.
    2. **Screen**: K-fold cross-fitting (:func:`jaxsym.cross_fitting_folds` with
       ``key``): ``f̂_k = fit(x without fold k)``; on fold k the exact dial risk
       ``mean ‖y − f_t‖² = A − 2tB + t²C`` (:func:`jaxsym.dial_risk`). The risk
       ``r̂_j`` pools all n held-out points; its standard error is fold-level,
       ``s_j = std_k(r̂_{j,k}) / √K``.
    3. **Rule** (one standard error, §9): with ``j* = argmin r̂``, the most
       symmetric option with ``r̂_j ≤ r̂_{j*} + s_{j*}`` wins: the largest set, then
       the smallest t, then the lower risk. A soft level ``0 < t < 1`` is taken
       only if it beats both ends (``t = 0`` on its set, and none) by more than
       ``s_{j*}``; otherwise the next option in that order is tried (none, if
       no option passes).
    4. **Budget**: ``ε̂* = t* · d_2(f̂)`` on the chosen set, with ``f̂ = fit(x, y)``
       (or ``full_model``) and ``d_2`` on the orbit-augmented inputs (§8), the
       budget :func:`jaxsym.bound_regularizer` trains to.

    The risks are cross-fitted *estimates* for a model fitted on ``(K−1)/K`` of
    the data; nothing here is a certificate. Certify the trained models with
    :func:`held_out_bound` on data not used here.

    Args:
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` training labels (squared loss; one-hot for classes).
        group: the symmetry group or set (element 0 the identity). For a set
            that is not a group the average ``Q_ν`` is not a projection; the dial
            risk is still exact.
        fit: ``fit(x, y)`` returns a batched predictor (called K + 1 times, fewer
            when models are passed in); may be ``None`` when both model
            arguments are given.
        key: PRNG key for the folds (keyword-only; ``None``: every K-th example).
        candidates: optional candidate sets: element-index arrays of ``group``, or
            subsets of it as :class:`TransformationSet` (e.g. ``[C2, C4, C8]`` for
            ``group = C8``); ``{e}`` is added; default :func:`candidate_sets`.
        t_grid: dial levels in ``[0, 1]``; default ``0, 0.1, …, 1``.
        num_folds: K with ``2 ≤ K ≤ n``.
        profile: optional RMS data profile for :func:`candidate_sets`.
        fold_models: optional K predictors, model k fitted without fold k.
        full_model: optional predictor fitted on all of ``(x, y)``.

    Returns:
        :class:`SymmetryChoice`.

    Raises:
        TypeError, ValueError: on a malformed argument, before any fitting.
    """
    check_group(group)
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 examples; got shape {x.shape}.")
    group.check_inputs(x[:1])
    n = int(x.shape[0])
    y = _labels(y, n)
    num_folds = positive_int("num_folds", num_folds, minimum=2, maximum=n)
    levels = _check_t_grid(np.linspace(0.0, 1.0, 11) if t_grid is None else t_grid)
    if fit is not None:
        check_callable("fit", fit)
    elif fold_models is None or full_model is None:
        raise ValueError("fit=None needs both fold_models and full_model.")
    if candidates is None:
        candidates = candidate_sets(x, y, group, profile=profile)
    else:
        candidates = _check_candidates(group, candidates)
    folds = cross_fitting_folds(n, num_folds, key=key)
    if fold_models is None:
        everything = np.arange(n)
        fold_models = [fit(x[np.setdiff1d(everything, f)], y[np.setdiff1d(everything, f)])
                       for f in folds]  # fmt: skip
    elif len(fold_models) != num_folds:
        raise ValueError(f"fold_models must hold num_folds={num_folds} models.")

    sets = [_as_set(group, m) for m in candidates]
    table = _fold_risks(fold_models, x, y, folds, sets, levels)  # (S, T, K)
    weights = np.array([len(f) for f in folds], np.float64) / n
    names, sizes, ts, fold_rows = [], [], [], []
    trivial = next(s for s, m in enumerate(candidates) if len(m) == 1)
    names.append("none"), sizes.append(1), ts.append(1.0), fold_rows.append(table[trivial, -1])
    origin = [trivial]
    for s, members in enumerate(candidates):
        if len(members) == 1:
            continue
        for j, t in enumerate(levels[:-1]):
            names.append(set_name(group, members))
            sizes.append(len(members))
            ts.append(float(t))
            fold_rows.append(table[s, j])
            origin.append(s)
    fold_risks = np.stack(fold_rows)
    risks = fold_risks @ weights
    stderrs = fold_risks.std(axis=1, ddof=1) / math.sqrt(num_folds)
    sizes, ts = np.asarray(sizes), np.asarray(ts)
    index, best, ceiling = _pick(sizes, ts, risks, stderrs, none=0)

    members = candidates[origin[index]] if index else np.zeros(1, np.int64)
    chosen = sets[origin[index]] if index else _as_set(group, members)
    t_star = float(ts[index])
    distance = 0.0
    if index and t_star > 0.0:
        model = full_model if full_model is not None else fit(x, y)
        distance = float(distance_to_equivariance(model, orbit_augment(x, chosen), chosen))
    budget = t_star * distance if index else 0.0
    reason = _reason(names, ts, risks, stderrs, index, best, ceiling)
    return SymmetryChoice(
        group=chosen,
        elements=np.asarray(members, np.int64),
        name=names[index],
        t_star=t_star,
        budget=budget,
        distance=distance,
        index=index,
        best=best,
        names=tuple(names),
        sizes=sizes,
        levels=ts,
        risks=risks,
        stderrs=stderrs,
        fold_risks=fold_risks,
        candidates=tuple(candidates),
        reason=reason,
    )


def _label(names, ts, j) -> str:
    return "no symmetry" if names[j] == "none" else f"{names[j]} at t = {ts[j]:.2g}"


def _reason(names, ts, risks, stderrs, index, best, ceiling) -> str:
    chosen, top = _label(names, ts, index), _label(names, ts, best)
    text = (
        f"{chosen}: cross-fitted risk {risks[index]:.4g} ± {stderrs[index]:.2g} (fold standard "
        f"error). The lowest risk is {top}'s {risks[best]:.4g} ± {stderrs[best]:.2g}; "
    )
    if index == best:
        text += "no more symmetric option is within one standard error of it"
    else:
        text += (
            f"{chosen} is the most symmetric option within one standard error of it "
            f"(risk ≤ {ceiling:.4g})"
        )
    if names[index] != "none":
        text += f"; no symmetry has {risks[0]:.4g}"
    return text + ". These are estimates from the training data, not a certificate."
