"""Training at the right level of symmetry: the bound regularizer (docs/theory.md §7, §8).

The certified bound of §4 decides **which** symmetry set to keep among nested
candidates ``S_1 ⊂ S_2 ⊂ …``; the cross-fitted predictive trade-off of §8
decides **how much**: the budget ``ε̂* = t* · d_2(f̂)``. Training is then held
to that budget.

Units. Three defect scales meet here and each keeps its own name:

* ``budget`` and ``d_2``: the L2 distance to equivariance
  ``d_2(f) = ‖(I − Q_S) f‖_{L²(μ)} = (mean_b ‖f(x_b) − Q_S f(x_b)‖²)^{1/2}`` on
  the inputs (``d_2`` units, docs/theory.md §2, §8; ``ee_2 = √2 d_2``);
* ``sup_defect``: the sample sup defect ``max_{g, b} e_f(x_b, g)``, the level
  ``ε`` that the certified bound of §4 takes (sup-norm units);
* the audit's RMS defect (``jaxsym.audit``) is neither, and is not used here.

Two designs, selected by ``beta``:

* ``beta=None`` (the default, parameter-free): the **budget projection**. The
  model trained is ``f ↦ Q_S f + s (f − Q_S f)`` with
  ``s = min(1, ε̂* / d_2(f))``: exactly ``Q_S f`` at ``ε̂* = 0``, ``f`` itself where
  ``f`` is within budget, and in between the dial (§3) that brings ``d_2`` onto
  the budget. It acts through the model, so the penalty ``reg(g, x)`` is 0, and
  ``.beta`` is ``inf`` (the limit of an infinitely stiff hinge).
* ``beta=β`` finite: the **hinge** penalty ``β (d_2(f) − ε̂*)_+²`` on an
  unchanged model.

Why the projection is the default (``benchmarks/training.py`` compares the
designs on the same tables): a penalty on the raw network (the hinge, or the
hinge added to the projection) makes a small network represent an invariant
function by itself when ``ε̂* ≈ 0``, and fails on targets it represents badly
that way (a radially oscillating invariant part); the projection never
constrains the network, only its output, and has no constant to tune. Its
price: at small n it inherits the variance of ``Q_S f`` (as exact
symmetrization does), where a penalty on the raw network also acts as capacity
control and can do better.

For large groups, the orbit statistics can be estimated from ``k`` elements
sampled per call (unbiased for ``Q_S f`` and ``ee_2²``; see :func:`jaxsym.orbit_stats`).

Everything evaluates the model once on the orbit of the batch (``(|S|+1)·B``
rows) and derives ``f(x)``, ``Q_S f(x)``, ``d_2`` and ``ee_2²`` from that pass,
so the loss and the penalty share it.

A user's loop::

    reg = bound_regularizer(x, y, group, fit=fit, key=key)
    g = reg.model(f)
    loss = data_loss(g(xb), yb) + reg(g, xb)
    ...
    predictor = reg.freeze(f, x)  # d_2(f) frozen on the training inputs

What never trains: ``reg.model(f)`` holds the group and the budget in static
fields (structure, not leaves, gradients stopped), so training it as an equinox
pytree (``eqx.filter(g, eqx.is_array)``, optax with weight decay) moves only
``f``'s parameters.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._static import Fixed
from jaxsym._validation import (
    check_batch,
    check_callable,
    check_chunk_size,
    check_finite,
    check_group,
    check_key,
    check_positive,
    is_concrete,
    positive_int,
)
from jaxsym.bounds import generalization_bound
from jaxsym.defects import OrbitStats, orbit_stats, pointwise_defects
from jaxsym.groups import TransformationSet
from jaxsym.losses import BoundConstants, squared_loss_constants
from jaxsym.predictive import cross_fitting_folds, predictive_tradeoff

Model = Callable[[jax.Array], jax.Array]
Fit = Callable[[jax.Array, jax.Array], Model]

__all__ = [
    "BoundRegularizer",
    "BudgetModel",
    "CandidateChoice",
    "RegularizerReport",
    "bound_regularizer",
]


# ============================================================================ helpers


def _sup_defect(f: Model, x: jax.Array, group: TransformationSet) -> jax.Array:
    """``max_{g, b} e_f(x_b, g)`` on the batch (sup-norm units; a lower estimate of ee_∞, §2)."""
    return jnp.max(pointwise_defects(f, x, group))


def _squared_loss_constants(lipschitz, label_bound, output_dim) -> BoundConstants:
    """Estimated constants: outputs and labels bounded by the labels' largest norm (§4)."""
    loss = squared_loss_constants(label_bound, output_dim, label_bound)
    return BoundConstants(
        lipschitz=float(lipschitz), output_bound=label_bound, loss=loss, output_dim=output_dim
    )


