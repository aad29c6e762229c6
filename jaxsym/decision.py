"""Which symmetry, and how much: one problem, one cross-fit, one rule (docs/theory.md §8b, §9).

In the style of a solver: a :class:`SymmetryProblem` (data, group, candidate
sets, dial levels, folds, loss: one constructor, :func:`symmetry_problem`), one
cross-fit (:func:`cross_fit`: the held-out loss of a model **trained** at each
option, fold by fold), and one rule (the one-standard-error rule) that turns the
table into a :class:`SymmetryChoice`. :func:`choose_symmetry` runs the three.

An option is a :class:`Symmetry`: a set ``H`` and a dial level ``t``; ``t = 0``
is exact symmetry over ``H`` (the partial average ``Q_ν`` when ``H`` is not a
group), ``t = 1`` none. The model of each option is trained *inside* its class
(docs/theory.md §8b): ``fit(x, y, *, symmetry)`` receives the option. The
screen is an *estimate*: it ranks options, it does not certify them; certify
the trained models with :func:`jaxsym.held_out_bound` on data not used here.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.types import Model
from jaxsym._src.validation import check_callable, check_group, check_key, positive_int
from jaxsym.averaging import dial
from jaxsym.data import data_defect
from jaxsym.defects import distance_to_equivariance, stabilizer
from jaxsym.groups import (
    TransformationSet,
    element_indices,
    element_labels,
    element_magnitudes,
    nested_ranges,
    orbit_augment,
    subset_of,
)
from jaxsym.losses import LOSSES, example_losses
from jaxsym.models import predict
from jaxsym.predictive import cross_fitting_folds
from jaxsym.subgroups import all_subgroups, subgroup_chain

__all__ = [
    "DEFAULT_LEVELS",
    "Symmetry",
    "SymmetryChoice",
    "SymmetryProblem",
    "candidate_sets",
    "choose_symmetry",
    "cross_fit",
    "decide",
    "post_hoc",
    "set_name",
    "symmetry_problem",
]

#: ``fit(x, y, *, symmetry)`` trains a model at one option and returns a batched predictor.
Fit = Callable[..., Model]

#: The dial levels screened by default (0 exact, 1 none).
DEFAULT_LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: All subgroups are screened when a group has at most this many; else the profile chain.
MAX_SCREENED_SUBGROUPS = 64
#: ε-stabilizer tolerances for a set that is neither a group nor a range, / the label spread.
TOLERANCE_FRACTIONS = (0.05, 0.1, 0.25, 0.5)
#: Risks closer than this fraction of the label energy are ties (float32 rounding).
ROUNDING = 1e-6
#: Rows of the training inputs on which the chosen model's ``d_2`` (the budget) is measured.
BUDGET_ROWS = 1024


# ============================================================================ the problem


class Symmetry(NamedTuple):
    """One option of the decision: a set ``H`` at dial level ``t`` (docs/theory.md §3, §8b).

    A model trained at this option is ``Q_H f + t (f − Q_H f)`` for a network
    ``f`` (e.g. :func:`jaxsym.dial` of it), or any model of that class.

    Attributes:
        group: the set ``H`` (``{e}`` for no symmetry), flagged a group only if closed.
        t: the dial level in ``[0, 1]``: 0 exact (``Q_H f``), 1 none (``f``).
        elements: ``H``'s element indices in the problem's group (sorted).
        name: the set's name (:func:`set_name`).
    """

    group: TransformationSet
    t: float
    elements: tuple[int, ...]
    name: str


class SymmetryProblem(NamedTuple):
    """What to decide, on which data (docs/theory.md §9); build it with :func:`symmetry_problem`.

    Attributes:
        x: ``(n, *input)`` inputs.
        y: ``(n, d)`` float labels.
        group: the group or set the candidates are drawn from.
        candidates: candidate sets (sorted element indices), ``[0]`` first.
        levels: dial levels, sorted, 0 and 1 included.
        folds: the cross-fitting folds (held-out index sets).
        loss: ``"squared"`` or ``"zero_one"``, the loss the options are ranked by.
        candidates_fixed: whether the candidates were fixed before seeing the
            data (given by the caller, every subgroup, or the nested ranges of a
            range), rather than read off the data's profile.
    """

    x: jax.Array
    y: jax.Array
    group: TransformationSet
    candidates: tuple[np.ndarray, ...]
    levels: np.ndarray
    folds: tuple[np.ndarray, ...]
    loss: str
    candidates_fixed: bool

    @property
    def options(self) -> tuple[Symmetry, ...]:
        """No symmetry first, then each set of more than one element at each level ``t < 1``."""
        identity = subset_of(self.group, [0], name="none")
        out = [Symmetry(identity, 1.0, (0,), "none")]
        for members in self.candidates:
            if len(members) == 1:
                continue
            name = set_name(self.group, members)
            subset = subset_of(self.group, members, name=name)
            for t in self.levels[self.levels < 1.0]:
                out.append(Symmetry(subset, float(t), tuple(int(k) for k in members), name))
        return tuple(out)


def _labels(y, n: int, loss: str) -> jax.Array:
    """The one label rule: real numbers, one row per example; class indices are refused."""
    if y is None or isinstance(y, str):
        raise TypeError(f"y must be an array of labels; got {y!r:.60}.")
    array = np.asarray(y) if not isinstance(y, jax.Array) else y
    dtype = array.dtype
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)) or (
        dtype == np.bool_
    ):
        raise TypeError(
            f"y must hold real numbers (float, or one-hot integers); got dtype {dtype}."
        )
    if array.ndim < 1 or array.shape[0] != n:
        raise ValueError(
            f"y must have a leading axis of length {n} (one label per input); got {array.shape}."
        )
    if array.ndim == 1 and jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            "y is 1-D integer: class indices are not numbers to regress. Pass one-hot labels "
            "(jax.nn.one_hot(y, num_classes)) with loss='zero_one' (or 'squared')."
        )
    labels = jnp.asarray(array).astype(
        dtype if jnp.issubdtype(dtype, jnp.floating) else jnp.float32
    )
    if not bool(jnp.all(jnp.isfinite(labels))):
        raise ValueError("y holds NaN or infinite values.")
    labels = labels.reshape(n, -1)
    if loss == "zero_one" and labels.shape[1] < 2:
        raise ValueError(
            f"loss='zero_one' needs one column per class (one-hot labels); y has "
            f"{labels.shape[1]} column."
        )
    return labels


def _levels(t_grid) -> np.ndarray:
    """The one grid rule: levels in [0, 1], with 0 and 1 always included."""
    if t_grid is None:
        return np.asarray(DEFAULT_LEVELS)
    if isinstance(t_grid, str):
        raise TypeError(f"t_grid must be a sequence of levels in [0, 1]; got {t_grid!r}.")
    try:
        levels = np.asarray(t_grid, np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"t_grid must hold numbers in [0, 1]; got {t_grid!r:.60}.") from None
    if levels.size == 0 or not np.all(np.isfinite(levels)):
        raise ValueError(f"t_grid must hold finite levels in [0, 1]; got {levels.tolist()}.")
    if levels.min() < 0.0 or levels.max() > 1.0:
        raise ValueError(f"t_grid must lie in [0, 1]; got {levels.tolist()}.")
    return np.union1d(levels, [0.0, 1.0])


def _members_of(group: TransformationSet, subset: TransformationSet, k: int) -> np.ndarray:
    try:
        return element_indices(group, subset.elements)
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
        members = np.union1d(members, [0]).astype(np.int64)
        if not any(np.array_equal(members, earlier) for earlier in out):
            out.append(members)
    if not any(len(m) == 1 for m in out):
        out.insert(0, np.zeros(1, np.int64))
    return sorted(out, key=len)


def symmetry_problem(
    x,
    y,
    group: TransformationSet,
    *,
    key: jax.Array | None,
    candidates: Sequence | None = None,
    t_grid=None,
    num_folds: int = 5,
    profile=None,
    loss: str = "squared",
) -> SymmetryProblem:
    """Check the data and fix the options and folds of a decision (docs/theory.md §9).

    One label rule (real labels, one row per example; 1-D integer class indices
    are refused: pass one-hot labels), one grid rule (levels in ``[0, 1]``,
    default :data:`DEFAULT_LEVELS`, 0 and 1 always added), folds from
    :func:`jaxsym.cross_fitting_folds` with ``key``.

    Args:
        x: ``(n, *input)`` inputs, ``n ≥ 2``.
        y: ``(n, *output)`` labels.
        group: the symmetry group or set (element 0 the identity).
        key: PRNG key for the folds (keyword-only; ``None``: every K-th example).
        candidates: optional candidate sets (element-index arrays of ``group`` or
            subsets of it); ``{e}`` is added; default :func:`candidate_sets`.
        t_grid: dial levels in ``[0, 1]``.
        num_folds: K with ``2 ≤ K ≤ n``.
        profile: optional RMS data profile for :func:`candidate_sets`.
        loss: ``"squared"`` or ``"zero_one"`` (one-hot labels; what a classifier's
            certificate counts).

    Raises:
        TypeError, ValueError: naming the argument, before any fitting.

    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import groups
    >>> x = jax.random.normal(jax.random.key(0), (40, 2))
    >>> problem = symmetry_problem(x, jnp.sin(x[:, :1]), groups.cyclic_rotations(4), key=None)
    >>> names = [o.name for o in problem.options]
    >>> names[0], names[1], len(problem.folds)
    ('none', '{e, rot 180°}', 5)
    """
    check_group(group)
    if isinstance(x, TransformationSet):
        raise TypeError("symmetry_problem(x, y, group): the group comes after the data.")
    x = jnp.asarray(x)
    if x.ndim == 0 or x.shape[0] < 2:
        raise ValueError(f"x must hold at least 2 examples; got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    group.check_inputs(x[:1])
    n = int(x.shape[0])
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}; got {loss!r}.")
    labels = _labels(y, n, loss)
    num_folds = positive_int("num_folds", num_folds, minimum=2, maximum=n)
    levels = _levels(t_grid)
    if key is not None:
        check_key(key)
    fixed = candidates is not None or _fixed_by_the_set(group)
    if candidates is None:
        candidates = candidate_sets(x, labels, group, profile=profile)
    else:
        candidates = _check_candidates(group, candidates)
    folds = cross_fitting_folds(n, num_folds, key=key)
    return SymmetryProblem(
        x=x, y=labels, group=group, candidates=tuple(candidates), levels=levels,
        folds=tuple(folds), loss=loss, candidates_fixed=fixed,
    )  # fmt: skip


def _fixed_by_the_set(group: TransformationSet) -> bool:
    """Whether :func:`candidate_sets` depends on the set alone (not on the data's profile)."""
    if not group.is_group:
        return element_magnitudes(group) is not None
    try:
        all_subgroups(group, limit=MAX_SCREENED_SUBGROUPS)
    except ValueError:
        return False
    return True


# ============================================================================ candidates


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
    * A range of transformations that is not a group (rotations within ±θ,
      sub-pixel shifts, a sample of SO(3)): the nested sub-ranges
      ``{g : |g| ≤ r}`` (:func:`jaxsym.groups.nested_ranges`), fixed by the set
      alone, so they do not depend on the data.
    * Another set that is not a group: the nested ε-stabilizers
      ``{g : E_2(g) ≤ ε}`` (§2) at ε = 5%, 10%, 25%, 50% of the labels' RMS
      spread, then the whole set.

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
            subgroups = all_subgroups(group, limit=MAX_SCREENED_SUBGROUPS)
            return [np.asarray(h, np.int64) for h in subgroups]
        except ValueError:
            pass
    elif element_magnitudes(group) is not None:
        return nested_ranges(group)
    if profile is None:
        labels = jnp.asarray(y, jnp.float32).reshape(len(y), -1)
        profile = _rms_profile(jnp.asarray(x), labels, group)
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


# ============================================================================ the cross-fit


def _accepts_symmetry(fit) -> bool:
    try:
        parameters = inspect.signature(fit).parameters
    except (TypeError, ValueError):
        return True  # a builtin or C callable: let the call say
    return "symmetry" in parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
    )


