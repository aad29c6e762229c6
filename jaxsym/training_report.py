"""What a model trained under a :class:`~jaxsym.BoundRegularizer` can claim (docs/theory.md §4, §7).

One question, one function: :func:`regularizer_report` measures a trained
model's ``d_2`` and sample sup defect on every candidate set and evaluates the
theory bound of §4 on the active set, saying whether that bound is certified,
an estimate, or vacuous. The regularizer itself (:mod:`jaxsym.training`) only
trains and freezes; it certifies nothing.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.types import Model
from jaxsym._src.validation import check_callable, check_output_dim, is_concrete
from jaxsym.bounds import generalization_bound
from jaxsym.defects import orbit_stats, pointwise_defects
from jaxsym.groups import TransformationSet, element_indices
from jaxsym.training import BoundRegularizer, BudgetModel

__all__ = ["RegularizerReport", "regularizer_report"]

#: A sup defect at most this fraction of the outputs' scale is float32 rounding.
ROUNDING = 1e-5


class RegularizerReport(NamedTuple):
    """State of a model under a :class:`~jaxsym.BoundRegularizer` (docs/theory.md §4, §7).

    Every number is measured, without gradient, on the inputs ``x`` given to
    :func:`regularizer_report`; the sample quantities are **estimates** of their
    population versions.

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
            the class needs it on the whole domain). When False the bound is ``inf``.
        level: the sup-defect level ``ε`` at which the theory bound is evaluated:
            0 when ``f`` is exactly symmetric on the active set by construction
            (a :class:`~jaxsym.BudgetModel` at ``s = 0`` over the active group's
            own elements, with a sample sup defect at rounding), else the
            sample sup defect on the active set (an estimate).
        num_options: the options the union bound counts (every set and dial
            level the screen compared: ``choice.num_options``).
        loss_range: ``B``, the loss's range (a gap of ``B`` or more is vacuous).
        bound_estimate: the theory bound ``Gen_n(S, ε)`` of §4 on the
            generalization gap ``R(f) − R̂_n(f)`` at ``level``, with the union over
            ``num_options`` (loss units). An *estimate* unless ``certified``.
        certified: whether ``bound_estimate`` is also a certificate (the
            reasons it is not are in ``uncertified_because``).
        certified_bound: ``bound_estimate`` when ``certified``, else NaN.
        vacuous: whether the bound is ``≥ B`` (it then says nothing).
        uncertified_because: why the bound is not certified, in words (empty
            when it is).
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
    uncertified_because: tuple[str, ...]
    summary: str