# ============================================================================ results


class CandidateChoice(NamedTuple):
    """How the active symmetry set was chosen among nested candidates (docs/theory.md §4, §8).

    Attributes:
        index: position of the active set in the candidates.
        approximation: ``(K,)`` estimated ``‖(I − Q_{S_k}) f*‖²`` (squared ``d_2``
            units, i.e. units of the squared loss): the cross-fitted alignment
            ``max(B_k, 0)`` of :func:`jaxsym.predictive_tradeoff`.
        generalization: ``(K,)`` ``Gen_n(S_k, ε = 0)`` (units of the loss; the
            sup-defect level ε = 0) with the union bound over the K candidates
            (NaN when there is one candidate: no choice to make, nothing computed).
        total: ``(K,)`` ``approximation + generalization``; the active set is its
            minimizer (ties go to the larger set).
        eps_star: ``(K,)`` predicted budget ``ε̂*_k = t*_k · d_2(f̂)`` on each
            candidate (``d_2`` units).
        t_star: ``(K,)`` predicted dial level on each candidate (unitless, in ``[0, 1]``).
        distance: ``(K,)`` ``d_2(f̂)`` of the unconstrained full-data fit on each
            candidate (``d_2`` units).
    """

    index: int
    approximation: jax.Array
    generalization: jax.Array
    total: jax.Array
    eps_star: jax.Array
    t_star: jax.Array
    distance: jax.Array


class RegularizerReport(NamedTuple):
    """State of a model under a :class:`BoundRegularizer` (no gradient).

    Attributes:
        names: the candidates' names.
        distance: ``(K,)`` ``d_2(f)`` on each candidate, on the given inputs
            (``d_2`` units).
        sup_defect: ``(K,)`` sample sup defect ``max_{g, b} e_f(x_b, g)`` on each
            candidate (sup-norm units; a lower estimate of ``ee_∞``, §2).
        active: index of the active set.
        active_name: its name.
        budget: the budget ``ε̂*`` on the active set (``d_2`` units).
        max_output: ``max_{b, i} |f(x_b)_i|``, to compare with ``output_bound``.
        bound_applies: whether the outputs lie in the box ``[−M, M]^{d_y}`` of the
            bound's constants on ``x``. When they do not, the bound's hypotheses
            fail and ``bound`` is ``inf`` (vacuous).
        bound: ``Gen_n(S, ε)`` on the active set at the model's current level
            ``ε`` = its sample sup defect there (sup-norm units), with the union
            bound over the candidates. With the sample sup defect and estimated
            constants it is an *estimate* of the certified bound, not a
            certificate (docs/theory.md §4).
    """

    names: tuple[str, ...]
    distance: jax.Array
    sup_defect: jax.Array
    active: int
    active_name: str
    budget: jax.Array
    max_output: float
    bound_applies: bool
    bound: jax.Array


# ============================================================================ the budget


def _budget_scale(d2: jax.Array, budget: jax.Array) -> jax.Array:
    """``s = min(1, budget / d_2)`` (both ``d_2`` units), differentiable at ``d_2 = 0``."""
    budget = jnp.asarray(budget, d2.dtype)
    over = d2 > budget
    return jnp.where(over, budget / jnp.where(over, d2, 1.0), 1.0)


def _dialed(stats: OrbitStats, scale: jax.Array) -> jax.Array:
    scale = jnp.asarray(scale, stats.outputs.dtype)
    return stats.symmetrized + scale * (stats.outputs - stats.symmetrized)


