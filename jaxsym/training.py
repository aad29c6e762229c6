"""Training at the right level of symmetry: the bound regularizer (docs/theory.md §7, §8).

The certified bound of §4 decides **which** symmetry set to keep among nested
candidates ``S_1 ⊂ S_2 ⊂ …``; the cross-fitted predictive trade-off of §8
decides **how much**: the budget ``ε̂* = t* · d_2(f̂)`` in ``d_2`` units. Training
is then held to that budget.

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

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._validation import (
    check_batch,
    check_callable,
    check_chunk_size,
    check_group,
    check_nonnegative,
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
    """``max_{g, b} e_f(x_b, g)`` on the batch (a lower estimate of ``ee_∞``, §2)."""
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
        approximation: ``(K,)`` estimated ``‖(I − Q_{S_k}) f*‖²``: the cross-fitted
            alignment ``max(B_k, 0)`` of :func:`jaxsym.predictive_tradeoff`.
        generalization: ``(K,)`` certified ``Gen_n(S_k, ε = 0)`` with the union
            bound over the K candidates (NaN when there is one candidate: no
            choice to make, nothing computed).
        total: ``(K,)`` ``approximation + generalization``; the active set is its
            minimizer (ties go to the larger set).
        eps_star: ``(K,)`` predicted budget ``ε̂*_k = t*_k · d_2(f̂)`` on each candidate.
        t_star: ``(K,)`` predicted dial level on each candidate.
        distance: ``(K,)`` ``d_2(f̂)`` of the unconstrained full-data fit on each candidate.
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
        distance: ``(K,)`` ``d_2(f)`` on each candidate, on the given inputs.
        sup_defect: ``(K,)`` sample sup defect ``max_{g, b} e_f(x_b, g)`` on each
            candidate (a lower estimate of ``ee_∞``, §2).
        active: index of the active set.
        active_name: its name.
        eps: the budget ``ε*`` (``d_2`` units) on the active set.
        bound: certified ``Gen_n(S, ε)`` on the active set at the model's current
            level ``ε`` = its sample sup defect there, with the union bound over
            the candidates. With the sample sup defect and estimated constants
            it is an *estimate* of the certified bound (docs/theory.md §4).
    """

    names: tuple[str, ...]
    distance: jax.Array
    sup_defect: jax.Array
    active: int
    active_name: str
    eps: jax.Array
    bound: jax.Array


# ============================================================================ the budget


def _budget_scale(d2: jax.Array, eps: jax.Array) -> jax.Array:
    """``s = min(1, ε / d_2)``, defined (and differentiable) at ``d_2 = 0``."""
    eps = jnp.asarray(eps, d2.dtype)
    over = d2 > eps
    return jnp.where(over, eps / jnp.where(over, d2, 1.0), 1.0)


def _dialed(stats: OrbitStats, scale: jax.Array) -> jax.Array:
    scale = jnp.asarray(scale, stats.outputs.dtype)
    return stats.symmetrized + scale * (stats.outputs - stats.symmetrized)


class BudgetModel(eqx.Module):
    """``x ↦ Q_S f(x) + s (f(x) − Q_S f(x))``, the model projected onto the budget (§7).

    In training (``scale=None``) ``s = min(1, ε / d_2(f))`` with ``d_2`` measured
    on the batch being predicted, so the model's ``d_2`` on the batch is
    ``min(d_2(f), ε)``; gradients flow through ``s``. Deployed
    (:meth:`BoundRegularizer.freeze`) ``s`` is a fixed number measured once on
    the training inputs, so a prediction depends on its own input only.

    Attributes:
        f: the underlying batched model.
        group: the active symmetry set ``S`` (a group).
        eps: the budget ``ε`` (``d_2`` units).
        scale: the frozen ``s``, or ``None`` in training.
        chunk_size: group elements per model call (``None``: automatic).
    """

    f: Model
    group: TransformationSet
    eps: jax.Array
    scale: jax.Array | None = None
    chunk_size: int | None = eqx.field(static=True, default=None)

    def __call__(self, x: jax.Array) -> jax.Array:
        stats = orbit_stats(self.f, x, self.group, chunk_size=self.chunk_size)
        scale = _budget_scale(stats.d2, self.eps) if self.scale is None else self.scale
        return _dialed(stats, scale)


