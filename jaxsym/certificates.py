"""The held-out certificate: an upper confidence bound on a trained model's risk.

docs/theory.md §9. :func:`held_out_bound` certifies a trained model from losses
on data used neither to train nor to select it, with the union bound over the K
options compared (exact binomial tail for 0-1 losses, Chernoff's kl inversion for
losses in ``[0, B]``). It is the certificate the package decides with; the
screen of :mod:`jaxsym.decision` only estimates.

Everything here runs on the host in float64 (NumPy and :mod:`math`), on concrete
losses after training: not under ``jax.jit``, ``vmap`` or ``grad``.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["HeldOutBound", "held_out_bound", "kl_inverse"]

_NEWTON_STEPS = 200
#: A loss above B by at most B·max(2⁻²³, ε of its dtype) is B rounded to float32 or lower precision.
_FLOAT32_EPS = 2.0**-23
_HALF_LOG_TWO_PI = 0.5 * math.log(2.0 * math.pi)
#: B_2k / (2k (2k − 1)), k = 1..8: Stirling's series for ln Γ.
_STIRLING = (
    1 / 12,
    -1 / 360,
    1 / 1260,
    -1 / 1680,
    1 / 1188,
    -691 / 360360,
    1 / 156,
    -3617 / 122400,
)
_TINY = 1e-300  # modified Lentz: the stand-in for a zero denominator
#: Fewer errors than this: the binomial CDF as a sum of its terms (exact in p near 0).
_SUM_ERRORS = 1024


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


# ============================================================================ argument checks


def _host_only(name: str) -> TypeError:
    return TypeError(
        f"{name} is a JAX tracer: the held-out certificate runs on the host, on concrete "
        "losses after training, not under jax.jit, vmap or grad. Call it outside the "
        "transformed function (e.g. on np.asarray(losses) once training is done)."
    )


def _host_scalar(value, name: str):
    """A 0-d NumPy/JAX array or NumPy scalar as its Python value; a tracer refused."""
    if isinstance(value, jax.core.Tracer):
        raise _host_only(name)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):
        if np.shape(value) != ():
            raise TypeError(f"{name} must be a scalar; got an array of shape {np.shape(value)}.")
        return value.item()
    return value


def _real_scalar(value, name: str, requirement: str) -> float | int:
    """A real Python number; TypeError for a non-number, ValueError for a bool."""
    value = _host_scalar(value, name)
    if isinstance(value, bool):
        raise ValueError(f"{name} must be {requirement}; got the bool {value!r}.")
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number ({requirement}); got {value!r}.")
    return value


def _check_options(num_options) -> int:
    requirement = "an integer K ≥ 1 (the number of models the union bound covers)"
    value = _real_scalar(num_options, "num_options", requirement)
    integral = isinstance(value, numbers.Integral) or (
        math.isfinite(value) and float(value).is_integer()
    )
    if not integral or value < 1:
        raise ValueError(f"num_options must be {requirement}; got {num_options!r}.")
    return int(value)


def _check_delta(delta) -> float:
    value = _real_scalar(delta, "delta", "a probability in (0, 1)")
    if not 0.0 < value < 1.0:
        raise ValueError(f"delta must be a probability in (0, 1); got {delta!r}.")
    if not 0.0 < float(value) < 1.0:  # e.g. a Fraction beyond float64's range
        raise ValueError(f"delta must be in (0, 1) in float64; {delta!r} rounds to {float(value)}.")
    return float(value)


def _check_loss_range(loss_range) -> float:
    value = _real_scalar(loss_range, "loss_range", "a finite B > 0")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"loss_range must be a finite B > 0; got {loss_range!r}.")
    return float(value)


def _check_losses(losses, loss_range: float) -> np.ndarray:
    """The ``(n,)`` losses in float64, in ``[0, B]`` (float rounding of B clipped to B)."""
    if isinstance(losses, jax.core.Tracer):
        raise _host_only("losses")
    if losses is None or isinstance(losses, (str, bytes)):
        raise TypeError(f"losses must be a 1-D array of real per-example losses; got {losses!r}.")
    try:
        array = np.asarray(losses)
    except jax.errors.JAXTypeError as error:  # a list holding tracers
        raise _host_only("losses") from error
    except ValueError as error:  # a ragged list
        raise ValueError(
            f"losses must be a 1-D array of per-example losses; NumPy could not read it ({error})."
        ) from error
    dtype = array.dtype
    if dtype.kind == "c":
        raise TypeError(
            f"losses must be real; got the complex dtype {dtype}. Pass the real loss "
            "(e.g. abs(...) ** 2), not a complex residual."
        )
    floating = bool(jnp.issubdtype(dtype, jnp.floating))
    if dtype.kind not in "biu" and not floating:
        raise TypeError(
            f"losses must be real numbers (float, int or bool); got dtype {dtype} from "
            f"{type(losses).__name__}."
        )
    if array.ndim != 1:
        raise ValueError(
            f"losses must hold exactly one loss per held-out example, a 1-D array of shape "
            f"(n,); got shape {array.shape}. Reduce each example's losses to one number first "
            "(e.g. losses.sum(axis=1) or losses.mean(axis=1) over outputs; losses[:, 0] for "
            "shape (n, 1)): the bound counts n independent examples."
        )
    if array.size == 0:
        raise ValueError("losses is empty: a held-out bound needs at least one loss.")
    values = array.astype(np.float64, copy=False)
    low, high = float(values.min()), float(values.max())
    if math.isnan(low) or math.isnan(high):
        raise ValueError(f"losses holds {int(np.isnan(values).sum())} NaN values.")
    eps = max(_FLOAT32_EPS, float(jnp.finfo(dtype).eps)) if floating else _FLOAT32_EPS
    if low < 0.0 or not high - loss_range <= loss_range * eps:
        raise ValueError(
            f"losses must lie in [0, loss_range] = [0, {loss_range:.10g}]; got values in "
            f"[{low:.10g}, {high:.10g}] (a loss above B by at most B·{eps:.3g}, B rounded to "
            f"{dtype}, is taken as B). Clip or rescale the loss (the bound is then for the "
            "clipped loss), or pass the loss's true range."
        )
    if high > loss_range:  # B rounded up in float32 (or lower) precision: it is B
        values = np.minimum(values, loss_range)
    return values


# ============================================================================ kl inversion


def _weighted_g(weight: float, d: float, log_ratio) -> float:
    """``w g(d/w)``, ``g(x) = x − ln(1 + x) ≥ 0``, given ``log_ratio() = ln(1 + d/w)``.

    Near ``d = 0``, with ``x = d/w`` and ``u = x/(2 + x)``: ``ln(1 + x) = 2 atanh u``
    and ``x − 2u = x²/(2 + x)``, so ``g(x) = x²/(2 + x) − 2 Σ_{j ≥ 1} u^{2j+1}/(2j + 1)``
    (no cancellation). Elsewhere ``d − w ln(1 + x)``, the log from its two ends
    (no overflow of ``d/w`` for a subnormal ``w``, no rounding of ``1 + x`` near −1).
    """
    if abs(d) >= 0.1 * weight:
        return d - weight * log_ratio()
    x = d / weight
    u = x / (2.0 + x)
    square = u * u
    power, tail = u * square, 0.0
    for j in range(1, 9):  # |u| < 0.053: u^17 / 17 < 1e-18 x²
        tail += power / (2 * j + 1)
        power *= square
    return weight * (x * x / (2.0 + x) - 2.0 * tail)


def _kl(q: float, p: float) -> float:
    """``kl(q‖p)`` of two Bernoulli means, with ``0 log 0 = 0``.

    Written as ``q g(d/q) + (1 − q) g(−d/(1 − q))``, ``d = p − q``,
    ``g(x) = x − ln(1 + x)``: two non-negative terms, accurate to a few ulps even
    for ``p`` next to ``q`` (``kl ≈ d²/(2q(1 − q))``) or next to 0 or 1.
    """
    d = p - q
    total = 0.0
    if q > 0.0:
        if p <= 0.0:
            return math.inf
        total += _weighted_g(q, d, lambda: math.log(p) - math.log(q))
        total -= d if q >= 1.0 else 0.0
    if q < 1.0:
        if p >= 1.0:
            return math.inf
        total += _weighted_g(1.0 - q, -d, lambda: math.log1p(-p) - math.log1p(-q))
        total += d if q <= 0.0 else 0.0
    return total


def _bracketed_newton(newton, t: float, low: float, high: float) -> float:
    """The upper end of a root's bracket after Newton's method from ``t`` in ``(low, high)``.

    ``newton(t)`` returns ``(left, step)``: whether ``t`` is left of the root
    (or on it) and the Newton step there. From the left the step is taken by at
    least a few ulps; from the right the iteration stops once the step is that
    small; a step leaving the bracket bisects it. Returns ``high``, a point
    right of (or on) the root.
    """
    for _ in range(_NEWTON_STEPS):
        left, step = newton(t)
        if left:  # step right, by at least a few ulps
            low = t
            step = max(step, 4.0 * math.ulp(t))
        else:
            high = t
            if -step <= 4.0 * math.ulp(t):  # converged from above
                break
        proposal = t + step
        t = proposal if low < proposal < high else 0.5 * (low + high)
        if t <= low or t >= high:  # the bracket is down to adjacent floats
            break
    return high


def _kl_inverse(q: float, c: float) -> float:
    """``kl⁻¹(q, c)`` by Newton's method, bracketed; the result has ``kl(q‖p) > c`` (computed).

    ``kl(q‖·) − c`` is convex and increasing on ``[q, 1]``: from the right of the
    root (Pinsker's ``q + √(c/2)``, or after one step from the left) the Newton
    iterates decrease to the root; a step leaving the bracket bisects it.
    """
    if q >= 1.0 or c <= 0.0:  # kl(q‖p) > 0 for every p ≠ q
        return 1.0 if q >= 1.0 else q
    low, high = q, 1.0  # kl(q‖q) = 0 ≤ c < ∞ = kl(q‖1)
    t = q + math.sqrt(0.5 * c)
    if not low < t < high:
        t = 0.5 * (low + high)

    def newton(t: float) -> tuple[bool, float]:
        value = _kl(q, t) - c
        return value <= 0.0, -value * t * (1.0 - t) / (t - q)  # −value / (d kl / dp)

    return _bracketed_newton(newton, t, low, high)


def kl_inverse(q: float, c: float) -> float:
    """The Chernoff (kl) upper confidence limit ``kl⁻¹(q, c)`` of a mean in ``[0, 1]`` (§9).

    ``kl⁻¹(q, c) = max{p ∈ [q, 1] : kl(q‖p) ≤ c}``, with
    ``kl(q‖p) = q ln(q/p) + (1 − q) ln((1 − q)/(1 − p))``, in float64.
    ``kl(q‖·)`` is convex and increasing on ``[q, 1]``, so Newton's method from
    above (bracketed, bisecting a step that leaves the bracket) converges from
    above: the result is never below the true value.

    Args:
        q: a mean in ``[0, 1]``.
        c: the budget ``c ≥ 0`` (e.g. ``ln(K/δ) / n``).

    Returns:
        ``kl⁻¹(q, c) ∈ [q, 1]``.

    Raises:
        TypeError: ``q`` or ``c`` not a real number (or a JAX tracer).
        ValueError: ``q`` outside ``[0, 1]`` or ``c < 0`` (or NaN).

    >>> import math
    >>> round(kl_inverse(0.0, math.log(20) / 100), 6)  # = 1 − exp(−c) at q = 0
    0.029513
    """
    q = float(_real_scalar(q, "q", "a mean in [0, 1]"))
    c = float(_real_scalar(c, "c", "a budget c ≥ 0"))
    if not 0.0 <= q <= 1.0 or not c >= 0.0:
        raise ValueError(f"kl_inverse needs q in [0, 1] and c ≥ 0; got q={q!r}, c={c!r}.")
    return _kl_inverse(q, c)


# ============================================================================ binomial tail


def _stirling_remainder(x: float) -> float:
    """``ln Γ(x) − [(x − ½) ln x − x + ½ ln 2π]`` for ``x > 0``, without cancellation."""
    if x < 10.0:
        return math.lgamma(x) - ((x - 0.5) * math.log(x) - x + _HALF_LOG_TWO_PI)
    inverse_square = 1.0 / (x * x)
    total = 0.0
    for coefficient in reversed(_STIRLING):
        total = total * inverse_square + coefficient
    return total / x


def _log_beta(a: float, b: float) -> float:
    """``ln B(a, b)``, accurate to a few ulps of its terms even for ``a + b ≈ 10⁸``.

    ``lgamma(a) + lgamma(b) − lgamma(a + b)`` loses ``≈ ε (a + b) ln(a + b)`` to
    cancellation; Stirling's form with its remainder (as in R's ``lbeta``) does not.
    """
    p, q = min(a, b), max(a, b)
    ratio = p / (p + q)
    if p >= 10.0:
        corr = _stirling_remainder(p) + _stirling_remainder(q) - _stirling_remainder(p + q)
        return (
            -0.5 * math.log(q)
            + _HALF_LOG_TWO_PI
            + corr
            + (p - 0.5) * math.log(ratio)
            + q * math.log1p(-ratio)
        )
    if q >= 10.0:
        corr = _stirling_remainder(q) - _stirling_remainder(p + q)
        return math.lgamma(p) + corr + p - p * math.log(p + q) + (q - 0.5) * math.log1p(-ratio)
    return math.lgamma(p) + math.lgamma(q) - math.lgamma(p + q)


def _log_incomplete_beta(a: float, b: float, x: float, log_x: float, log_1mx: float) -> float:
    """``ln I_x(a, b)`` for ``x < (a + 1)/(a + b + 2)``, where the continued fraction is fast.

    ``I_x(a, b) = x^a (1 − x)^b / (a B(a, b)) · CF``, the continued fraction
    ``CF = 1/(1 + d₁/(1 + d₂/(1 + …)))`` (Numerical Recipes, section 6.4) evaluated by the
    modified Lentz method; the prefactor stays in log space.
    """
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) >= _TINY else _TINY)
    h = d
    limit = 1000 + int(20.0 * math.sqrt(max(a, b)))
    for m in range(1, limit):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) >= _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) >= _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) <= 4e-16:
            break
    else:  # pragma: no cover - the fraction converges in O(√max(a, b)) terms
        raise RuntimeError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x}).")
    return a * log_x + b * log_1mx - _log_beta(a, b) - math.log(a) + math.log(h)


def _log_binomial_cdf(errors: int, n: int, p: float) -> float:
    """``ln P(Bin(n, p) ≤ errors) = ln I_{1−p}(n − errors, errors + 1)``, ``0 < p < 1``.

    Each branch evaluates the fraction where it converges fast. With ``x = 1 − p``
    rounded, the direct branch carries a relative error of order ``ε/p ≤ ε n/errors``
    at most: below ``1e-9`` for ``n < 4·10⁹`` at ``errors ≥`` :data:`_SUM_ERRORS`
    (fewer errors use the exact sum of :func:`_binomial_log_cdf`).
    """
    a, b = float(n - errors), float(errors + 1)
    if p < (b + 1.0) / (a + b + 2.0):  # 1 − I_p(errors + 1, n − errors), in p itself
        upper = _log_incomplete_beta(b, a, p, math.log(p), math.log1p(-p))
        return math.log1p(-math.exp(upper))
    return _log_incomplete_beta(a, b, 1.0 - p, math.log1p(-p), math.log(p))


def _binomial_log_cdf(errors: int, n: int):
    """``p ↦ ln P(Bin(n, p) ≤ errors)``: a sum of positive terms for few errors, else a fraction.

    For ``errors <`` :data:`_SUM_ERRORS` the ``errors + 1`` binomial terms are
    summed in log space (``ln C(n, i)`` by a cumulative sum of
    ``ln((n − j)/(j + 1))``; no cancellation at any ``p``); otherwise
    :func:`_log_binomial_cdf`, O(1) log-gamma calls per evaluation.
    """
    if errors >= _SUM_ERRORS:
        return lambda p: _log_binomial_cdf(errors, n, p)
    i = np.arange(errors + 1, dtype=np.float64)
    log_choose = np.concatenate(([0.0], np.cumsum(np.log(n - i[:-1]) - np.log(i[1:]))))

    def log_cdf(p: float) -> float:
        terms = log_choose + i * math.log(p) + (n - i) * math.log1p(-p)
        top = float(terms.max())
        return top + math.log(float(np.exp(terms - top).sum()))

    if errors >= 64:
        return log_cdf
    pairs = list(zip(log_choose.tolist(), i.tolist(), strict=True))

    def few_terms(p: float) -> float:  # the same sum, without NumPy's per-call overhead
        log_p, log_q = math.log(p), math.log1p(-p)
        terms = [choose + j * log_p + (n - j) * log_q for choose, j in pairs]
        top = max(terms)
        return top + math.log(math.fsum(math.exp(term - top) for term in terms))

    return few_terms


def _binomial_upper(errors: int, n: int, log_level: float) -> float:
    """Largest ``p`` with ``P(Bin(n, p) ≤ errors) ≥ level = exp(log_level)`` (Clopper–Pearson).

    Equals the ``Beta(errors + 1, n − errors)`` quantile at ``1 − level``. Solves
    ``ln P(Bin(n, p) ≤ errors) = log_level`` by Newton's method in ``p``, the
    derivative of the CDF being minus the ``Beta(errors + 1, n − errors)``
    density. The log CDF is concave in ``p`` (the survival function of a
    log-concave density), so from the kl bound (above the root, by Chernoff) the
    iterates decrease to the root: the returned ``p`` has a computed CDF below
    ``level`` (never below the root, up to rounding). The level stays in log
    space: ``δ/K`` may underflow.
    """
    if errors >= n:
        return 1.0
    log_cdf_of = _binomial_log_cdf(errors, n)
    log_density_scale = _log_beta(errors + 1.0, float(n - errors))
    low, high = 0.0, 1.0  # ln CDF(0) = 0 ≥ log_level > −∞ = ln CDF(1)
    t = _kl_inverse(errors / n, -log_level / n)
    if not low < t < high:
        t = 0.5

    def newton(t: float) -> tuple[bool, float]:
        log_cdf = log_cdf_of(t)
        value = log_cdf - log_level
        log_density = errors * math.log(t) + (n - errors - 1) * math.log1p(-t) - log_density_scale
        return value >= 0.0, value * math.exp(min(log_cdf - log_density, 700.0))  # −value / ∂

    return _bracketed_newton(newton, t, low, high)


# ============================================================================ the certificate


def held_out_bound(
    losses,
    *,
    loss_range: float = 1.0,
    delta: float = 0.05,
    num_options: int = 1,
    method: str = "auto",
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
    data; both are never below the empirical mean. ``ln(K/δ) = ln K − ln δ`` is
    computed in log space, so any K (a Python int of any size) and any δ > 0 work.

    **Validity.** The losses must come from data used neither to train the
    model nor to choose among the K options (nor to choose K): a certificate on
    training or screening data is not one. Every option compared on this
    sample, including any chosen after looking at it, must be counted in K.

    **Inputs.** One loss per held-out example: a 1-D array or list (reduce a
    per-output loss to one number per example first). Booleans are read as 0-1
    losses (``True`` = 1), e.g. the error indicators ``pred != y`` with
    ``loss_range=1``. A loss above B by at most ``B · max(2⁻²³, ε)`` (ε the
    machine epsilon of the losses' float dtype) is B rounded to float32 or lower
    precision, e.g. ``jnp.minimum(loss, B)`` in float32, and is taken as B; a
    larger one is refused. The computation runs on the host in float64, on
    concrete losses after training, not under ``jax.jit``, ``vmap`` or ``grad``.

    Args:
        losses: ``(n,)`` per-example losses of one trained model on held-out data
            (float, int or bool; NumPy, JAX or a list).
        loss_range: ``B > 0``, the loss's range (every loss in ``[0, B]``).
        delta: the failure probability ``δ ∈ (0, 1)``, shared by all K options.
        num_options: K ≥ 1, how many models the union bound covers.
        method: ``"auto"``, ``"binomial"`` or ``"kl"``.

    Returns:
        :class:`HeldOutBound`.

    Raises:
        TypeError: losses (or a scalar argument) not real numbers (None,
            strings, objects, complex), or a JAX tracer.
        ValueError: losses not 1-D, empty, NaN, a loss outside ``[0, B]``,
            ``B ≤ 0``, δ outside (0, 1), K not an integer ≥ 1, or ``"binomial"``
            on losses that are not 0-1.

    >>> import numpy as np
    >>> errors = np.zeros(500)
    >>> errors[:15] = 1.0  # 15 mistakes in 500 held-out predictions
    >>> cert = held_out_bound(errors, delta=0.05, num_options=3)
    >>> cert.method, cert.empirical, round(cert.bound, 4)
    ('binomial', 0.03, 0.0507)
    """
    loss_range = _check_loss_range(loss_range)
    delta = _check_delta(delta)
    options = _check_options(num_options)
    if not isinstance(method, str) or method not in ("auto", "binomial", "kl"):
        raise ValueError(f"method must be 'auto', 'binomial' or 'kl'; got {method!r}.")
    values = _check_losses(losses, loss_range)
    n = int(values.size)
    errors = int(np.count_nonzero(values == loss_range))
    zero_one = errors + int(np.count_nonzero(values == 0.0)) == n
    if method == "binomial" and not zero_one:
        raise ValueError(
            "method='binomial' needs 0-1 losses (every loss exactly 0 or loss_range); "
            "use 'kl' for losses in [0, loss_range]."
        )
    log_level = math.log(delta) - math.log(options)  # ln(δ/K): δ/K itself may underflow
    # scaled before summing: losses near the float64 maximum do not overflow
    mean = errors / n if zero_one else min(float(np.mean(values / loss_range)), 1.0)
    if method == "binomial" or (method == "auto" and zero_one):
        scaled, name = _binomial_upper(errors, n, log_level), "binomial"
    else:
        scaled, name = _kl_inverse(mean, -log_level / n), "kl"
    empirical = loss_range * mean
    bound = max(loss_range * scaled, empirical)
    return HeldOutBound(bound, empirical, n, delta, options, name)