class BudgetModel(eqx.Module):
    """``x ↦ Q_S f(x) + s (f(x) − Q_S f(x))``, the model projected onto the budget (§7).

    In training (``scale=None``) ``s = min(1, budget / d_2(f))`` with ``d_2``
    measured on the batch being predicted, so the model's ``d_2`` on the batch is
    ``min(d_2(f), budget)``; gradients flow through ``s`` to ``f``'s parameters.
    Deployed (:meth:`BoundRegularizer.freeze`) ``s`` is a fixed number measured
    once on the training inputs, so a prediction depends on its own input only.

    Only ``f`` trains: the group, the budget and a frozen ``s`` sit in static
    fields (read with gradients stopped), so ``eqx.filter(model, eqx.is_array)``,
    ``eqx.filter_grad`` and optax (weight decay included) never see them.

    Args:
        f: the underlying batched model.
        group: the active symmetry set ``S`` (a group).
        budget: the budget (``d_2`` units).
        scale: the frozen ``s`` (unitless, in ``[0, 1]``), or ``None`` in training.
        chunk_size: group elements per model call (``None``: automatic).
    """

    f: Model
    fixed_group: Fixed = eqx.field(static=True)
    fixed_budget: Fixed = eqx.field(static=True)
    fixed_scale: Fixed | None = eqx.field(static=True, default=None)
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __init__(
        self,
        f: Model,
        group: TransformationSet,
        budget,
        scale=None,
        chunk_size: int | None = None,
    ):
        check_callable("f", f)
        check_group(group)
        check_chunk_size(chunk_size)
        self.f = f
        self.fixed_group = Fixed(group)
        self.fixed_budget = Fixed(jnp.asarray(budget, jnp.float32))
        self.fixed_scale = None if scale is None else Fixed(jnp.asarray(scale))
        self.chunk_size = chunk_size

    @property
    def group(self) -> TransformationSet:
        """The active symmetry set (gradients stopped)."""
        return self.fixed_group.value

    @property
    def budget(self) -> jax.Array:
        """The budget (``d_2`` units, gradient stopped)."""
        return self.fixed_budget.value

    @property
    def scale(self) -> jax.Array | None:
        """The frozen ``s``, or ``None`` in training."""
        return None if self.fixed_scale is None else self.fixed_scale.value

    def __call__(self, x: jax.Array) -> jax.Array:
        stats = orbit_stats(self.f, x, self.group, chunk_size=self.chunk_size)
        scale = _budget_scale(stats.d2, self.budget) if self.scale is None else self.scale
        return _dialed(stats, scale)