def cross_fit(problem: SymmetryProblem, fit: Fit) -> np.ndarray:
    """Held-out loss of a model **trained** at each option, for every example (§8b, §9).

    For each fold ``k`` and option ``j`` (:attr:`SymmetryProblem.options`),
    ``f_{j,k} = fit(x without fold k, y without fold k, symmetry=option_j)`` and
    ``L[j, i] = loss(f_{j,k}(x_i), y_i)`` for ``i`` in fold ``k``: every example's
    loss under a model that did not see it, trained inside the option's class.
    That is ``K · J`` fits; a ``fit`` with a ``cross_fit_losses(problem)`` method
    (:func:`jaxsym.random_features_ridge`, in closed form) computes the same
    table itself.

    Args:
        problem: the :class:`SymmetryProblem`.
        fit: ``fit(x, y, *, symmetry)`` returning a batched predictor.

    Returns:
        ``(J, n)`` float64 losses.

    Raises:
        TypeError: if ``fit`` takes no ``symmetry`` keyword (wrap a plain
            ``fit(x, y)`` with :func:`post_hoc`).
    """
    check_callable("fit", fit)
    if hasattr(fit, "cross_fit_losses"):
        return np.asarray(fit.cross_fit_losses(problem), np.float64)
    if not _accepts_symmetry(fit):
        raise TypeError(
            "fit must accept the option it trains at: fit(x, y, *, symmetry) (a "
            "jaxsym.Symmetry with .group and .t; e.g. train jaxsym.dial(net, symmetry.group, "
            "symmetry.t)). To rank post-hoc averages of one unconstrained fit instead, pass "
            "jaxsym.post_hoc(fit) (docs/theory.md §8b says why that underrates symmetry)."
        )
    x, y, n = problem.x, problem.y, problem.x.shape[0]
    options = problem.options
    table = np.zeros((len(options), n))
    for fold in problem.folds:
        train = np.setdiff1d(np.arange(n), fold)
        for j, option in enumerate(options):
            model = fit(x[train], y[train], symmetry=option)
            predictions = predict(model, x[fold]).reshape(len(fold), -1)
            if predictions.shape[1] != y.shape[1]:
                raise ValueError(
                    f"fit's model at {option.name} returns {predictions.shape[1]} outputs per "
                    f"example; the labels have {y.shape[1]}."
                )
            table[j, fold] = np.asarray(example_losses(predictions, y[fold], problem.loss))
    if not np.all(np.isfinite(table)):
        raise FloatingPointError("cross_fit: a trained model returned NaN or infinite outputs.")
    return table


