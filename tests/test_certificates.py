"""Tests for jaxsym.certificates: the held-out bound and the kl inversion (docs/theory.md §9).

Every number is checked against an independent computation: ``scipy.stats.beta``
for Clopper–Pearson, exact integer arithmetic for the binomial CDF at levels
scipy cannot represent, and a root finder on ``kl`` for the kl inversion.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal, localcontext
from fractions import Fraction

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxsym.certificates import _SUM_ERRORS, _binomial_upper, held_out_bound, kl_inverse

scipy_stats = pytest.importorskip("scipy.stats")
scipy_optimize = pytest.importorskip("scipy.optimize")


def _kl(q, p):
    out = 0.0
    if q > 0:
        out += q * math.log(q / p)
    if q < 1:
        out += (1 - q) * math.log((1 - q) / (1 - p))
    return out


def _exact_log_cdf(k: int, n: int, p: float) -> float:
    """``ln P(Bin(n, p) ≤ k)`` in exact integer arithmetic (``p`` a float: a dyadic rational)."""
    m, d = p.as_integer_ratio()
    total = sum(math.comb(n, i) * m**i * (d - m) ** (n - i) for i in range(k + 1))
    denominator = d**n
    # ln(total) − n ln(d) would lose ~ulp(n ln d) ≈ 5e-13 to cancellation: scale the exact
    # ratio into [1/2, 2] by a power of two first, and add that power's log.
    shift = total.bit_length() - denominator.bit_length()
    scaled = Fraction(total, denominator) / Fraction(2) ** shift
    return math.log(float(scaled)) + shift * math.log(2.0)


def _brute_kl_inverse(q: float, c: float) -> float:
    """``max{p ≥ q : kl(q‖p) ≤ c}`` by Brent's method (or the float below 1 if beyond it)."""
    top = math.nextafter(1.0, 0.0)
    if q >= 1.0 or _kl(q, top) <= c:
        return 1.0
    if c == 0.0:
        return q
    return scipy_optimize.brentq(lambda p: _kl(q, p) - c, q, top, xtol=1e-300, rtol=1e-15)


# ----------------------------------------------------------------------------- binomial path


@pytest.mark.parametrize(
    ("n", "errors", "k", "delta"),
    [
        (10, 0, 1, 0.05),
        (100, 3, 5, 0.05),
        (600, 18, 3, 0.1),
        (37, 36, 2, 0.01),
        (2000, 700, 7, 0.2),
    ],
)
def test_zero_one_losses_give_the_beta_quantile(n, errors, k, delta):
    losses = np.zeros(n)
    losses[:errors] = 1.0
    result = held_out_bound(losses, delta=delta, num_options=k)
    expected = scipy_stats.beta.ppf(1 - delta / k, errors + 1, n - errors)
    assert result.method == "binomial"
    assert math.isclose(result.bound, expected, rel_tol=1e-9, abs_tol=1e-12)
    assert result.n == n and result.options == k and result.delta == delta
    assert math.isclose(result.empirical, errors / n)


GRID_N = [1, 2, 3, 10, 37, 1000, 100_000, 20_000_000]