class BoundRegularizer(eqx.Module):
    """The bound regularizer, built once from the training data (docs/theory.md §7, §8).

    A pytree (an :class:`equinox.Module`): pass it through ``jit`` (its budget is
    a leaf, so regularizers that differ only in their budget share one trace).
    It is not a model to train: train ``reg.model(f)``, whose group and budget
    never train. Build it with :func:`bound_regularizer`.

    Attributes:
        budget: the budget ``ε̂*`` on the active set (``d_2`` units).
        group: the active symmetry set (chosen by the certified bound).
        candidates: the nested candidate sets.
        choice: :class:`CandidateChoice`, how the active set was chosen.
        constants: the bound's constants (for :meth:`report`).
        beta: ``inf`` for the budget projection (the default), else the hinge's β
            (units of the loss per ``d_2²``).
        chunk_size: group elements per model call (``None``: automatic).
    """

    budget: jax.Array
    group: TransformationSet
    candidates: tuple[TransformationSet, ...]
    choice: CandidateChoice
    constants: BoundConstants
    beta: float = eqx.field(static=True, default=math.inf)
    chunk_size: int | None = eqx.field(static=True, default=None)

    @property
    def eps(self) -> jax.Array:
        """Deprecated alias of :attr:`budget` (``d_2`` units)."""
        return self.budget

    @property
    def is_projection(self) -> bool:
        """Whether this is the budget projection (``beta = inf``)."""
        return math.isinf(self.beta)

    def model(self, f: Model) -> Model:
        """The predictor to train: the budget projection of ``f``, or ``f`` for the hinge.

        The projection is a :class:`BudgetModel` with budget :attr:`budget`
        (``d_2`` units); only ``f``'s parameters train through it.
        """
        check_callable("f", f)
        if not self.is_projection:
            return f
        return BudgetModel(_function(_unwrap(f)), self.group, self.budget, None, self.chunk_size)

    def __call__(self, f: Model, x_batch: jax.Array) -> jax.Array:
        """The scalar penalty on a batch: 0 for the projection, ``β (d_2(f) − budget)_+²`` else.

        ``d_2`` and the budget in ``d_2`` units. Differentiable with respect to
        the parameters closed over by ``f`` (not the budget).
        """
        if self.is_projection:
            return jnp.zeros((), jnp.float32)
        d2 = orbit_stats(_unwrap(f), x_batch, self.group, chunk_size=self.chunk_size).d2
        budget = jax.lax.stop_gradient(self.budget)
        return self.beta * jnp.maximum(d2 - budget, 0.0) ** 2

    def freeze(self, f: Model, x_train: jax.Array) -> Model:
        """The deployed predictor: ``d_2(f)`` measured once on ``x_train``.

        For the projection ``x ↦ Q_S f(x) + s (f(x) − Q_S f(x))`` with
        ``s = min(1, budget / d_2(f; x_train))`` (both ``d_2`` units) fixed: each
        prediction depends on its own input only (as batch norm at inference).
        ``f`` may be the raw network or ``reg.model(net)``; a :class:`BudgetModel`
        is unwrapped first. For the hinge, ``f`` (unwrapped likewise).
        """
        check_callable("f", f)
        f = _unwrap(f)
        if not self.is_projection:
            return f
        d2 = orbit_stats(f, jnp.asarray(x_train), self.group, chunk_size=self.chunk_size).d2
        scale = jax.lax.stop_gradient(_budget_scale(d2, self.budget))
        return BudgetModel(_function(f), self.group, self.budget, scale, self.chunk_size)

    def report(self, f: Model, x: jax.Array) -> RegularizerReport:
        """``d_2`` and sup defect of ``f`` on each candidate, the active set, budget and bound.

        ``d_2`` and the budget in ``d_2`` units; the sup defect, and the level at
        which the bound is evaluated, in sup-norm units. No gradient flows. Pass
        the trained predictor (e.g. ``reg.freeze(f, x)``) to report what is
        deployed. The bound is computed on ``x`` (pass the training inputs);
        it applies only where ``f``'s outputs lie in the constants' box
        ``[−M, M]^{d_y}`` (else ``bound_applies`` is False and ``bound`` is
        ``inf``).

        Raises:
            TypeError: when called under ``jit`` (the bound's covering numbers are
                computed on the host).
            ValueError: if ``f``'s outputs do not have ``constants.output_dim``
                coordinates.
        """
        check_callable("f", f)
        if not (is_concrete(x) and is_concrete(self.choice.index)):
            raise TypeError(_REPORT_UNDER_JIT)
        model = _no_gradient(f)
        outputs = model(x)
        if not is_concrete(outputs):
            raise TypeError(_REPORT_UNDER_JIT)
        _check_output_dim("f's outputs", outputs.shape[1:], self.constants)
        max_output = float(jnp.max(jnp.abs(outputs)))
        bound_applies = max_output <= float(self.constants.output_bound)
        distance = jnp.stack(
            [orbit_stats(model, x, s, chunk_size=self.chunk_size).d2 for s in self.candidates]
        )
        sup = jnp.stack([_sup_defect(model, x, s) for s in self.candidates])
        index = int(self.choice.index)
        if bound_applies:
            bound = generalization_bound(
                x,
                self.group,
                self.constants,
                eps=float(sup[index]),
                num_levels=len(self.candidates),
            ).total
        else:
            bound = jnp.asarray(jnp.inf, jnp.float32)
        return RegularizerReport(
            names=tuple(s.name for s in self.candidates),
            distance=distance,
            sup_defect=sup,
            active=index,
            active_name=self.group.name,
            budget=self.budget,
            max_output=max_output,
            bound_applies=bound_applies,
            bound=bound,
        )


_REPORT_UNDER_JIT = (
    "BoundRegularizer.report(f, x) runs eagerly: it computes the bound's covering numbers "
    "on the host and cannot run under jax.jit / eqx.filter_jit / nnx.jit. Call it outside "
    "the jitted function, with concrete x and f (e.g. after training)."
)