class BoundRegularizer(eqx.Module):
    """The bound regularizer, built once from the training data (docs/theory.md §7, §8).

    A pytree (an :class:`equinox.Module`): pass it through ``jit``. Build it with
    :func:`bound_regularizer`.

    Attributes:
        eps: the budget ``ε*`` on the active set, in ``d_2`` units.
        group: the active symmetry set (chosen by the certified bound).
        candidates: the nested candidate sets.
        choice: :class:`CandidateChoice`, how the active set was chosen.
        constants: the bound's constants (for :meth:`report`).
        beta: ``inf`` for the budget projection (the default), else the hinge's β.
        chunk_size: group elements per model call (``None``: automatic).
    """

    eps: jax.Array
    group: TransformationSet
    candidates: tuple[TransformationSet, ...]
    choice: CandidateChoice
    constants: BoundConstants
    beta: float = eqx.field(static=True, default=math.inf)
    chunk_size: int | None = eqx.field(static=True, default=None)

    @property
    def is_projection(self) -> bool:
        """Whether this is the budget projection (``beta = inf``)."""
        return math.isinf(self.beta)

    def model(self, f: Model) -> Model:
        """The predictor to train: the budget projection of ``f``, or ``f`` for the hinge."""
        check_callable("f", f)
        if not self.is_projection:
            return f
        return BudgetModel(_function(f), self.group, self.eps, None, self.chunk_size)

    def __call__(self, f: Model, x_batch: jax.Array) -> jax.Array:
        """The scalar penalty on a batch: 0 for the projection, ``β (d_2(f) − ε)_+²`` else.

        Differentiable with respect to the parameters closed over by ``f``.
        """
        if self.is_projection:
            return jnp.zeros((), jnp.float32)
        base = f.f if isinstance(f, BudgetModel) else f
        d2 = orbit_stats(base, x_batch, self.group, chunk_size=self.chunk_size).d2
        return self.beta * jnp.maximum(d2 - self.eps, 0.0) ** 2

    def freeze(self, f: Model, x_train: jax.Array) -> Model:
        """The deployed predictor: ``d_2(f)`` measured once on ``x_train``.

        For the projection ``x ↦ Q_S f(x) + s (f(x) − Q_S f(x))`` with
        ``s = min(1, ε / d_2(f; x_train))`` fixed: each prediction depends on its
        own input only (as batch norm at inference). For the hinge, ``f``.
        """
        check_callable("f", f)
        if not self.is_projection:
            return f
        d2 = orbit_stats(f, jnp.asarray(x_train), self.group, chunk_size=self.chunk_size).d2
        scale = jax.lax.stop_gradient(_budget_scale(d2, self.eps))
        return BudgetModel(_function(f), self.group, self.eps, scale, self.chunk_size)

    def report(self, f: Model, x: jax.Array) -> RegularizerReport:
        """``d_2`` and sup defect of ``f`` on every candidate, the active set, ε*, the bound.

        No gradient flows. Pass the trained predictor (e.g. ``reg.freeze(f, x)``)
        to report what is deployed. The bound is computed on ``x`` (pass the
        training inputs).
        """
        check_callable("f", f)
        model = _no_gradient(f)
        distance = jnp.stack(
            [orbit_stats(model, x, s, chunk_size=self.chunk_size).d2 for s in self.candidates]
        )
        sup = jnp.stack([_sup_defect(model, x, s) for s in self.candidates])
        index = int(self.choice.index)
        bound = generalization_bound(
            x,
            self.group,
            self.constants,
            eps=float(sup[index]),
            num_levels=len(self.candidates),
        ).total
        return RegularizerReport(
            names=tuple(s.name for s in self.candidates),
            distance=distance,
            sup_defect=sup,
            active=index,
            active_name=self.group.name,
            eps=self.eps,
            bound=bound,
        )


def _function(f: Model) -> Model:
    """``f`` as a plain function (a field of :class:`BudgetModel`; parameters stay closed over)."""
    return f if isinstance(f, eqx.Module) else lambda x: f(x)


def _no_gradient(f: Model) -> Model:
    return lambda x: jax.lax.stop_gradient(f(x))


