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

import math
import numbers
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._static import Fixed
from jaxsym._validation import (
    check_callable,
    check_chunk_size,
    check_group,
    check_positive,
    is_concrete,
)
from jaxsym.bounds import generalization_bound
from jaxsym.constants import BoundConstants, squared_loss_constants
from jaxsym.decision import Model, SymmetryChoice, set_name
from jaxsym.defects import OrbitStats, orbit_stats, pointwise_defects
from jaxsym.groups import TransformationSet, element_indices, subset_of

__all__ = [
    "BoundRegularizer",
    "BudgetModel",
    "RegularizerReport",
    "bound_regularizer",
    "lipschitz_estimate",
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


class _Held:
    """A static holder compared by identity: the decision a regularizer was built from."""

    __slots__ = ("raw",)

    def __init__(self, raw):
        self.raw = raw


class RegularizerReport(NamedTuple):
    """State of a model under a :class:`BoundRegularizer` (no gradient; docs/theory.md §4, §7).

    Every number is measured on the inputs ``x`` given to :meth:`BoundRegularizer.report`;
    the sample quantities are **estimates** of their population versions.

    Attributes:
        names: the candidate sets' names.
        distance: ``(K,)`` ``d_2(f)`` on each candidate, on ``x`` (``d_2`` units).
        sup_defect: ``(K,)`` sample sup defect ``max_{g, b} e_f(x_b, g)`` on each
            candidate (sup-norm units): a *lower estimate* of ``ee_∞`` (§2),
            never a certified level.
        active: index of the active set in ``names``.
        active_name: its name.
        budget: the budget ``ε̂*`` on the active set (``d_2`` units).
        max_output: ``max_{b, i} |f(x_b)_i|``, to compare with ``output_bound``.
        outputs_in_box: whether the outputs on ``x`` lie in the box ``[−M, M]^{d_y}``
            of the constants (necessary for the theory bound, not sufficient:
            the class needs it on the whole domain). When False both bounds are
            ``inf``.
        level: the sup-defect level ``ε`` at which the theory bound is evaluated:
            0 when ``f`` is exactly symmetric on the active set by construction
            (a :class:`BudgetModel` at ``s = 0`` on a group), else the sample
            sup defect on the active set (an estimate).
        num_options: K, the options the union bound counts (every set and dial
            level the screen compared).
        loss_range: ``B``, the loss's range (a gap of ``B`` or more is vacuous).
        bound_estimate: the theory bound ``Gen_n(S, ε)`` of §4 on the
            generalization gap ``R(f) − R̂_n(f)`` at ``level``, with the union over
            ``num_options`` (loss units). Always filled; an *estimate* unless
            ``certified``.
        certified: whether ``bound_estimate`` is also a certificate: constants
            given by the user (fixed before the data), candidate sets fixed
            before the data, and ``level`` exact by construction (ε = 0). A
            sample sup defect never certifies.
        certified_bound: ``bound_estimate`` when ``certified``, else NaN.
        vacuous: whether the bound is ``≥ B`` (it then says nothing: ``R ≤ B``
            holds trivially).
        summary: the above in one sentence.
    """

    names: tuple[str, ...]
    distance: jax.Array
    sup_defect: jax.Array
    active: int
    active_name: str
    budget: jax.Array
    max_output: float
    outputs_in_box: bool
    level: float
    num_options: int
    loss_range: float
    bound_estimate: float
    certified: bool
    certified_bound: float
    vacuous: bool
    summary: str


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
        constants: the theory bound's constants (for :meth:`report`), or ``None``.
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

    def report(self, f: Model, x: jax.Array) -> RegularizerReport:
        """``d_2`` and sample sup defect of ``f`` per candidate, and the theory bound (§4, §7).

        ``d_2`` and the budget in ``d_2`` units; the sup defect, and the level at
        which the bound is evaluated, in sup-norm units. No gradient flows. Pass
        the deployed predictor (``reg.freeze(f, x)``) and the training inputs.

        The theory bound ``Gen_n(S, ε)`` on the active set counts every option
        the screen compared (``K = len(choice.names)``) in its union. It is
        reported as **certified** only when all of these hold (docs/theory.md
        §4, "What certified requires"): the constants were given by the user,
        the candidate sets were fixed before the data, and ``f`` is exactly
        symmetric on the active group by construction (a :class:`BudgetModel`
        frozen at ``s = 0``, so ``ε = 0``). Otherwise ``ε`` is the sample sup
        defect, a lower estimate, and the number is an *estimate*
        (``bound_estimate``, with ``certified_bound`` NaN). A bound ``≥ B`` is
        flagged ``vacuous``. The user remains responsible for what the
        constants claim (``L`` certified, outputs in ``[−M, M]^{d_y}`` on the
        whole domain); the sample check ``outputs_in_box`` is necessary only.

        Raises:
            TypeError: when called under ``jit`` (the bound's covering numbers are
                computed on the host).
            ValueError: if there are no constants, or ``f``'s outputs do not have
                ``constants.output_dim`` coordinates.
        """
        check_callable("f", f)
        if self.constants is None:
            raise ValueError(
                "report needs the bound's constants: build the regularizer with "
                "bound_regularizer (which estimates them) or pass constants=."
            )
        if not (is_concrete(x) and is_concrete(self.budget)):
            raise TypeError(_REPORT_UNDER_JIT)
        model = _no_gradient(f)
        outputs = model(x)
        if not is_concrete(outputs):
            raise TypeError(_REPORT_UNDER_JIT)
        _check_output_dim("f's outputs", outputs.shape[1:], self.constants)
        max_output = float(jnp.max(jnp.abs(outputs)))
        in_box = max_output <= float(self.constants.output_bound)
        distance = jnp.stack(
            [orbit_stats(model, x, s, chunk_size=self.chunk_size).d2 for s in self.candidates]
        )
        sup = jnp.stack([_sup_defect(model, x, s) for s in self.candidates])
        index = _position(self.candidates, self.group)
        exact = _exact_by_construction(f, self.group)
        scale = max(max_output, float(self.constants.output_bound), 1e-30)
        if exact and float(sup[index]) > _ROUNDING * scale:
            exact = False  # the sample says otherwise: never certify ε = 0 with a defect
        level = 0.0 if exact else float(sup[index])
        options = self.choice.num_options if self.choice is not None else len(self.candidates)
        loss_range = float(self.constants.loss.loss_range)
        if in_box:
            bound = float(
                generalization_bound(
                    x, self.group, self.constants, eps=level, num_levels=options
                ).total
            )
        else:
            bound = math.inf
        certified = (
            in_box and exact and self.constants_given and self.candidates_fixed
            and self.choice is not None
        )  # fmt: skip
        vacuous = bound >= loss_range
        return RegularizerReport(
            names=tuple(s.name for s in self.candidates),
            distance=distance,
            sup_defect=sup,
            active=index,
            active_name=self.group.name,
            budget=self.budget,
            max_output=max_output,
            outputs_in_box=in_box,
            level=level,
            num_options=options,
            loss_range=loss_range,
            bound_estimate=bound,
            certified=certified,
            certified_bound=bound if certified else math.nan,
            vacuous=vacuous,
            summary=_summary(bound, certified, vacuous, in_box, exact, self, loss_range, level),
        )


def _same_elements(a: TransformationSet, b: TransformationSet) -> bool:
    """Whether two sets hold the same elements (any order), compared element by element."""
    if a is b:
        return True
    if a.size != b.size or type(a.action) is not type(b.action):
        return False
    try:
        return len(np.unique(element_indices(a, b.elements))) == a.size
    except (ValueError, TypeError):
        return False


def _position(candidates, group) -> int:
    """The active set's row among the candidates, matched by elements; never a guess."""
    for k, candidate in enumerate(candidates):
        if _same_elements(candidate, group):
            return k
    raise ValueError(
        f"the active set {group.name} is not among the candidate sets "
        f"({', '.join(c.name for c in candidates)}): pass it in candidates."
    )


def _exact_by_construction(f: Model, group: TransformationSet) -> bool:
    """Whether ``f`` is ``Q_S g`` over the active group ``S`` itself (same elements), at s = 0."""
    if group.size == 1:
        return True  # e_f(x, e) = 0 for every f
    if not (isinstance(f, BudgetModel) and group.is_group and f.group.is_group):
        return False
    if not _same_elements(f.group, group):
        return False
    scale = f.scale if f.scale is not None else f.budget
    return bool(is_concrete(scale) and float(jnp.max(jnp.abs(scale))) == 0.0)


def _summary(bound, certified, vacuous, in_box, exact, reg, loss_range, level) -> str:
    if not in_box:
        return (
            "theory bound not applicable: the outputs leave the constants' box [−M, M] "
            f"(M = {float(reg.constants.output_bound):g})."
        )
    kind = "certified theory bound" if certified else "theory bound (an estimate)"
    text = f"{kind} on the generalization gap: {bound:.4g} at ε = {level:.3g}"
    if vacuous:
        text += f", vacuous: ≥ the loss range B = {loss_range:g}, no information"
    if not certified:
        reasons = []
        if not reg.constants_given:
            reasons.append("estimated constants")
        if not exact:
            reasons.append("ε is a sample sup defect")
        if not reg.candidates_fixed or reg.choice is None:
            reasons.append("candidate sets not fixed before the data")
        text += f" ({', '.join(reasons)})" if reasons else ""
    return text + "."


_ROUNDING = 1e-5  # a sup defect this small relative to the outputs is float32 rounding

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
    points = x[: min(max_points, x.shape[0])]

    def one(z):
        return model(z[None])[0]

    jac = jax.vmap(jax.jacrev(one))(points)
    norms = jnp.sqrt(jnp.sum(jac.reshape(points.shape[0], -1) ** 2, axis=-1))
    return float(jnp.max(norms))


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
            estimates them for :meth:`~BoundRegularizer.report` (squared loss,
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
        _check_output_dim("the labels y", y.shape[1:], constants)
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