@pytest.mark.parametrize("n", GRID_N)
@pytest.mark.parametrize("level", [0.5, 0.05, 1e-3, 1e-8])
def test_binomial_upper_is_the_beta_quantile_on_a_grid(n, level):
    """k = 0, 1, n/3, n/2, n − 2, n − 1 (incl. n = 1 and n = 2·10⁷) against scipy to 1e-9.

    With k on both sides of the switch from the summed CDF to the continued fraction.
    """
    ks = {0, 1, n // 3, n // 2, n - 2, n - 1, _SUM_ERRORS - 1, _SUM_ERRORS}
    for k in sorted(k for k in ks if 0 <= k < n):
        bound = _binomial_upper(k, n, math.log(level))
        expected = scipy_stats.beta.isf(level, k + 1, n - k)  # = ppf(1 − level), unrounded
        assert math.isclose(bound, expected, rel_tol=1e-9), (n, k, level, bound, expected)
        if level >= 1e-3:  # 1 − level is then exact enough for ppf too
            assert math.isclose(bound, scipy_stats.beta.ppf(1 - level, k + 1, n - k), rel_tol=1e-9)


@given(
    log_n=st.floats(0, math.log(1e9)),
    fraction=st.floats(0, 1),
    log_level=st.floats(math.log(1e-30), math.log(0.9)),  # where scipy's isf is finite
)
@settings(max_examples=150, deadline=None)
def test_binomial_upper_matches_scipy(log_n, fraction, log_level):
    n = max(1, int(math.exp(log_n)))
    k = min(n - 1, int(fraction * n))
    expected = scipy_stats.beta.isf(math.exp(log_level), k + 1, n - k)
    assert math.isclose(_binomial_upper(k, n, log_level), expected, rel_tol=1e-9)


@given(n=st.integers(1, 120), fraction=st.floats(0, 1), log_level=st.floats(-3000, -1e-3))
@settings(max_examples=80, deadline=None)
def test_binomial_upper_is_the_exact_root_at_any_level(n, fraction, log_level):
    """Exact arithmetic: CDF(bound) ≤ level ≤ CDF(bound (1 − 1e-9)), with δ/K far below 1e-308."""
    k = min(n - 1, int(fraction * n))
    bound = _binomial_upper(k, n, log_level)
    assert 0.0 < bound <= 1.0
    if bound < 1.0:
        assert _exact_log_cdf(k, n, bound) <= log_level + 1e-10 * abs(log_level)  # never below
    assert _exact_log_cdf(k, n, bound * (1 - 1e-9)) >= log_level  # and tight


def test_large_n_is_fast_and_exact():
    n = 20_000_000
    losses = np.zeros(n)
    losses[: n // 2] = 1.0
    elapsed = math.inf
    for _ in range(3):
        start = time.perf_counter()
        result = held_out_bound(losses, delta=0.05)
        elapsed = min(elapsed, time.perf_counter() - start)
    assert result.method == "binomial" and result.n == n
    expected = scipy_stats.beta.isf(0.05, n // 2 + 1, n - n // 2)
    assert math.isclose(result.bound, expected, rel_tol=1e-9)
    assert elapsed < 0.5, f"held_out_bound on 2·10⁷ 0-1 losses took {elapsed:.2f} s"


def test_zero_one_losses_scale_with_the_range():
    losses = np.array([0.0, 2.5, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0])
    result = held_out_bound(losses, loss_range=2.5)
    assert result.method == "binomial"
    assert math.isclose(result.bound, 2.5 * scipy_stats.beta.ppf(0.95, 3, 6), rel_tol=1e-9)


def test_all_errors_give_the_trivial_bound():
    assert held_out_bound(np.ones(20)).bound == 1.0


# ----------------------------------------------------------------------------- kl path


@pytest.mark.parametrize("seed", range(4))
def test_bounded_losses_give_the_kl_inversion(seed):
    rng = np.random.default_rng(seed)
    n, k, delta = int(rng.integers(5, 500)), int(rng.integers(1, 9)), 0.05
    losses = 3.0 * rng.beta(0.5, 2.0, n)
    result = held_out_bound(losses, loss_range=3.0, delta=delta, num_options=k)
    q, c = losses.mean() / 3.0, math.log(k / delta) / n
    p = result.bound / 3.0
    assert result.method == "kl"
    assert _kl(q, p) == pytest.approx(c, rel=1e-6)  # on the boundary of {p : kl(q‖p) ≤ c}
    assert _kl(q, p - 1e-6) <= c  # and the largest such p


def test_kl_inverse_edges():
    assert kl_inverse(1.0, 0.3) == 1.0
    assert 0.2 <= kl_inverse(0.2, 0.0) <= 0.2 + 1e-6  # kl is flat (quadratic) at p = q
    assert kl_inverse(0.0, math.log(20) / 10) == pytest.approx(1 - math.exp(-math.log(20) / 10))


def _decimal_kl(q: float, p: float) -> Decimal:
    """``kl(q‖p)`` in 60-digit decimal arithmetic (``0 log 0 = 0``)."""
    with localcontext() as context:
        context.prec = 60
        q_, p_ = Decimal(q), Decimal(p)
        total = Decimal(0)
        if q_ > 0:
            total += q_ * (q_ / p_).ln()
        if q_ < 1:
            total += (1 - q_) * ((1 - q_) / (1 - p_)).ln()
        return total


@given(q=st.floats(0, 1), log_c=st.floats(math.log(1e-30), math.log(50)))
@settings(max_examples=100, deadline=None)
def test_kl_inverse_is_the_largest_p_within_the_budget(q, log_c):
    """Decimal arithmetic: kl(q‖p(1 − 1e-9)) ≤ c ≤ kl(q‖p(1 + 1e-15)): p is the root."""
    c = math.exp(log_c)
    p = kl_inverse(q, c)
    assert q <= p <= 1.0
    if p * (1 + 1e-15) < 1.0:  # never below the root (up to rounding)
        assert _decimal_kl(q, p * (1 + 1e-15)) >= Decimal(c)
    assert _decimal_kl(q, max(q, p * (1 - 1e-9))) <= Decimal(c)  # and tight


# ----------------------------------------------------------------------------- properties


@given(
    n=st.integers(1, 400),
    frac=st.floats(0, 1),
    k=st.integers(1, 20),
    delta=st.floats(1e-4, 0.5),
)
@settings(max_examples=60, deadline=None)
def test_binomial_between_empirical_and_kl_and_hoeffding(n, frac, k, delta):
    losses = np.zeros(n)
    losses[: round(frac * n)] = 1.0
    exact = held_out_bound(losses, delta=delta, num_options=k)
    kl = held_out_bound(losses, delta=delta, num_options=k, method="kl")
    hoeffding = losses.mean() + math.sqrt(math.log(k / delta) / (2 * n))
    assert exact.empirical <= exact.bound <= kl.bound + 1e-12
    assert kl.bound <= min(1.0, hoeffding) + 1e-9  # Chernoff-kl is tighter than Hoeffding (Pinsker)


@given(
    values=st.lists(st.floats(0, 1), min_size=1, max_size=60),
    d1=st.floats(1e-3, 0.5),
    d2=st.floats(1e-3, 0.5),
    k1=st.integers(1, 10),
    k2=st.integers(1, 10),
)
@settings(max_examples=60, deadline=None)
def test_monotone_in_delta_and_options(values, d1, d2, k1, k2):
    (d1, d2), (k1, k2) = sorted([d1, d2]), sorted([k1, k2])
    bound = lambda d, k: held_out_bound(values, delta=d, num_options=k).bound  # noqa: E731
    assert bound(d1, k1) >= bound(d2, k1) - 1e-12  # smaller δ: larger bound
    assert bound(d1, k2) >= bound(d1, k1) - 1e-12  # more options: larger bound
    assert bound(d1, k1) >= np.mean(values) - 1e-12


@pytest.mark.parametrize(
    ("kind", "n", "k"),
    [("bernoulli", 30, 1), ("bernoulli", 200, 4), ("beta", 20, 1), ("beta", 150, 3)],
)
def test_monte_carlo_coverage(kind, n, k):
    """P(R ≤ bound) ≥ 1 − δ over many draws; for K options each at δ/K, P(miss) ≤ δ/K."""
    rng = np.random.default_rng(n + k)
    delta, draws = 0.2, 3000  # a large δ makes a miss frequent enough to measure
    if kind == "bernoulli":
        mean = 0.1
        samples = (rng.random((draws, n)) < mean).astype(float)
    else:
        a, b = 0.7, 3.0
        mean = a / (a + b)
        samples = rng.beta(a, b, (draws, n))
    misses = np.mean([held_out_bound(s, delta=delta, num_options=k).bound < mean for s in samples])
    # binomial standard error of the miss rate, 3σ slack
    level = delta / k
    assert misses <= level + 3 * math.sqrt(level * (1 - level) / draws)


# ----------------------------------------------------------------------------- huge K, tiny δ


@given(
    n=st.integers(1, 10_000),
    log_delta=st.floats(math.log(5e-324), math.log(0.5)),
    digits=st.integers(0, 2000),
)
@settings(max_examples=60, deadline=None)
def test_level_is_carried_as_a_log(n, log_delta, digits):
    """K = 10^digits, δ down to the smallest float: ln(K/δ) exact, the bound finite and exact."""
    delta, options = max(math.exp(log_delta), 5e-324), 10**digits
    log_level = math.log(delta) - digits * math.log(10)
    zero = held_out_bound(np.zeros(n), delta=delta, num_options=options)
    assert zero.options == options and zero.method == "binomial"
    assert math.isclose(zero.bound, -math.expm1(log_level / n), rel_tol=1e-9)  # (1 − p)^n = δ/K
    losses = np.full(n, 0.25)
    kl = held_out_bound(losses, delta=delta, num_options=options)
    assert kl.method == "kl"
    assert math.isclose(kl.bound, _brute_kl_inverse(0.25, -log_level / n), rel_tol=1e-9)


@pytest.mark.parametrize(
    ("delta", "options"), [(0.05, 10**400), (1e-300, 10**30), (5e-324, 10**400), (5e-324, 1)]
)
def test_huge_options_and_underflowing_level_do_not_crash(delta, options):
    for losses in (np.zeros(50), np.r_[np.zeros(40), np.ones(10)], np.full(50, 0.5)):
        result = held_out_bound(losses, delta=delta, num_options=options)
        assert result.empirical <= result.bound <= 1.0


@pytest.mark.parametrize("scale", [1.0, 0.5, 1e-3])
def test_losses_near_the_float64_maximum(scale):
    top = np.finfo(np.float64).max
    fractions = np.array([0.9, 0.5, 0.1, 1.0, 0.0])
    result = held_out_bound(fractions * top * scale, loss_range=top * scale)
    assert math.isfinite(result.bound) and result.method == "kl"
    assert math.isclose(result.empirical, top * scale * fractions.mean(), rel_tol=1e-12)
    expected = top * scale * _brute_kl_inverse(fractions.mean(), math.log(20) / 5)
    assert math.isclose(result.bound, expected, rel_tol=1e-9)
    zero_one = held_out_bound(np.array([top, 0.0, 0.0, top]) * scale, loss_range=top * scale)
    assert zero_one.method == "binomial" and math.isfinite(zero_one.bound)
    assert math.isclose(zero_one.bound / (top * scale), scipy_stats.beta.isf(0.05, 3, 2))


# ----------------------------------------------------------------------------- inputs


@pytest.mark.parametrize("shape", [(100, 10), (100, 1), (1, 100), (), (4, 5, 6)])
def test_losses_need_one_loss_per_example(shape):
    with pytest.raises(ValueError, match=r"one loss per held-out example(.|\n)*sum\(axis=1\)"):
        held_out_bound(np.zeros(shape))


@pytest.mark.parametrize(
    "convert",
    [list, np.asarray, jnp.asarray, lambda v: np.asarray(v, np.float32), tuple],
    ids=["list", "numpy", "jax", "float32", "tuple"],
)
def test_one_dimensional_inputs_agree(convert):
    values = [0.0, 0.25, 0.5, 0.125]
    reference = held_out_bound(np.asarray(values), num_options=2)
    assert held_out_bound(convert(values), num_options=2) == reference


def test_bool_losses_are_zero_one_losses():
    wrong = np.array([True, False, False, True, False])
    result = held_out_bound(wrong)
    assert result == held_out_bound(wrong.astype(float))
    assert result.method == "binomial" and result.empirical == 0.4


@pytest.mark.parametrize(
    ("name", "wrap"),
    [
        ("numpy 0-d", np.asarray),
        ("numpy scalar", np.float64),
        ("jax 0-d", lambda v: jnp.asarray(v)),
    ],
)
def test_scalar_arguments_may_be_0d_arrays(name, wrap):
    losses = np.array([0.0, 0.5, 1.0, 0.25])
    got = held_out_bound(losses, delta=wrap(0.1), num_options=wrap(3), loss_range=wrap(2.0))
    python = lambda v: np.asarray(wrap(v)).item()  # noqa: E731  the value the array holds
    expected = held_out_bound(losses, delta=python(0.1), num_options=3, loss_range=python(2.0))
    assert got == expected and got.options == 3 and isinstance(got.options, int)


@pytest.mark.parametrize("argument", ["delta", "num_options", "loss_range"])
def test_array_valued_scalars_are_refused(argument):
    with pytest.raises(TypeError, match=f"{argument} must be a scalar"):
        held_out_bound([0.5], **{argument: np.array([1, 2])})


@pytest.mark.parametrize("bound_value", [0.1, 0.3, 1 / 3, 2.2**2, 7.7, 1e-20, 3e30])
def test_float32_clipping_at_the_range_is_accepted(bound_value):
    """``min(loss, B)`` in float32 may exceed B by its rounding: taken as B, not refused."""
    rng = np.random.default_rng(0)
    raw = (rng.random(64) * 2 * bound_value).astype(np.float32)
    clipped = np.minimum(raw, np.float32(bound_value))
    assert float(clipped.max()) != bound_value  # float32(B) ≠ B: the case at hand
    result = held_out_bound(clipped, loss_range=bound_value)
    reference = held_out_bound(
        np.minimum(clipped.astype(np.float64), bound_value), loss_range=bound_value
    )
    assert result == reference
    if float(np.float32(bound_value)) > bound_value:  # rounded up: the 0-1 losses stay 0-1
        zero_one = np.where(raw > np.float32(bound_value), np.float32(bound_value), np.float32(0))
        assert held_out_bound(zero_one, loss_range=bound_value).method == "binomial"


@given(bound_value=st.floats(1e-30, 1e30), fraction=st.floats(0, 1))
@settings(max_examples=60, deadline=None)
def test_float32_rounding_of_the_range_is_the_range(bound_value, fraction):
    losses = np.array([np.float32(bound_value), np.float32(fraction * bound_value)], np.float32)
    result = held_out_bound(losses, loss_range=bound_value)
    assert result.empirical <= result.bound <= bound_value


@pytest.mark.parametrize(("dtype", "excess"), [(np.float64, 2.0**-21), (np.float32, 2.0**-20)])
def test_a_loss_beyond_rounding_is_refused(dtype, excess):
    with pytest.raises(ValueError, match=r"losses must lie in \[0, loss_range\]"):
        held_out_bound(np.array([0.3 * (1 + excess), 0.0], dtype), loss_range=0.3)


@pytest.mark.parametrize(
    "losses",
    [
        None,
        "0.5",
        ["a", "b"],
        [0.1, None],
        object(),
        (x for x in [0.1]),
        np.array([0.1 + 0.0j, 0.2]),
        jnp.array([0.1 + 0.5j]),
        np.array(["2020-01-01"], dtype="datetime64[D]"),
    ],
    ids=["None", "str", "strings", "None-inside", "object", "generator", "complex",
         "jax-complex", "datetime"],
)  # fmt: skip
def test_non_numeric_losses_are_type_errors(losses):
    with pytest.raises(TypeError, match="losses must be"):
        held_out_bound(losses)


@pytest.mark.parametrize(
    ("transform", "shape"),
    [
        (jax.jit, (4,)),
        (jax.vmap, (3, 4)),
        (jax.grad, (4,)),
        (lambda f: jax.jit(lambda v: f([v[0], v[1]])), (4,)),
    ],
    ids=["jit", "vmap", "grad", "jit-list"],
)
def test_tracers_are_refused_with_a_host_message(transform, shape):
    certify = lambda v: held_out_bound(v).bound  # noqa: E731
    with pytest.raises(TypeError, match=r"host(.|\n)*not under jax\.jit"):
        transform(certify)(jnp.zeros(shape))


def test_a_traced_scalar_argument_is_refused():
    with pytest.raises(TypeError, match="delta is a JAX tracer"):
        jax.jit(lambda d: held_out_bound(np.zeros(4), delta=d).bound)(0.05)


@pytest.mark.parametrize(
    ("losses", "kwargs", "match"),
    [
        ([], {}, "empty"),
        ([0.1, float("nan")], {}, "NaN"),
        ([0.1, 1.2], {}, r"\[0, 1\]"),
        ([-0.1, 0.5], {}, r"\[0, 1\]"),
        ([0.1, float("inf")], {}, r"\[0, 1\]"),
        ([0.5], {"delta": 0.0}, "delta"),
        ([0.5], {"delta": 1.0}, "delta"),
        ([0.5], {"delta": float("nan")}, "delta"),
        ([0.5], {"delta": Fraction(1, 10**400)}, "delta"),
        ([0.5], {"delta": Fraction(10**400 - 1, 10**400)}, "delta"),
        ([0.5], {"num_options": 0}, "num_options"),
        ([0.5], {"num_options": 2.5}, "num_options"),
        ([0.5], {"num_options": True}, "num_options"),
        ([0.5], {"num_options": np.bool_(True)}, "num_options"),
        ([0.5], {"num_options": float("inf")}, "num_options"),
        ([0.5], {"loss_range": 0.0}, "loss_range"),
        ([0.5], {"loss_range": float("inf")}, "loss_range"),
        ([0.5], {"method": "hoeffding"}, "method"),
        ([0.5, 0.0], {"method": "binomial"}, "0-1"),
        ([[0.1], [0.2, 0.3]], {}, "1-D array of per-example losses"),
    ],
)
def test_bad_input_is_named(losses, kwargs, match):
    with pytest.raises(ValueError, match=match):
        held_out_bound(losses, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"delta": "0.05"}, "delta"),
        ({"delta": 0.05 + 0j}, "delta"),
        ({"num_options": "3"}, "num_options"),
        ({"loss_range": None}, "loss_range"),
    ],
)
def test_non_numeric_arguments_are_type_errors(kwargs, match):
    with pytest.raises(TypeError, match=match):
        held_out_bound([0.5], **kwargs)


@pytest.mark.parametrize(
    ("q", "c", "error"),
    [("0.5", 0.1, TypeError), (0.5, None, TypeError), (1.5, 0.1, ValueError),
     (0.5, -1.0, ValueError), (float("nan"), 0.1, ValueError)],
)  # fmt: skip
def test_kl_inverse_bad_input(q, c, error):
    with pytest.raises(error, match=r"\bq\b|\bc\b"):
        kl_inverse(q, c)


def test_kl_inverse_takes_0d_arrays():
    assert kl_inverse(np.asarray(0.25), jnp.asarray(0.5)) == kl_inverse(0.25, 0.5)