def _digest(*arrays) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for array in arrays:
        array = np.asarray(array)
        digest.update(repr((array.shape, array.dtype.str)).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.digest()


def post_hoc(fit: Callable[[jax.Array, jax.Array], Model]) -> Fit:
    """Adapt a plain ``fit(x, y)``: train once without symmetry, then dial (docs/theory.md §8b).

    ``post_hoc(fit)(x, y, symmetry=(H, t))`` returns ``dial(fit(x, y), H, t)``,
    fitting ``fit`` once per training set (memoized on the data), so a cross-fit
    costs K fits instead of ``K · J``. It ranks post-hoc averages of an
    unconstrained model, which is *not* what training inside each class gives:
    on real data it underrates symmetry (§8b). Use it when training per option
    is too expensive, and say so.

    Args:
        fit: ``fit(x, y)`` returning a batched predictor.

    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import groups
    >>> from jaxsym.models import random_features_ridge
    >>> ridge = random_features_ridge(32, 1e-3, key=jax.random.key(0))
    >>> fit = post_hoc(lambda x, y: ridge(x, y))
    >>> x = jax.random.normal(jax.random.key(1), (30, 2))
    >>> choice = choose_symmetry(x, x[:, :1] ** 2, groups.cyclic_rotations(2), fit=fit, key=None)
    >>> choice.name in ("none", "C2")
    True
    """
    check_callable("fit", fit)
    cache: dict[bytes, Model] = {}

    def fit_then_dial(x, y, *, symmetry=None) -> Model:
        digest = _digest(x, y)
        if digest not in cache:
            cache.clear()
            cache[digest] = fit(x, y)
        model = cache[digest]
        if symmetry is None or symmetry.group.size == 1 or symmetry.t >= 1.0:
            return model
        return dial(model, symmetry.group, symmetry.t)

    return fit_then_dial


# ============================================================================ the rule


class SymmetryChoice(NamedTuple):
    """Which symmetry set to keep and how strictly, with the evidence (docs/theory.md §8b, §9).

    The options are (set, level) pairs: ``t = 0`` is exact symmetry over ``H``,
    ``t = 1`` the unconstrained model (one option, named ``"none"``, set ``{e}``).
    Row ``j`` of the table is option ``j`` of :attr:`problem`.

    Attributes:
        group: the chosen set as a :class:`TransformationSet` (``{e}`` for none).
        elements: its element indices in the given group (sorted).
        name: its name (:func:`set_name`: the group's name, ``"none"``, or its elements).
        t_star: the chosen dial level (0 exact, 1 none).
        budget: ``d_2`` of the model trained at the chosen option on all the data,
            measured on its orbit-augmented inputs (§2, §8): the budget
            :func:`jaxsym.bound_regularizer` trains to; 0 for exact symmetry or none.
        model: the model trained at the chosen option on all the data.
        index: the chosen option's row in the table below.
        best: the row with the lowest cross-fitted risk.
        names: ``(J,)`` option names (set name).
        sizes: ``(J,)`` the sets' sizes.
        levels: ``(J,)`` the options' dial levels ``t``.
        risks: ``(J,)`` cross-fitted risk (mean held-out loss of the models trained
            at each option: an estimate).
        stderrs: ``(J,)`` fold-level standard errors ``std_k(risk_k) / √K``, at
            least the rounding scale :data:`ROUNDING` of the label energy.
        fold_risks: ``(J, K)`` held-out risk on each fold.
        problem: the :class:`SymmetryProblem` decided (its ``candidates``, smallest
            first, are also :attr:`candidates`).
        reason: why the winner won, in words, with the numbers.
    """

    group: TransformationSet
    elements: np.ndarray
    name: str
    t_star: float
    budget: float
    model: Model
    index: int
    best: int
    names: tuple[str, ...]
    sizes: np.ndarray
    levels: np.ndarray
    risks: np.ndarray
    stderrs: np.ndarray
    fold_risks: np.ndarray
    problem: SymmetryProblem
    reason: str

    @property
    def candidates(self) -> tuple[np.ndarray, ...]:
        """The candidate sets (element indices), smallest first: ``problem.candidates``."""
        return self.problem.candidates

    @property
    def num_options(self) -> int:
        """How many options the screen compared (``J``)."""
        return len(self.names)


def _pick(sizes, levels, risks, stderrs, none: int = 0) -> tuple[int, int, float]:
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


def decide(problem: SymmetryProblem, losses, fit: Fit) -> SymmetryChoice:
    """Apply the one-standard-error rule to a cross-fitted loss table (docs/theory.md §9).

    With ``r̂_j`` the mean held-out loss of option ``j`` and ``s_j`` its fold-level
    standard error (floored at :data:`ROUNDING` times the label energy, so that
    rounding never decides), the most symmetric option with
    ``r̂_j ≤ r̂_{j*} + s_{j*}`` wins (``j* = argmin r̂``): the largest set, then the
    smallest t. A soft level ``0 < t < 1`` is taken only if it beats both ends
    (``t = 0`` on its set, and none) by more than ``s_{j*}``. The model of the
    chosen option is then trained on all the data (``fit`` once more).

    Args:
        problem: the :class:`SymmetryProblem`.
        losses: ``(J, n)`` held-out losses (:func:`cross_fit`).
        fit: ``fit(x, y, *, symmetry)``, to train the chosen option on all the data.

    Returns:
        :class:`SymmetryChoice`.
    """
    options = problem.options
    losses = np.asarray(losses, np.float64)
    if losses.shape != (len(options), problem.x.shape[0]):
        raise ValueError(
            f"losses must have shape ({len(options)}, {problem.x.shape[0]}) (options × "
            f"examples); got {losses.shape}."
        )
    folds = problem.folds
    fold_risks = np.stack([losses[:, fold].mean(axis=1) for fold in folds], axis=1)
    risks = losses.mean(axis=1)
    energy = float(np.mean(np.sum(np.asarray(problem.y, np.float64) ** 2, axis=1)))
    floor = ROUNDING * max(energy, float(np.max(np.abs(risks))), 1e-30)
    stderrs = np.maximum(fold_risks.std(axis=1, ddof=1) / math.sqrt(len(folds)), floor)
    names = tuple(option.name for option in options)
    sizes = np.array([len(option.elements) for option in options])
    levels = np.array([option.t for option in options])
    index, best, ceiling = _pick(sizes, levels, risks, stderrs)
    chosen = options[index]
    model = fit(problem.x, problem.y, symmetry=chosen)
    budget = 0.0
    if 0.0 < chosen.t < 1.0:
        rows = problem.x[:BUDGET_ROWS]
        budget = float(
            distance_to_equivariance(model, orbit_augment(rows, chosen.group), chosen.group)
        )
    return SymmetryChoice(
        group=chosen.group,
        elements=np.asarray(chosen.elements, np.int64),
        name=chosen.name,
        t_star=float(chosen.t),
        budget=budget,
        model=model,
        index=index,
        best=best,
        names=names,
        sizes=sizes,
        levels=levels,
        risks=risks,
        stderrs=stderrs,
        fold_risks=fold_risks,
        problem=problem,
        reason=_reason(names, levels, risks, stderrs, index, best, ceiling, problem.loss),
    )


def choose_symmetry(
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    fit: Fit,
    key: jax.Array | None,
    candidates: Sequence | None = None,
    t_grid=None,
    num_folds: int = 5,
    profile=None,
    loss: str = "squared",
) -> SymmetryChoice:
    """Choose which symmetry set to keep and how strictly, from models trained in each class.

    docs/theory.md §8b, §9. The three steps, each public:

    1. **Problem** (:func:`symmetry_problem`): candidate sets ``H``
       (:func:`candidate_sets`: every subgroup of a small group, nested
       sub-ranges of a rotation or shift range) at each dial level ``t`` of
       ``t_grid``; ``t = 1`` is one option, ``"none"``.
    2. **Cross-fit** (:func:`cross_fit`): for each of K folds and each option, a
       model trained at that option on the other folds, ``fit(x, y, symmetry=…)``,
       scored on the held-out fold by ``loss``. Cost: ``K · J`` fits (``J``
       options), in closed form for :func:`jaxsym.random_features_ridge`.
    3. **Rule** (:func:`decide`): the one-standard-error rule (most symmetric
       option within one fold-level standard error of the best; a soft level
       must beat both ends by more than that), then one more fit of the chosen
       option on all the data (``choice.model``, and ``choice.budget`` its
       ``d_2``).

    The risks are cross-fitted *estimates*; nothing here is a certificate.
    Certify trained models with :func:`jaxsym.held_out_bound` on data not used here.

    Args:
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` labels (one-hot for classes).
        group: the symmetry group or set (element 0 the identity).
        fit: ``fit(x, y, *, symmetry)`` trains a model at a :class:`Symmetry`
            and returns a batched predictor (:func:`post_hoc` adapts a plain
            ``fit(x, y)``).
        key: PRNG key for the folds (keyword-only; ``None``: every K-th example).
        candidates: optional candidate sets: element-index arrays of ``group``, or
            subsets of it as :class:`TransformationSet`; ``{e}`` is added.
        t_grid: dial levels in ``[0, 1]``; default :data:`DEFAULT_LEVELS`.
        num_folds: K with ``2 ≤ K ≤ n``.
        profile: optional RMS data profile for :func:`candidate_sets`.
        loss: ``"squared"`` or ``"zero_one"`` (rank classifiers by the error their
            certificate counts).

    Returns:
        :class:`SymmetryChoice`.

    Raises:
        TypeError, ValueError: on a malformed argument, before any fitting.

    >>> import jax, jax.numpy as jnp
    >>> from jaxsym import groups
    >>> from jaxsym.models import random_features_ridge
    >>> x = jax.random.normal(jax.random.key(0), (200, 2))
    >>> y = jnp.cos(2 * jnp.linalg.norm(x, axis=1, keepdims=True))  # rotation invariant
    >>> fit = random_features_ridge(128, 1e-3, key=jax.random.key(1))
    >>> choose_symmetry(x, y, groups.cyclic_rotations(8), fit=fit, key=jax.random.key(2)).name
    'C8'
    """
    problem = symmetry_problem(
        x, y, group, key=key, candidates=candidates, t_grid=t_grid, num_folds=num_folds,
        profile=profile, loss=loss,
    )  # fmt: skip
    return decide(problem, cross_fit(problem, fit), fit)


def _label(names, ts, j) -> str:
    return "no symmetry" if names[j] == "none" else f"{names[j]} at t = {ts[j]:.2g}"


def _reason(names, ts, risks, stderrs, index, best, ceiling, loss) -> str:
    chosen, top = _label(names, ts, index), _label(names, ts, best)
    what = "error rate" if loss == "zero_one" else "risk"
    text = (
        f"{chosen}: cross-fitted {what} {risks[index]:.4g} ± {stderrs[index]:.2g} (fold "
        f"standard error) of models trained at each option. The lowest is {top}'s "
        f"{risks[best]:.4g} ± {stderrs[best]:.2g}; "
    )
    if index == best:
        text += "no more symmetric option is within one standard error of it"
    elif names[index] == "none":
        text += (
            "no symmetric option within one standard error of it beats both ends by more "
            "than the noise, so no symmetry is kept"
        )
    else:
        text += (
            f"{chosen} is the most symmetric option within one standard error of it "
            f"(≤ {ceiling:.4g})"
        )
    if names[index] != "none":
        text += f"; no symmetry has {risks[0]:.4g}"
    return text + ". These are estimates from the training data, not a certificate."