def _check_output_dim(what: str, shape: tuple[int, ...], constants: BoundConstants) -> None:
    dim = int(np.prod(shape, dtype=np.int64))
    if is_concrete(constants.output_dim) and dim != int(constants.output_dim):
        raise ValueError(
            f"{what} have {dim} coordinates per example (shape {tuple(shape)}), but "
            f"constants.output_dim is {int(constants.output_dim)}: the bound's constants "
            "must describe the model's outputs (build them with output_dim="
            f"{dim})."
        )


def _unwrap(f: Model) -> Model:
    """The underlying network of a :class:`BudgetModel` (training or frozen), else ``f``."""
    while isinstance(f, BudgetModel):
        f = f.f
    return f


def _function(f: Model) -> Model:
    """``f`` as a plain function (a field of :class:`BudgetModel`; parameters stay closed over)."""
    return f if isinstance(f, eqx.Module) else lambda x: f(x)


def _no_gradient(f: Model) -> Model:
    return lambda x: jax.lax.stop_gradient(f(x))


# ============================================================================ the builder


def _element_rows(group: TransformationSet) -> np.ndarray:
    leaves = jax.tree_util.tree_leaves(group.elements)
    return np.concatenate(
        [np.asarray(leaf, np.float64).reshape(group.size, -1) for leaf in leaves], axis=1
    )


def _missing(small: TransformationSet, large: TransformationSet, tol: float = 1e-4) -> list[int]:
    """Indices of ``small``'s elements that are not elements of ``large`` (within ``tol``)."""
    a, b = _element_rows(small), _element_rows(large)
    if a.shape[1] != b.shape[1]:
        return list(range(small.size))
    missing = []
    for start in range(0, len(a), 256):  # bounded memory for large groups
        distance = np.abs(a[start : start + 256, None, :] - b[None, :, :]).max(-1).min(-1)
        missing += (start + np.flatnonzero(distance > tol)).tolist()
    return missing


def _check_inside(small, large, small_name: str, large_name: str) -> None:
    """Raise unless every element of ``small`` is an element of ``large``, acting alike."""
    if small.action != large.action or small.output_action != large.output_action:
        raise ValueError(
            f"{small_name} ({small!r}) and {large_name} ({large!r}) must act the same way on "
            "inputs and on outputs (the same group family; both invariant or both "
            "equivariant) to be nested."
        )
    missing = _missing(small, large)
    if missing:
        element = small.action.format_element(small.element(missing[0]))
        raise ValueError(
            f"{small_name} ({small.name}) is not a subgroup of {large_name} ({large.name}): "
            f"{len(missing)} of its {small.size} elements are not in {large.name}, e.g. "
            f"element {missing[0]}: {element}. Candidates must be nested, each a subgroup of "
            "the next (e.g. [C2, C4, C8]; C3 is not inside C4, D2 is not inside C8)."
        )


def _check_candidates(group: TransformationSet, candidates) -> tuple[TransformationSet, ...]:
    """The candidates, nested by inclusion of their elements, the largest being ``group``."""
    if candidates is None:
        candidates = [group]
    if isinstance(candidates, TransformationSet) or not isinstance(candidates, Sequence):
        raise TypeError(
            "candidates must be a list of nested symmetry sets, e.g. [C2, C4, C8]; "
            f"got {candidates!r}."
        )
    if len(candidates) == 0:
        raise ValueError("candidates must hold at least one symmetry set.")
    for k, candidate in enumerate(candidates):
        check_group(candidate, f"candidates[{k}]")
        if not candidate.is_group:
            raise ValueError(
                f"candidates[{k}] ({candidate!r}) must be a group (is_group=True): the budget "
                "projection and the predictive trade-off need the exact projection Q_S. "
                "For a range of rotations use an evenly spaced cyclic subgroup."
            )
    for k, (a, b) in enumerate(itertools.pairwise(candidates)):
        if b.size <= a.size:
            raise ValueError(
                "candidates must be nested, smallest first (each a proper subgroup of the "
                f"next); got sizes {[c.size for c in candidates]}."
            )
        _check_inside(a, b, f"candidates[{k}]", f"candidates[{k + 1}]")
    last = candidates[-1]
    if last.size != group.size:
        raise ValueError(
            f"the largest candidate must be the group itself: group is {group.name} "
            f"({group.size} elements) but candidates[-1] is {last.name} ({last.size} "
            f"elements). Pass candidates=[..., {group.name}] (smallest first, ending with "
            "the group), or group=candidates[-1]."
        )
    _check_inside(last, group, "candidates[-1]", "group")
    return tuple(candidates)


