"""Training at the right level of symmetry: the bound regularizer (docs/theory.md §7, §8, §9).

:func:`jaxsym.choose_symmetry` decides **which** symmetry set to keep and **how
much** (the one-standard-error rule on the cross-fitted dial risk, §8, §9); the
budget is its ``ε̂* = t* · d_2(f̂)``. Training is then held to that budget. The
regularizer makes no decision of its own: on the same data it keeps what
``choose_symmetry`` (and the audit) chose.

Units. Three defect scales meet here and each keeps its own name:

* ``budget`` and ``d_2``: the L2 distance to equivariance
  ``d_2(f) = ‖(I − Q_S) f‖_{L²(μ)} = (mean_b ‖f(x_b) − Q_S f(x_b)‖²)^{1/2}`` on
  the inputs (``d_2`` units, docs/theory.md §2, §8; ``ee_2 = √2 d_2``);
* ``sup_defect``: the sample sup defect ``max_{g, b} e_f(x_b, g)`` (sup-norm
  units), a lower estimate of the level ``ε`` that the theory bound of §4 takes;
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

Why the projection is the default (an argument, not a measurement: the
package's benchmarks run the projection only): a penalty on the raw network (the hinge, or the
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

    reg = bound_regularizer(choose_symmetry(x, y, group, fit=fit, key=key))
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

import math
import numbers
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.static import Fixed
from jaxsym._src.types import Model
from jaxsym._src.validation import (
    check_callable,
    check_chunk_size,
    check_group,
    check_output_dim,
    check_positive,
)
from jaxsym.constants import BoundConstants, squared_loss_constants
from jaxsym.decision import SymmetryChoice, set_name
from jaxsym.defects import OrbitStats, orbit_stats
from jaxsym.groups import TransformationSet, subset_of

__all__ = [
    "BoundRegularizer",
    "BudgetModel",
    "bound_regularizer",
    "lipschitz_estimate",
]


# ============================================================================ helpers


def _squared_loss_constants(lipschitz, label_bound, output_dim) -> BoundConstants:
    """Estimated constants: outputs and labels bounded by the labels' largest norm (§4)."""
    loss = squared_loss_constants(label_bound, output_dim, label_bound)
    return BoundConstants(
        lipschitz=float(lipschitz), output_bound=label_bound, loss=loss, output_dim=output_dim
    )


# ============================================================================ results