# ============================================================================ the builder


def _check_candidates(group: TransformationSet, candidates) -> tuple[TransformationSet, ...]:
    if candidates is None:
        candidates = [group]
    if isinstance(candidates, TransformationSet) or not isinstance(candidates, Sequence):
        raise TypeError(
            "candidates must be a list of nested symmetry sets, e.g. [C2, C4, C8]; "
            f"got {candidates!r}."
        )
    if len(candidates) == 0:
        raise ValueError("candidates must hold at least one symmetry set.")
    sizes = []
    for k, candidate in enumerate(candidates):
        check_group(candidate, f"candidates[{k}]")
        if not candidate.is_group:
            raise ValueError(
                f"candidates[{k}] ({candidate!r}) must be a group (is_group=True): the budget "
                "projection and the predictive trade-off need the exact projection Q_S. "
                "For a range of rotations use an evenly spaced cyclic subgroup."
            )
        sizes.append(candidate.size)
    if any(b <= a for a, b in itertools.pairwise(sizes)):
        raise ValueError(
            "candidates must be nested, smallest first (strictly growing sizes); "
            f"got sizes {sizes}."
        )
    return tuple(candidates)


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
       ``S_k`` the certified bound (§4, ε = 0 on ``S_k``, union bound over the
       K candidates) plus the estimated approximation error
       ``‖(I − Q_{S_k}) f*‖² ≈ max(B_k, 0)`` (the cross-fitted alignment of §8);
       the active set minimizes the sum (ties go to the larger set).
    3. **How much.** ``ε* = predictive_tradeoff(...).eps_star`` on the active set:
       ``t* · d_2(f̂)``, the predicted best ``d_2`` level (§8).

    ``beta=None`` (default) trains through the budget projection
    ``f ↦ Q_S f + min(1, ε*/d_2(f)) (f − Q_S f)`` and needs no tuning;
    a finite ``beta`` uses the hinge penalty ``β (d_2(f) − ε*)_+²`` instead
    (see the module docstring for why the projection is the default).

    Args:
        x: ``(n, *input)`` training inputs.
        y: ``(n, *output)`` training labels, the model's output shape (squared
            loss; one-hot labels for a classifier that outputs probabilities).
        group: the symmetry group (the default single candidate).
        fit: ``fit(x, y)`` returns a batched predictor (unregularized); may be
            ``None`` when ``fold_models`` and ``full_model`` are given.
        candidates: nested groups, smallest first, e.g. ``[C2, C4, C8]``;
            default ``[group]``.
        beta: ``None`` for the projection; else the hinge weight ``β > 0``.
        num_folds: K ≥ 2 cross-fitting folds.
        key: PRNG key for the fold split (keyword-only; ``None`` takes every
            K-th example).
        fold_models: optional K predictors already fitted on the folds of
            ``cross_fitting_folds(n, K, key=key)`` (fold k trained without fold k).
        full_model: optional predictor fitted on all the data.
        constants: the bound's constants; ``None`` estimates them (squared
            loss, ``M = Y = max ‖y‖``, ``L`` = the full fit's largest Jacobian
            norm): the bound is then an estimate (docs/theory.md §4).
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        A :class:`BoundRegularizer`.

    Raises:
        ValueError / TypeError: on a malformed argument, named in the message.
    """
    check_group(group)
    x = check_batch(group, x)
    n = x.shape[0]
    y = jnp.asarray(y)
    if y.ndim < 1 or y.shape[0] != n:
        raise ValueError(f"y must have a leading axis of length {n}; got shape {y.shape}.")
    if not jnp.issubdtype(y.dtype, jnp.floating):
        y = y.astype(x.dtype)
    candidates = _check_candidates(group, candidates)
    num_folds = positive_int("num_folds", num_folds, minimum=2, maximum=n)
    check_chunk_size(chunk_size)
    if beta is None:
        beta = math.inf
    else:
        check_nonnegative("beta", beta)
        beta = float(beta)
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
        eps=jnp.asarray(tradeoffs[index].eps_star, jnp.float32),
        group=candidates[index],
        candidates=candidates,
        choice=choice,
        constants=constants,
        beta=beta,
        chunk_size=chunk_size,
    )