def _check_beta(beta) -> float:
    """``None`` (the projection: ``inf``), or a real, finite ``β > 0``."""
    if beta is None:
        return math.inf
    if isinstance(beta, bool | np.bool_) or not isinstance(beta, numbers.Real):
        raise TypeError(
            "beta must be None (the budget projection) or a real number > 0 (the hinge "
            f"weight); got {type(beta).__name__}: {beta!r:.40}."
        )
    check_positive("beta", beta)
    return float(beta)


def _check_labels(y, n: int, dtype) -> jax.Array:
    """``y`` with ``n`` rows, finite, as floats; 1-D integer class labels refused."""
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != n:
        raise ValueError(f"y must have a leading axis of length {n}; got shape {y.shape}.")
    if not jnp.issubdtype(y.dtype, jnp.inexact):
        if y.ndim == 1:
            raise ValueError(
                f"y is a 1-D array of {y.dtype} labels (shape {y.shape}): bound_regularizer "
                "regresses y with the squared loss, so class labels would be treated as "
                "numbers. For classes pass one-hot rows, jax.nn.one_hot(y, num_classes), and "
                "a model with num_classes outputs; for numeric targets pass y.astype(float)."
            )
        y = y.astype(dtype)
    check_finite(f"y (all {n} labels)", y)
    return y


def _lipschitz_estimate(model: Model, x: jax.Array, max_points: int = 256) -> float:
    """Largest Jacobian Frobenius norm of ``model`` over (a subsample of) ``x``.

    An estimate, not a certificate (docs/theory.md §4: ``L`` must be certified for a
    certified bound).
    """
    points = x[: min(max_points, x.shape[0])]

    def one(z):
        return model(z[None])[0]

    jac = jax.vmap(jax.jacrev(one))(points)
    norms = jnp.sqrt(jnp.sum(jac.reshape(points.shape[0], -1) ** 2, axis=-1))
    return float(jnp.max(norms))


