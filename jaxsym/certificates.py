"""The held-out certificate: an upper confidence bound on a trained model's risk.

docs/theory.md §9. :func:`held_out_bound` certifies a trained model from losses
on data used neither to train nor to select it, with the union bound over the K
options compared (exact binomial tail for 0-1 losses, Chernoff's kl inversion for
losses in ``[0, B]``). It is the certificate the package decides with; the
screen of :mod:`jaxsym.decision` only estimates.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

__all__ = ["HeldOutBound", "held_out_bound", "kl_inverse"]

_BISECTION_STEPS = 200


class HeldOutBound(NamedTuple):
    """An upper confidence bound on a trained model's mean risk (docs/theory.md §9).

    With probability ``≥ 1 − delta`` over the held-out sample, simultaneously for
    all ``options`` models compared, ``R(h) ≤ bound``, provided the losses come
    from data used neither to train nor to select the model.

    Attributes:
        bound: the upper bound on the mean loss ``R(h)`` (loss units).
        empirical: the held-out mean loss ``R̂(h)``.
        n: the number of held-out losses.
        delta: the failure probability δ (for all ``options`` together).
        options: K, the number of models the union bound covers (each at δ/K).
        method: ``"binomial"`` (exact one-sided Clopper–Pearson, 0-1 losses) or
            ``"kl"`` (Chernoff's kl inversion, losses in ``[0, B]``).
    """

    bound: float
    empirical: float
    n: int
    delta: float
    options: int
    method: str = "kl"


def _check_options(num_options) -> int:
    integral = isinstance(num_options, numbers.Integral) or (
        isinstance(num_options, numbers.Real) and float(num_options).is_integer()
    )
    if isinstance(num_options, bool) or not integral or num_options < 1:
        raise ValueError(
            f"num_options must be an integer K ≥ 1 (the number of models the union bound "
            f"covers); got {num_options!r}."
        )
    return int(num_options)


def _check_delta(delta) -> float:
    if isinstance(delta, bool) or not isinstance(delta, numbers.Real) or not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be a probability in (0, 1); got {delta!r}.")
    return float(delta)


def _check_losses(losses, loss_range: float) -> np.ndarray:
    values = np.asarray(losses, np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("losses is empty: a held-out bound needs at least one loss.")
    if np.isnan(values).any():
        raise ValueError(f"losses holds {int(np.isnan(values).sum())} NaN values.")
    low, high = float(values.min()), float(values.max())
    if low < 0.0 or high > loss_range:
        raise ValueError(
            f"losses must lie in [0, loss_range] = [0, {loss_range:g}]; got values in "
            f"[{low:g}, {high:g}]. Clip or rescale the loss (the bound is then for the "
            "clipped loss), or pass the loss's true range."
        )
    return values


def _kl(q: float, p: float) -> float:
    """``kl(q‖p)`` of two Bernoulli means, with ``0 log 0 = 0``."""
    total = 0.0
    if q > 0.0:
        total += q * math.log(q / p) if p > 0.0 else math.inf
    if q < 1.0:
        total += (1.0 - q) * math.log((1.0 - q) / (1.0 - p)) if p < 1.0 else math.inf
    return total


def kl_inverse(q: float, c: float) -> float:
    """``kl⁻¹(q, c) = max{p ∈ [q, 1] : kl(q‖p) ≤ c}`` by bisection in float64 (§9).

    ``kl(q‖·)`` is increasing on ``[q, 1]``, so bisection converges; the upper
    end of the final bracket is returned (never below the true value).

    Args:
        q: a mean in ``[0, 1]``.
        c: the budget ``c ≥ 0`` (e.g. ``ln(K/δ) / n``).
    """
    q, c = float(q), float(c)
    if not 0.0 <= q <= 1.0 or not c >= 0.0:
        raise ValueError(f"kl_inverse needs q in [0, 1] and c ≥ 0; got q={q!r}, c={c!r}.")
    if q >= 1.0:
        return 1.0
    low, high = q, 1.0
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if middle <= low or middle >= high:
            break
        if _kl(q, middle) <= c:
            low = middle
        else:
            high = middle
    return high


def _binomial_upper(errors: int, n: int, level: float) -> float:
    """Largest ``p`` with ``P(Bin(n, p) ≤ errors) ≥ level`` (one-sided Clopper–Pearson).

    Equals the ``Beta(errors + 1, n − errors)`` quantile at ``1 − level``. The
    binomial CDF is summed in float64 from log-gamma terms (log-sum-exp).
    """
    if errors >= n:
        return 1.0
    i = np.arange(errors + 1, dtype=np.float64)
    log_choose = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(k + 1) for k in range(errors + 1)])
        - np.array([math.lgamma(n - k + 1) for k in range(errors + 1)])
    )

    def log_cdf(p: float) -> float:
        terms = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
        top = float(terms.max())
        return top + math.log(float(np.exp(terms - top).sum()))

    target = math.log(level)
    low, high = 0.0, 1.0  # P(Bin(n, 0) ≤ errors) = 1 ≥ level > 0 = P(Bin(n, 1) ≤ errors)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if middle <= low or middle >= high:
            break
        if log_cdf(middle) >= target:
            low = middle
        else:
            high = middle
    return high


def held_out_bound(
    losses, *, loss_range: float = 1.0, delta: float = 0.05, num_options: int = 1, method="auto"
) -> HeldOutBound:
    """Upper confidence bound on a model's mean risk from held-out losses (docs/theory.md §9).

    With ``Z_i = ℓ_i / B ∈ [0, 1]`` on ``n`` held-out points and K options each at
    level δ/K, with probability ``≥ 1 − δ``, for every option,

    * losses in ``{0, B}`` (``method="binomial"``): ``R ≤ B · p̄`` with ``p̄`` the
      largest ``p`` such that ``P(Bin(n, p) ≤ k) ≥ δ/K`` (``k`` the number of
      losses equal to ``B``), i.e. the ``Beta(k + 1, n − k)`` quantile at
      ``1 − δ/K``: one-sided Clopper–Pearson, exact;
    * losses in ``[0, B]`` (``method="kl"``): ``R ≤ B · kl⁻¹(R̂/B, ln(K/δ)/n)``
      (Chernoff: a [0, 1] variable's MGF is at most that of the Bernoulli with
      the same mean).

    ``method="auto"`` takes the binomial bound when every loss is exactly 0 or
    B, else kl. The binomial bound is never above the kl one on the same 0-1
    data; both are never below the empirical mean.

    **Validity.** The losses must come from data used neither to train the
    model nor to choose among the K options (nor to choose K): a certificate on
    training or screening data is not one. Every option compared on this
    sample, including any chosen after looking at it, must be counted in K.

    Args:
        losses: ``(n,)`` per-example losses of one trained model on held-out data.
        loss_range: ``B > 0``, the loss's range (every loss in ``[0, B]``).
        delta: the failure probability ``δ ∈ (0, 1)``, shared by all K options.
        num_options: K ≥ 1, how many models the union bound covers.
        method: ``"auto"``, ``"binomial"`` or ``"kl"``.

    Returns:
        :class:`HeldOutBound`.

    Raises:
        ValueError: empty losses, NaN, a loss outside ``[0, B]``, ``B ≤ 0``,
            δ outside (0, 1), K not an integer ≥ 1, or ``"binomial"`` on
            losses that are not 0-1.
    """
    if (
        isinstance(loss_range, bool)
        or not isinstance(loss_range, numbers.Real)
        or not (math.isfinite(loss_range) and loss_range > 0)
    ):
        raise ValueError(f"loss_range must be a finite B > 0; got {loss_range!r}.")
    loss_range = float(loss_range)
    delta = _check_delta(delta)
    options = _check_options(num_options)
    if method not in ("auto", "binomial", "kl"):
        raise ValueError(f"method must be 'auto', 'binomial' or 'kl'; got {method!r}.")
    values = _check_losses(losses, loss_range)
    n = int(values.size)
    empirical = float(values.mean())
    zero_one = bool(np.all((values == 0.0) | (values == loss_range)))
    if method == "binomial" and not zero_one:
        raise ValueError(
            "method='binomial' needs 0-1 losses (every loss exactly 0 or loss_range); "
            "use 'kl' for losses in [0, loss_range]."
        )
    level = delta / options
    if method == "binomial" or (method == "auto" and zero_one):
        errors = int(np.sum(values == loss_range))
        scaled, name = _binomial_upper(errors, n, level), "binomial"
    else:
        scaled, name = kl_inverse(min(empirical / loss_range, 1.0), math.log(1 / level) / n), "kl"
    bound = max(loss_range * scaled, empirical)
    return HeldOutBound(bound, empirical, n, delta, options, name)
