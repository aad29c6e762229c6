"""Approximation error, the theory trade-off curve and its minimizer (docs/theory.md §5).

With squared loss ``R(f) = ‖f − f*‖² + σ²``, and by orthogonality of ``Q_G``
under a G-invariant μ, the best approximation error ``A(ε)`` of an ε-equivariant
class is known exactly (``reduce="rms"``: the class ``d_2(f) ≤ ε``) or bracketed
(``reduce="max"``: the class with sup defect ``≤ ε``, the class §4 bounds). The
risk bound ``σ² + A(ε) + Gen_n(ε)`` over a grid of ε is :func:`tradeoff`, its
minimizer :func:`optimal_level`.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.validation import (
    check_batch,
    check_choice,
    check_nonnegative,
    check_positive,
    check_scalar,
    is_concrete,
    positive_int,
)
from jaxsym.bounds import bound_tables, default_bound_radii, generalization_bound_from_table
from jaxsym.constants import BoundConstants, check_constants
from jaxsym.covering import Domain
from jaxsym.groups import TransformationSet

__all__ = [
    "DEFAULT_NUM_LEVELS",
    "ApproximationBounds",
    "OptimalLevel",
    "TradeOff",
    "approximation_error",
    "default_eps_grid",
    "optimal_level",
    "tradeoff",
]

#: Number of ε levels of the default grid of :func:`tradeoff` (fixed before the data).
DEFAULT_NUM_LEVELS = 33


class ApproximationBounds(NamedTuple):
    """Lower and upper bounds on the best approximation error ``A(ε)`` (docs/theory.md §5).

    For ``reduce="rms"`` both equal the exact value ``(η_2 − ε)_+²``.
    """

    lower: jax.Array
    upper: jax.Array


class TradeOff(NamedTuple):
    """The risk bound ``σ² + A(ε) + Gen_n(ε)`` over a grid of levels (docs/theory.md §5).

    Attributes:
        eps: ``(K,)`` levels.
        approximation: ``(K,)`` ``A(ε)``.
        generalization: ``(K,)`` ``Gen_n(ε)`` (total of the §4 bound, union bound over K).
        total: ``(K,)`` ``σ² + A(ε) + Gen_n(ε)``.
    """

    eps: jax.Array
    approximation: jax.Array
    generalization: jax.Array
    total: jax.Array


class OptimalLevel(NamedTuple):
    """The minimizer ``ε*`` of the theory curve on a grid (docs/theory.md §5).

    Attributes:
        eps: ``ε*``.
        index: its index in the grid.
        total: the risk bound at ``ε*``.
        curve: the whole :class:`TradeOff`.
    """

    eps: jax.Array
    index: jax.Array
    total: jax.Array
    curve: TradeOff


def approximation_error(
    eta,
    eps,
    reduce: str = "rms",
    *,
    eta_sup=None,
    group_size: int | None = None,
) -> ApproximationBounds:
    """Best approximation error of the ε-equivariant class, squared loss (docs/theory.md §5).

    * ``reduce="rms"`` (class ``d_2(f) ≤ ε``, ``η = η_2 = d_2(f*)``): exactly
      ``(η_2 − ε)_+²`` (``lower == upper``), attained by the dial at
      ``t = min(1, ε/η_2)``.
    * ``reduce="max"`` (class ``E_f(g) ≤ ε`` for all g): ``upper = η_2² (1 −
      ε/η_∞)_+²`` (the dial has sup defect ``t η_∞``) and ``lower = (η_2 −
      c ε)_+²`` with ``c = √((1 − 1/|G|)/2)`` for a finite group of
      ``group_size`` elements, ``c = 1/√2`` otherwise.

    **Consistency.** ``f*`` itself lies in the sup class at level ``η_∞``, so the
    lower bound's argument gives ``η_2 ≤ c η_∞``; this holds exactly when
    ``lower ≤ upper`` at every ε (docs/theory.md §5). Inputs that break it
    (e.g. ``η_∞ = 0`` with ``η_2 > 0``) describe no function and raise, in either
    mode whenever ``eta_sup`` is given; nothing is clamped to hide them.

    Both need a G-invariant μ (orthogonality of ``Q_G``). ``jnp`` throughout,
    differentiable in ``eta`` and ``eps``; broadcasts. Traced inputs are not checked.

    Args:
        eta: ``η_2 = ‖f* − Q_G f*‖_{L²(μ)} ≥ 0`` (``d_2`` units).
        eps: the class's level ``ε ≥ 0`` (``d_2`` units for ``"rms"``, sup defect
            for ``"max"``).
        reduce: ``"rms"`` or ``"max"``.
        eta_sup: ``η_∞ = sup_g E_{f*}(g) ≥ 0`` (sup-defect units; required for ``"max"``).
        group_size: ``|G|`` for the finite-group constant ``c``.

    Returns:
        :class:`ApproximationBounds`.

    Raises:
        ValueError: on a bad ``reduce``, negative or non-finite inputs, a missing
            ``eta_sup``, or ``η_2 > c η_∞``.
    """
    check_choice("reduce", reduce, ("rms", "max"))
    check_nonnegative("eta", eta)
    check_nonnegative("eps", eps)
    if reduce == "max" and eta_sup is None:
        raise ValueError("approximation_error(reduce='max') needs eta_sup = η_∞ = sup_g E_{f*}(g).")
    factor = _sup_factor(group_size)
    if eta_sup is not None:
        _check_consistent_eta(eta, eta_sup, factor)
    eta = jnp.asarray(eta, jnp.result_type(eta, jnp.float32))
    eps = jnp.asarray(eps, eta.dtype)
    if reduce == "rms":
        exact = jnp.maximum(eta - eps, 0.0) ** 2
        return ApproximationBounds(lower=exact, upper=exact)
    eta_sup = jnp.asarray(eta_sup, eta.dtype)
    ratio = jnp.where(eta_sup > 0, eps / jnp.where(eta_sup > 0, eta_sup, 1.0), jnp.inf)
    upper = eta**2 * jnp.maximum(1 - ratio, 0.0) ** 2
    lower = jnp.maximum(eta - eps * factor, 0.0) ** 2
    return ApproximationBounds(lower=lower, upper=upper)


def _sup_factor(group_size) -> float:
    """``c = √((1 − 1/|G|)/2)`` (finite G), else ``1/√2``: ``d_2(f) ≤ c · sup_g E_f(g)``."""
    if group_size is None:
        return math.sqrt(0.5)
    return math.sqrt((1 - 1 / positive_int("group_size", group_size)) / 2)


def _check_consistent_eta(eta, eta_sup, factor: float) -> None:
    """Raise unless ``η_2 ≤ c η_∞`` (docs/theory.md §5), for concrete inputs.

    A relative slack of ``1e-6`` absorbs rounding only.
    """
    check_nonnegative("eta_sup", eta_sup)
    if not is_concrete((eta, eta_sup)):
        return
    eta2, sup = np.broadcast_arrays(np.asarray(eta, np.float64), np.asarray(eta_sup, np.float64))
    bad = eta2 > factor * sup * (1 + 1e-6) + 1e-12
    if np.any(bad):
        k = np.unravel_index(np.argmax(bad), bad.shape)
        raise ValueError(
            f"eta_sup = η_∞ = {sup[k]:.6g} is too small for eta = η_2 = {eta2[k]:.6g}: every "
            f"function has η_2 ≤ c·η_∞ with c = {factor:.4g} (docs/theory.md §5), here "
            f"η_2 ≤ {factor * sup[k]:.6g}, so no f* has these values. Check the units: "
            "eta is d_2 = ‖f* − Q_G f*‖ (not ee_2 = √2·d_2), eta_sup the sup defect."
        )


def default_eps_grid(output_bound: float, output_dim: int) -> np.ndarray:
    """``linspace(0, 2M√d_y, 33)``: every possible sup defect, fixed before the data (§5).

    The grid depends only on the constants, so the union bound over its K = 33
    levels is honest. It does not contain the data's η: an η estimated from the
    sample would make the grid data-dependent (docs/theory.md §5, "The grid must
    be fixed"). On this grid the minimizer satisfies ``ε* ≤ η⁺``, the smallest
    grid level ``≥ η`` (above it the approximation term is 0 and ``Gen_n`` is
    non-decreasing). To put a known η on the grid, pass ``eps_grid`` yourself,
    and only if that η was fixed before the sample (a property of the task, not
    an estimate from it); every level passed counts in K.
    """
    check_positive("output_bound", output_bound)
    top = 2 * float(output_bound) * math.sqrt(positive_int("output_dim", output_dim))
    return np.linspace(0.0, top, DEFAULT_NUM_LEVELS)


def tradeoff(
    x: jax.Array,
    group: TransformationSet,
    constants: BoundConstants,
    *,
    eta,
    noise=0.0,
    reduce: str = "rms",
    eps_grid=None,
    radii=None,
    eta_sup=None,
    chaining: str = "discrete",
    domain: Domain | None = None,
    block_size: int | None = None,
    method: str = "auto",
) -> TradeOff:
    """The risk bound ``σ² + A(ε) + Gen_n(ε)`` over a grid of ε (docs/theory.md §5).

    The covering tables are computed once; ``Gen_n`` is the §4 bound with the
    union bound over the ``K`` grid levels. Which ``A`` is used:

    * ``reduce="max"``: ``A`` is the upper bound ``η_2²(1 − ε/η_∞)_+²`` for
      the sup class ``F(L, G, ε)``, the class §4 bounds; the total is an upper
      bound on the risk of the best model in the class (assuming ``f*`` is
      L-Lipschitz with outputs in the box). It is a certificate only for a
      **known** target (``η_2``, ``η_∞`` given, as in a synthetic task):
      ``η_∞`` of an unknown ``f*`` cannot be estimated from a sample, so with
      estimated ``η`` the curve is an estimate.
    * ``reduce="rms"``: ``A = (η_2 − ε)_+²``, the exact optimum of the
      ``d_2(f) ≤ ε`` class, paired with the §4 bound at sup level ε. The sup
      class is contained in the ``d_2`` class at the same ε, so this ``A`` is a
      *lower* bound on the sup class's approximation error: the curve is an
      estimate of the trade-off (docs/theory.md §5, §8), not a certified risk bound.

    Args:
        x: ``(n, *example)`` training inputs.
        group: the group (or set) of transformations.
        constants: the :class:`~jaxsym.constants.BoundConstants`.
        eta: ``η_2 = d_2(f*)``.
        noise: the label noise standard deviation ``σ`` (adds ``σ²``).
        reduce: ``"rms"`` or ``"max"``.
        eps_grid: ``(K,)`` levels fixed before the data; ``None`` is
            :func:`default_eps_grid` (which does not contain η).
        radii: covering radii (as in :func:`jaxsym.bounds.generalization_bound`).
        eta_sup: ``η_∞`` (required for ``"max"``; must satisfy ``η_2 ≤ c η_∞``, see
            :func:`approximation_error`).
        chaining: as in :func:`jaxsym.bounds.generalization_bound`.
        domain: as in :func:`jaxsym.bounds.generalization_bound`.
        block_size: as in :func:`jaxsym.bounds.generalization_bound`.
        method: as in :func:`jaxsym.bounds.generalization_bound`.

    Returns:
        A :class:`TradeOff`.
    """
    check_choice("reduce", reduce, ("rms", "max"))
    for name, value in (("eta", eta), ("noise", noise), ("eta_sup", eta_sup)):
        if value is not None:
            check_scalar(name, value)
            check_nonnegative(name, value)
    if reduce == "max" and eta_sup is None:
        raise ValueError("tradeoff(reduce='max') needs eta_sup = η_∞ = sup_g E_{f*}(g).")
    group_size = group.size if getattr(group, "is_group", False) else None
    if eta_sup is not None:
        _check_consistent_eta(eta, eta_sup, _sup_factor(group_size))
    x = check_batch(group, x, "x")
    constants = check_constants(constants)
    if eps_grid is None:
        eps_grid = default_eps_grid(constants.output_bound, constants.output_dim)
    eps_grid = np.asarray(eps_grid, np.float64).reshape(-1)
    if eps_grid.size == 0:
        raise ValueError("eps_grid must hold at least one level.")
    check_nonnegative("eps_grid", eps_grid)
    if radii is None:
        radii = default_bound_radii(x, constants)
    symmetric, trivial = bound_tables(
        x, group, radii, domain=domain, block_size=block_size, method=method
    )

    def gen(eps):
        return generalization_bound_from_table(
            symmetric,
            trivial,
            constants=constants,
            eps=eps,
            num_levels=int(eps_grid.size),
            chaining=chaining,
        ).total

    levels = jnp.asarray(eps_grid, jnp.float32)
    generalization = jax.vmap(gen)(levels)
    approximation = approximation_error(
        eta, levels, reduce, eta_sup=eta_sup, group_size=group_size
    ).upper
    total = float(noise) ** 2 + approximation + generalization
    return TradeOff(
        eps=levels, approximation=approximation, generalization=generalization, total=total
    )


def optimal_level(
    x: jax.Array, group: TransformationSet, constants: BoundConstants, **kwargs
) -> OptimalLevel:
    """The minimizer ``ε* = argmin_ε σ² + A(ε) + Gen_n(ε)`` of the theory curve (§5).

    Same arguments as :func:`tradeoff`. Ties go to the smaller ε. On any grid,
    ``ε* ≤ η⁺``, the smallest grid level ``≥ η``: more asymmetry than the data
    has never helps. The curve describes the theory bound; it decides nothing
    when it is vacuous or built on estimated constants or an estimated η
    (docs/theory.md §4, §5): the decision is :func:`jaxsym.choose_symmetry`'s,
    certified by :func:`jaxsym.held_out_bound` (§9). By docs/theory.md §8 the
    curve is usually bang-bang (ε* = 0 or the unconstrained end).

    Returns:
        An :class:`OptimalLevel`.
    """
    curve = tradeoff(x, group, constants, **kwargs)
    index = jnp.argmin(curve.total)
    return OptimalLevel(eps=curve.eps[index], index=index, total=curve.total[index], curve=curve)