class _Held:
    """A static holder compared by identity: the decision a regularizer was built from."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw


# ============================================================================ the budget


def _budget_scale(d2: jax.Array, budget: jax.Array) -> jax.Array:
    """``s = min(1, budget / d_2)`` (both ``d_2`` units), differentiable at ``d_2 = 0``."""
    budget = jnp.asarray(budget, d2.dtype)
    over = d2 > budget
    scale = jnp.where(over, budget / jnp.where(over, d2, 1.0), 1.0)
    return jnp.where(budget <= 0, jnp.zeros_like(scale), scale)  # budget 0: exactly Q_S f


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
    """The bound regularizer, built once from the training data (docs/theory.md §7, §8, §9).

    One job: train and deploy a model at the budget. ``reg.model(f)`` is the
    model to train, ``reg(g, x)`` the penalty to add to the loss, and
    ``reg.freeze(f, x)`` the deployed model; what the result can claim is
    :func:`jaxsym.regularizer_report`'s question, not this class's.

    A pytree (an :class:`equinox.Module`): pass it through ``jit`` (its budget is
    a leaf, so regularizers that differ only in their budget share one trace).
    It is not a model to train: train ``reg.model(f)``, whose group and budget
    never train. Build it with :func:`bound_regularizer`.

    Args:
        budget: the budget ``ε̂*`` on the active set (``d_2`` units).
        group: the active symmetry set.
        candidates: the candidate sets (default ``(group,)``).
        choice: the :class:`jaxsym.SymmetryChoice` that chose ``group`` and the
            budget, or ``None`` for a hand-set budget.
        constants: the theory bound's constants (for
            :func:`jaxsym.regularizer_report`), or ``None``.
        constants_given: whether the user supplied ``constants`` (fixed before
            the data); estimated constants make every reported bound an estimate.
        candidates_fixed: whether the candidate sets were fixed before the data
            (given by the user, or every subgroup of the group).
        beta: ``None`` for the budget projection, else the hinge's β.
        chunk_size: group elements per model call (``None``: automatic).

    Attributes:
        budget: as above (a leaf).
        group: the active symmetry set (chosen by :func:`jaxsym.choose_symmetry`).
        candidates: the candidate sets.
        constants: the bound's constants.
        beta: ``inf`` for the budget projection (the default), else the hinge's β
            (units of the loss per ``d_2²``).
        chunk_size: group elements per model call.
    """

    budget: jax.Array
    group: TransformationSet
    candidates: tuple[TransformationSet, ...]
    constants: BoundConstants | None
    fixed_choice: _Held | None = eqx.field(static=True)
    constants_given: bool = eqx.field(static=True)
    candidates_fixed: bool = eqx.field(static=True)
    beta: float = eqx.field(static=True)
    chunk_size: int | None = eqx.field(static=True)

    def __init__(
        self,
        budget,
        group: TransformationSet,
        *,
        candidates: Sequence[TransformationSet] | None = None,
        choice: SymmetryChoice | None = None,
        constants: BoundConstants | None = None,
        constants_given: bool = False,
        candidates_fixed: bool = False,
        beta: float | None = None,
        chunk_size: int | None = None,
    ):
        check_group(group)
        check_chunk_size(chunk_size)
        self.budget = jnp.asarray(budget, jnp.float32)
        self.group = group
        self.candidates = (group,) if candidates is None else tuple(candidates)
        self.constants = constants
        self.fixed_choice = None if choice is None else _Held(choice)
        self.constants_given = bool(constants_given and constants is not None)
        self.candidates_fixed = bool(candidates_fixed)
        self.beta = _check_beta(beta)
        self.chunk_size = chunk_size

    @property
    def choice(self) -> SymmetryChoice | None:
        """The :class:`jaxsym.SymmetryChoice` behind the set and budget (``None`` if hand-set)."""
        return None if self.fixed_choice is None else self.fixed_choice.raw

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


def _unwrap(f: Model) -> Model:
    """The underlying network of a :class:`BudgetModel` (training or frozen), else ``f``."""
    while isinstance(f, BudgetModel):
        f = f.f
    return f


def _function(f: Model) -> Model:
    """``f`` as a plain function (a field of :class:`BudgetModel`; parameters stay closed over)."""
    return f if isinstance(f, eqx.Module) else lambda x: f(x)


# ============================================================================ the builder


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


def lipschitz_estimate(model: Model, x: jax.Array, max_points: int = 256) -> float:
    """Largest Jacobian Frobenius norm of ``model`` over (a subsample of) ``x``.

    An estimate, not a certificate (docs/theory.md §4: ``L`` must be certified for a
    certified bound).
    """
    points = jnp.asarray(x[: min(max_points, x.shape[0])])
    return float(_max_jacobian_norm(model, points))


@eqx.filter_jit
def _max_jacobian_norm(model: Model, points: jax.Array) -> jax.Array:
    """``max_b ‖J_f(x_b)‖_F``, one compiled program (the model's arrays are arguments)."""

    def one(z):
        return model(z[None])[0]

    jac = jax.vmap(jax.jacrev(one))(points)
    return jnp.max(jnp.sqrt(jnp.sum(jac.reshape(points.shape[0], -1) ** 2, axis=-1)))


def bound_regularizer(
    choice: SymmetryChoice,
    *,
    beta: float | None = None,
    constants: BoundConstants | None = None,
    chunk_size: int | None = None,
) -> BoundRegularizer:
    """The bound regularizer of a decision: its set, at its budget (docs/theory.md §7, §8b, §9).

    The decision is :func:`jaxsym.choose_symmetry`'s (one cross-fit of models
    trained at each option); the regularizer makes none of its own. It holds a
    user's network to the chosen set ``H`` at the budget ``ε̂* = choice.budget``
    (``d_2`` units: the ``d_2`` of the model trained at the chosen level).

    ``beta=None`` (default) trains through the budget projection
    ``f ↦ Q_H f + min(1, ε̂*/d_2(f)) (f − Q_H f)`` and needs no tuning; a finite
    ``beta`` uses the hinge penalty ``β (d_2(f) − ε̂*)_+²`` instead (module
    docstring). ``t* = 0`` trains ``Q_H f`` exactly; no symmetry trains ``f``.
    ``H`` need not be a group: ``Q_H`` is then the partial average ``Q_ν``.

    Args:
        choice: a :class:`jaxsym.SymmetryChoice`.
        beta: ``None`` for the projection; else the hinge weight, a real, finite ``β > 0``.
        constants: the theory bound's constants, fixed before the data; ``None``
            estimates them for :func:`jaxsym.regularizer_report` (squared loss,
            ``M = Y = max ‖y‖``, ``L`` = the chosen model's largest Jacobian
            Frobenius norm on 256 inputs), whose bound is then an estimate.
        chunk_size: group elements per model call (``None``: automatic).

    Returns:
        A :class:`BoundRegularizer` whose ``.choice`` is ``choice``.

    Raises:
        TypeError, ValueError: naming the argument at fault.

    >>> import jax, jax.numpy as jnp
    >>> import jaxsym
    >>> from jaxsym import groups
    >>> x = jax.random.normal(jax.random.key(0), (120, 2))
    >>> y = jnp.cos(2 * jnp.linalg.norm(x, axis=1, keepdims=True))
    >>> fit = jaxsym.random_features_ridge(64, 1e-3, key=jax.random.key(1))
    >>> choice = jaxsym.choose_symmetry(x, y, groups.cyclic_rotations(4), fit=fit, key=None)
    >>> reg = bound_regularizer(choice)
    >>> reg.group.name == choice.name
    True
    """
    if not isinstance(choice, SymmetryChoice):
        raise TypeError(
            "bound_regularizer takes the decision: bound_regularizer(choose_symmetry(x, y, "
            f"group, fit=fit, key=key)); got {type(choice).__name__}."
        )
    check_chunk_size(chunk_size)
    _check_beta(beta)
    problem = choice.problem
    x, y = problem.x, problem.y
    n = x.shape[0]
    if constants is not None:
        check_output_dim("the labels y", y.shape[1:], constants.output_dim)
    constants_given = constants is not None
    if constants is None:
        label_bound = float(jnp.max(jnp.sqrt(jnp.sum(y.reshape(n, -1) ** 2, axis=-1))))
        constants = _squared_loss_constants(
            lipschitz_estimate(choice.model, x),
            max(label_bound, 1e-6),
            int(np.prod(y.shape[1:], dtype=np.int64)),
        )
    sets = tuple(
        subset_of(problem.group, members, name=set_name(problem.group, members))
        for members in choice.candidates
    )
    return BoundRegularizer(
        budget=choice.budget,
        group=choice.group,
        candidates=sets,
        choice=choice,
        constants=constants,
        constants_given=constants_given,
        candidates_fixed=problem.candidates_fixed,
        beta=beta,
        chunk_size=chunk_size,
    )