def regularizer_report(reg: BoundRegularizer, f: Model, x: jax.Array) -> RegularizerReport:
    """``d_2`` and sample sup defect of ``f`` per candidate, and the theory bound (§4, §7).

    ``d_2`` and the budget in ``d_2`` units; the sup defect, and the level ``ε``
    at which the bound is evaluated, in sup-norm units. Pass the deployed
    predictor (``reg.freeze(f, x)``) and the training inputs.

    The theory bound ``Gen_n(S, ε)`` on the active set counts every option the
    screen compared in its union. It is **certified** only when all of these
    hold (docs/theory.md §4, "What certified requires"): the constants were
    given by the user, the candidate sets were fixed before the data, the
    outputs on ``x`` lie in the constants' box, and ``f`` is exactly symmetric
    on the active group by construction (``ε = 0``: a frozen
    :class:`~jaxsym.BudgetModel` at ``s = 0`` over the same elements, whose
    sample sup defect is at rounding). Otherwise ``ε`` is the sample sup defect,
    a lower estimate, and the bound is an *estimate*. The user remains
    responsible for what the constants claim (``L`` certified, outputs in
    ``[−M, M]^{d_y}`` on the whole domain).

    Args:
        reg: the regularizer the model was trained under (with constants).
        f: the model, batched.
        x: ``(n, *input)`` the training inputs.

    Returns:
        A :class:`RegularizerReport`.

    Raises:
        TypeError: under ``jit`` (the bound's covering numbers are computed on
            the host), or if ``f`` is not callable.
        ValueError: if the regularizer has no constants, or ``f``'s outputs do
            not have ``constants.output_dim`` coordinates.

    >>> import jax, jax.numpy as jnp
    >>> import jaxsym
    >>> from jaxsym import groups
    >>> x = jax.random.normal(jax.random.key(0), (60, 2))
    >>> y = jnp.cos(2 * jnp.linalg.norm(x, axis=1, keepdims=True))
    >>> fit = jaxsym.random_features_ridge(32, 1e-3, key=jax.random.key(1))
    >>> choice = jaxsym.choose_symmetry(x, y, groups.cyclic_rotations(2), fit=fit, key=None)
    >>> reg = jaxsym.bound_regularizer(choice)
    >>> report = regularizer_report(reg, reg.freeze(choice.model, x), x)
    >>> report.certified  # estimated constants: an estimate
    False
    """
    check_callable("f", f)
    if reg.constants is None:
        raise ValueError(
            "regularizer_report needs the bound's constants: build the regularizer with "
            "bound_regularizer (which estimates them) or pass constants=."
        )
    if not (is_concrete(x) and is_concrete(reg.budget)):
        raise TypeError(_UNDER_JIT)
    model = _no_gradient(f)
    outputs = model(x)
    if not is_concrete(outputs):
        raise TypeError(_UNDER_JIT)
    check_output_dim("f's outputs", outputs.shape[1:], reg.constants.output_dim)
    max_output = float(jnp.max(jnp.abs(outputs)))
    output_bound = float(reg.constants.output_bound)
    in_box = max_output <= output_bound
    distance = jnp.stack(
        [orbit_stats(model, x, s, chunk_size=reg.chunk_size).d2 for s in reg.candidates]
    )
    sup = jnp.stack([jnp.max(pointwise_defects(model, x, s)) for s in reg.candidates])
    active = _position(reg.candidates, reg.group)
    rounding = ROUNDING * max(max_output, output_bound, 1e-30)
    exact = _exact_by_construction(f, reg.group) and float(sup[active]) <= rounding
    level = 0.0 if exact else float(sup[active])
    num_options = reg.choice.num_options if reg.choice is not None else len(reg.candidates)
    loss_range = float(reg.constants.loss.loss_range)
    bound = math.inf
    if in_box:
        bound = float(
            generalization_bound(
                x, reg.group, reg.constants, eps=level, num_levels=num_options
            ).total
        )
    because = _uncertified_because(reg, in_box=in_box, exact=exact)
    certified = not because
    vacuous = bound >= loss_range
    return RegularizerReport(
        names=tuple(s.name for s in reg.candidates),
        distance=distance,
        sup_defect=sup,
        active=active,
        active_name=reg.group.name,
        budget=reg.budget,
        max_output=max_output,
        outputs_in_box=in_box,
        level=level,
        num_options=num_options,
        loss_range=loss_range,
        bound_estimate=bound,
        certified=certified,
        certified_bound=bound if certified else math.nan,
        vacuous=vacuous,
        uncertified_because=because,
        summary=_summary(bound, level, loss_range, output_bound, because, in_box, vacuous),
    )


def _uncertified_because(reg: BoundRegularizer, *, in_box: bool, exact: bool) -> tuple[str, ...]:
    """Every requirement of a certified bound (§4) that fails, in words."""
    reasons = []
    if not in_box:
        reasons.append("outputs outside the constants' box")
    if not reg.constants_given:
        reasons.append("estimated constants")
    if not exact:
        reasons.append("ε is a sample sup defect")
    if not reg.candidates_fixed or reg.choice is None:
        reasons.append("candidate sets not fixed before the data")
    return tuple(reasons)


def _summary(bound, level, loss_range, output_bound, because, in_box, vacuous) -> str:
    if not in_box:
        return (
            "theory bound not applicable: the outputs leave the constants' box [−M, M] "
            f"(M = {output_bound:g})."
        )
    kind = "theory bound (an estimate)" if because else "certified theory bound"
    text = f"{kind} on the generalization gap: {bound:.4g} at ε = {level:.3g}"
    if vacuous:
        text += f", vacuous: ≥ the loss range B = {loss_range:g}, no information"
    return text + (f" ({', '.join(because)})." if because else ".")


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


def _position(candidates, group: TransformationSet) -> int:
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


def _no_gradient(f: Model) -> Model:
    return lambda x: jax.lax.stop_gradient(f(x))


_UNDER_JIT = (
    "regularizer_report(reg, f, x) runs eagerly: it computes the bound's covering numbers "
    "on the host and cannot run under jax.jit / eqx.filter_jit / nnx.jit. Call it outside "
    "the jitted function, with concrete x and f (e.g. after training)."
)