def bound_regularizer(
    x: jax.Array,
    y: jax.Array,
    group: TransformationSet,
    *,
    fit: Fit | None,
    candidates: Sequence[TransformationSet] | None = None,
    beta: float | None = None,
    num_folds: int = 5,
    key: jax.Array | None,
    fold_models: Sequence[Model] | None = None,
    full_model: Model | None = None,
    constants: BoundConstants | None = None,
    chunk_size: int | None = None,
) -> BoundRegularizer:
    """Build the bound regularizer from the training data (docs/theory.md §7, §8).

    1. **Fits.** Cross-fitting folds from ``key`` (the rule of
       ``predictive.cross_fitting_folds``); ``fit`` trains the user's model
       class without a regularizer on each ``K − 1`` folds and on all the data
       (K + 1 calls), unless ``fold_models`` (in fold order) and ``full_model``
       are given, e.g. trained in one vectorized loop.
    2. **Which set** (only with several candidates). For each nested candidate
       ``S_k`` the bound of §4 (sup-defect level ε = 0 on ``S_k``, union bound
       over the K candidates) plus the estimated approximation error
       ``‖(I − Q_{S_k}) f*‖² ≈ max(B_k, 0)`` (the cross-fitted alignment of §8);
       the active set minimizes the sum (ties go to the larger set).
    3. **How much.** The budget ``ε̂* = predictive_tradeoff(...).eps_star`` on
       the active set: ``t* · d_2(f̂)``, the predicted best level in ``d_2`` units (§8).

    ``beta=None`` (default) trains through the budget projection
    ``f ↦ Q_S f + min(1, ε̂*/d_2(f)) (f − Q_S f)`` and needs no tuning;
    a finite ``beta`` uses the hinge penalty ``β (d_2(f) − ε̂*)_+²`` instead
    (see the module docstring for why the projection is the default).

    Args:
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` training labels, the model's output shape (squared
            loss; one-hot labels for a classifier that outputs probabilities).
            1-D integer labels are refused (class indices are not numbers to
            regress); integer arrays of higher rank are cast to floats.
        group: the symmetry group: the largest candidate (the only one by default).
        fit: ``fit(x, y)`` returns a batched predictor (unregularized); may be
            ``None`` when ``fold_models`` and ``full_model`` are given.
        candidates: nested groups, smallest first, each a subgroup of the next
            (checked on the elements), ending with ``group``, e.g.
            ``[C2, C4, C8]`` for ``group=C8``; default ``[group]``.
        beta: ``None`` for the projection; else the hinge weight, a real,
            finite ``β > 0`` (not a bool or a string).
        num_folds: K ≥ 2 cross-fitting folds.
        key: PRNG key for the fold split, e.g. ``jax.random.key(0)``
            (keyword-only; ``None`` takes every K-th example).
        fold_models: optional K predictors already fitted on the folds of
            ``cross_fitting_folds(n, K, key=key)`` (fold k trained without fold k).
        full_model: optional predictor fitted on all the data.
        constants: the bound's constants; ``None`` estimates them (squared
            loss, ``M = Y = max ‖y‖``, ``L`` = the full fit's largest Jacobian
            norm): the bound is then an estimate (docs/theory.md §4). Given
            constants must have ``output_dim`` equal to the labels' size per example.
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        A :class:`BoundRegularizer` with its budget ``ε̂*`` in ``d_2`` units.

    Raises:
        ValueError / TypeError: on a malformed argument, named in the message,
            before any fit.
    """
    check_group(group)
    x = check_batch(group, x)
    n = x.shape[0]
    y = _check_labels(y, n, x.dtype)
    candidates = _check_candidates(group, candidates)
    num_folds = positive_int("num_folds", num_folds, minimum=2, maximum=n)
    check_chunk_size(chunk_size)
    beta = _check_beta(beta)
    if key is not None:
        check_key(key)
    if constants is not None:
        _check_output_dim("the labels y", y.shape[1:], constants)
    if (fold_models is None) != (full_model is None):
        raise ValueError("pass both fold_models and full_model, or neither.")
    if fold_models is None:
        check_callable("fit", fit)
        folds = cross_fitting_folds(n, num_folds, key=key)
        fold_models = []
        for held_out in folds:
            train = np.setdiff1d(np.arange(n), held_out)
            fold_models.append(fit(x[train], y[train]))
        full_model = fit(x, y)
    elif len(fold_models) != num_folds:
        raise ValueError(
            f"fold_models must hold num_folds={num_folds} models; got {len(fold_models)}."
        )
    tradeoffs = [
        predictive_tradeoff(
            None,
            x,
            y,
            s,
            num_folds=num_folds,
            key=key,
            fold_models=fold_models,
            full_model=full_model,
        )
        for s in candidates
    ]
    approximation = jnp.stack([jnp.maximum(t.alignment, 0.0) for t in tradeoffs])
    if constants is None:
        label_bound = float(jnp.max(jnp.sqrt(jnp.sum(y.reshape(n, -1) ** 2, axis=-1))))
        constants = _squared_loss_constants(
            _lipschitz_estimate(full_model, x),
            max(label_bound, 1e-6),
            int(np.prod(y.shape[1:], dtype=np.int64)),
        )
    if len(candidates) > 1:
        generalization = jnp.stack(
            [
                generalization_bound(x, s, constants, eps=0.0, num_levels=len(candidates)).total
                for s in candidates
            ]
        )
        total = np.asarray(approximation + generalization, np.float64)
        index = int(len(total) - 1 - np.argmin(total[::-1]))  # ties: the larger set
    else:
        generalization = jnp.full((1,), jnp.nan)
        total = approximation + generalization
        index = 0
    choice = CandidateChoice(
        index=index,
        approximation=approximation,
        generalization=generalization,
        total=jnp.asarray(total),
        eps_star=jnp.stack([t.eps_star for t in tradeoffs]),
        t_star=jnp.stack([t.t_star for t in tradeoffs]),
        distance=jnp.stack([t.distance for t in tradeoffs]),
    )
    return BoundRegularizer(
        budget=jnp.asarray(tradeoffs[index].eps_star, jnp.float32),
        group=candidates[index],
        candidates=candidates,
        choice=choice,
        constants=constants,
        beta=beta,
        chunk_size=chunk_size,
    )
