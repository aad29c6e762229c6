"""Tests for jaxsym.decision: the held-out certificate and the one decision function (§9)."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups
from jaxsym.certificates import held_out_bound, kl_inverse
from jaxsym.decision import choose_symmetry, set_name
from jaxsym.models import random_features_ridge

scipy_stats = pytest.importorskip("scipy.stats")


# ----------------------------------------------------------------------------- held-out bound


def _kl(q, p):
    out = 0.0
    if q > 0:
        out += q * math.log(q / p)
    if q < 1:
        out += (1 - q) * math.log((1 - q) / (1 - p))
    return out


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


def test_zero_one_losses_scale_with_the_range():
    losses = np.array([0.0, 2.5, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0])
    result = held_out_bound(losses, loss_range=2.5)
    assert result.method == "binomial"
    assert math.isclose(result.bound, 2.5 * scipy_stats.beta.ppf(0.95, 3, 6), rel_tol=1e-9)


def test_all_errors_give_the_trivial_bound():
    assert held_out_bound(np.ones(20)).bound == 1.0


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


@pytest.mark.parametrize(
    ("losses", "kwargs", "match"),
    [
        ([], {}, "empty"),
        ([0.1, float("nan")], {}, "NaN"),
        ([0.1, 1.2], {}, r"\[0, 1\]"),
        ([-0.1, 0.5], {}, r"\[0, 1\]"),
        ([0.5], {"delta": 0.0}, "delta"),
        ([0.5], {"delta": 1.0}, "delta"),
        ([0.5], {"num_options": 0}, "num_options"),
        ([0.5], {"num_options": 2.5}, "num_options"),
        ([0.5], {"num_options": True}, "num_options"),
        ([0.5], {"loss_range": 0.0}, "loss_range"),
        ([0.5], {"loss_range": float("inf")}, "loss_range"),
        ([0.5], {"method": "hoeffding"}, "method"),
        ([0.5, 0.0], {"method": "binomial"}, "0-1"),
    ],
)
def test_bad_input_is_named(losses, kwargs, match):
    with pytest.raises(ValueError, match=match):
        held_out_bound(losses, **kwargs)


def test_kl_inverse_edges():
    assert kl_inverse(1.0, 0.3) == 1.0
    assert 0.2 <= kl_inverse(0.2, 0.0) <= 0.2 + 1e-6  # kl is flat (quadratic) at p = q
    assert kl_inverse(0.0, math.log(20) / 10) == pytest.approx(1 - math.exp(-math.log(20) / 10))


# ----------------------------------------------------------------------------- choose_symmetry


def _points(seed, n=400):
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


def _choose(target, group, noise, seed, n=400):
    x = _points(seed, n)
    rng = np.random.default_rng(1000 + seed)
    y = (target(x) + noise * rng.normal(size=n)).astype(np.float32)[:, None]
    fit = random_features_ridge(256, 1e-3, key=jax.random.key(seed), lengthscale=1.0)
    return choose_symmetry(x, y, group, fit=fit, key=jax.random.key(seed + 1))


def _radial(x):
    return np.cos(np.linalg.norm(x, axis=1))


@pytest.mark.slow
@pytest.mark.parametrize("noise", [0.0, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_invariant_labels_get_the_full_group(noise, seed):
    choice = _choose(_radial, groups.cyclic_rotations(8), noise, seed)
    assert choice.name == "C8" and list(choice.elements) == list(range(8))
    assert choice.t_star <= 0.2
    assert choice.budget == pytest.approx(choice.t_star * choice.distance)


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_invariant_under_c4_get_c4_inside_c8(seed):
    choice = _choose(_c4_in_c8, groups.cyclic_rotations(8), 0.1, seed)
    assert list(choice.elements) == [0, 2, 4, 6]


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_invariant_under_c2_get_c2_inside_d4(seed):
    group = groups.dihedral(4)
    choice = _choose(lambda x: x[:, 0] * x[:, 1] + x[:, 0] ** 2, group, 0.1, seed)
    half_turn = np.asarray(group.elements)[list(choice.elements)]
    assert len(choice.elements) == 2
    np.testing.assert_allclose(half_turn[1], -np.eye(2), atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_labels_that_break_the_group_get_no_symmetry(seed):
    choice = _choose(lambda x: x[:, 0], groups.cyclic_rotations(8), 0.1, seed)
    assert choice.name == "none" and choice.t_star == 1.0 and list(choice.elements) == [0]


def _c4_in_c8(x):  # r⁴ cos 4θ: invariant under quarter turns, odd under the eighth turn
    return _radial(x) + 0.3 * (x[:, 0] ** 4 - 6 * x[:, 0] ** 2 * x[:, 1] ** 2 + x[:, 1] ** 4) / 4


AGREEMENT_CASES = {
    "invariant": (_radial, groups.cyclic_rotations(8), 0.0, list(range(8))),
    "invariant, noisy": (_radial, groups.cyclic_rotations(8), 0.3, list(range(8))),
    "C4 inside C8": (_c4_in_c8, groups.cyclic_rotations(8), 0.1, [0, 2, 4, 6]),
    "C2 inside D4": (lambda x: x[:, 0] * x[:, 1] + x[:, 0] ** 2, groups.dihedral(4), 0.1, 2),
    "breaking": (lambda x: x[:, 0], groups.cyclic_rotations(8), 0.1, [0]),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("case", list(AGREEMENT_CASES))
def test_bound_regularizer_keeps_what_choose_symmetry_chose(case, seed):
    """Same data, group, fit, key, candidates: the same set and level, and K + 1 fits in all."""
    target, group, noise, expected = AGREEMENT_CASES[case]
    x = _points(seed, 400)
    rng = np.random.default_rng(1000 + seed)
    y = (target(x) + noise * rng.normal(size=400)).astype(np.float32)[:, None]
    fit = random_features_ridge(256, 1e-3, key=jax.random.key(seed), lengthscale=1.0)
    calls = []

    def counted(a, b):
        calls.append(len(a))
        return fit(a, b)

    key = jax.random.key(seed + 1)
    choice = choose_symmetry(x, y, group, fit=fit, key=key)
    reg = jaxsym.bound_regularizer(x, y, group, fit=counted, key=key)
    assert len(calls) == 6  # 5 folds + the full fit: nothing fitted twice
    assert reg.choice.name == choice.name and reg.choice.t_star == choice.t_star
    assert list(reg.choice.elements) == list(choice.elements)
    np.testing.assert_allclose(reg.choice.risks, choice.risks, rtol=1e-6)
    np.testing.assert_allclose(float(reg.budget), choice.budget, rtol=1e-5, atol=1e-7)
    elements = np.asarray(reg.group.elements).reshape(reg.group.size, -1)
    chosen = np.asarray(group.elements).reshape(group.size, -1)[list(choice.elements)]
    np.testing.assert_allclose(elements, chosen)  # the active set is the chosen one
    if isinstance(expected, int):
        assert len(choice.elements) == expected
    else:
        assert list(choice.elements) == expected


@pytest.mark.slow
def test_the_rule_matches_a_direct_computation():
    """Risks and fold SEs against dial_risk fold by fold; the winner by the written rule."""
    seed, n, group = 3, 200, groups.cyclic_rotations(4)
    x = _points(seed, n)
    y = (_radial(x) + 0.2 * x[:, 0]).astype(np.float32)[:, None]
    fit = random_features_ridge(64, 1e-2, key=jax.random.key(0), lengthscale=1.0)
    key = jax.random.key(5)
    choice = choose_symmetry(x, y, group, fit=fit, key=key, t_grid=[0.0, 0.5, 1.0], num_folds=4)
    folds = jaxsym.cross_fitting_folds(n, 4, key=key)
    rows = {}
    for members in choice.candidates:
        sub = group if len(members) == 4 else group.subset(members)
        per_fold = []
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            model = fit(x[train], y[train])
            pred = lambda z, m=model, s=sub: jaxsym.dial(m, s, 0.0)(z)  # noqa: E731
            anti = lambda z, m=model: m(z)  # noqa: E731
            per_fold.append(
                [
                    np.mean(
                        np.sum(
                            (
                                y[fold]
                                - (
                                    (1 - t) * np.asarray(pred(x[fold]))
                                    + t * np.asarray(anti(x[fold]))
                                )
                            )
                            ** 2,
                            axis=1,
                        )
                    )
                    for t in (0.0, 0.5, 1.0)
                ]
            )
        rows[len(members)] = np.asarray(per_fold)  # (K, T)
    weights = np.array([len(f) for f in folds]) / n
    none = rows[1][:, -1]
    assert choice.risks[0] == pytest.approx(weights @ none, rel=1e-4)
    assert choice.stderrs[0] == pytest.approx(none.std(ddof=1) / 2, rel=1e-3)
    pairs = zip(choice.sizes, choice.levels, strict=True)
    j = next(i for i, (s, t) in enumerate(pairs) if s == 4 and t == 0.5)
    assert choice.risks[j] == pytest.approx(weights @ rows[4][:, 1], rel=1e-4)
    # the rule, written out: most symmetric within one SE of the best (soft needs a margin)
    best = int(np.argmin(choice.risks))
    ceiling = choice.risks[best] + choice.stderrs[best]
    inside = [i for i in range(len(choice.risks)) if choice.risks[i] <= ceiling]
    top = max(choice.sizes[i] for i in inside)
    assert choice.sizes[choice.index] == top or choice.levels[choice.index] in (0.0, 1.0)
    assert choice.risks[choice.index] <= ceiling


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_folds": 1}, ValueError, "num_folds"),
        ({"t_grid": [0.5, 1.5]}, ValueError, "t_grid"),
        ({"candidates": [[0, 9]]}, ValueError, "candidates"),
        ({"candidates": groups.cyclic_rotations(4)}, TypeError, "candidates"),
        ({"fit": None}, ValueError, "fit"),
    ],
)
def test_choose_symmetry_bad_input(kwargs, error, match):
    x = _points(0, 20)
    y = _radial(x)[:, None]
    args = {"fit": random_features_ridge(8, 1e-2, key=jax.random.key(0)), "key": None}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        choose_symmetry(x, y, groups.cyclic_rotations(4), **args)


@pytest.mark.slow
def test_a_set_that_is_not_a_group_uses_stabilizers():
    group = groups.rotation_range(math.pi / 6, 5)
    choice = _choose(_radial, group, 0.1, 0, n=200)
    sizes = [len(c) for c in choice.candidates]
    assert sizes == sorted(set(sizes))  # nested ε-stabilizers: strictly growing
    assert list(choice.candidates[-1]) == list(range(5))
    assert choice.name == group.name  # radial labels: the whole range


# ----------------------------------------------------------------------------- the audit (slow)


def _audit(target, group, seed, noise=0.1, n=300):
    from jaxsym.audit import inputs, pipeline

    x = _points(seed, n)
    rng = np.random.default_rng(500 + seed)
    y = (target(x) + noise * rng.normal(size=n)).reshape(-1, 1).astype(np.float32)
    x_test = _points(seed + 77, 200)
    y_test = target(x_test).reshape(-1, 1).astype(np.float32)
    data = inputs.Dataset(
        x=x, y=y, x_test=x_test, y_test=y_test, task="regression", classes=None,
        source="test", scale=1.0, test_source="file",
    )  # fmt: skip
    return pipeline.run_audit(data, group, seed=seed, quick=True, quiet=True)


def _check_certified(results):
    """The recommendation carries a certificate and is the best-certified model of its sweep."""
    rec = results["recommendation"]
    trained = [row for row in results["training"] if row["available"]]
    bounds = [row["certificate"]["bound"] for row in trained]
    assert rec["certificate"]["bound"] == min(bounds)
    assert rec["certificate"]["options"] == len(trained)
    assert rec["certificate"]["n"] == results["data"]["num_certify"]
    winner = next(row for row in trained if row["method"] == rec["method"])
    assert list(winner["elements"]) == list(rec["elements"])
    # every certificate is at least its own held-out mean, and at most the kl inversion
    for row in trained:
        cert = row["certificate"]
        kl = results["loss"]["loss_range"] * kl_inverse(
            min(cert["empirical"] / results["loss"]["loss_range"], 1.0),
            math.log(cert["options"] / cert["delta"]) / cert["n"],
        )
        assert cert["empirical"] <= cert["bound"] <= kl + 1e-9


def _c4_target(x):
    """Invariant under quarter turns, sign-flipped by the eighth turn (cos 4θ), bounded."""
    r2 = np.sum(x**2, axis=1) + 1e-12
    cos4 = (x[:, 0] ** 4 - 6 * x[:, 0] ** 2 * x[:, 1] ** 2 + x[:, 1] ** 4) / r2**2
    return _radial(x) + 0.5 * cos4 * np.tanh(r2)


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("noise", [0.0, 0.1])
def test_audit_invariant_labels_recommend_the_full_group(noise):
    results = _audit(_radial, groups.cyclic_rotations(8), 0, noise=noise)
    rec = results["recommendation"]
    assert rec["symmetry"] == "C8" and rec["t_star"] <= 0.2
    _check_certified(results)


@pytest.mark.extended
@pytest.mark.slow
def test_audit_subgroup_labels_recommend_the_subgroup():
    results = _audit(_c4_target, groups.cyclic_rotations(8), 1)
    assert list(results["recommendation"]["elements"]) == [0, 2, 4, 6]
    _check_certified(results)


@pytest.mark.extended
@pytest.mark.slow
def test_audit_breaking_labels_recommend_no_symmetry():
    results = _audit(lambda x: x[:, 0], groups.cyclic_rotations(8), 2)
    rec = results["recommendation"]
    assert rec["symmetry"] == "none" and rec["t_star"] == 1.0
    _check_certified(results)
    assert results["bound"]["name"] == "theory bound"


@pytest.mark.extended
@pytest.mark.slow
def test_quick_audit_on_digits_certifies_a_small_error(tmp_path, capsys):
    from jaxsym.audit import cli

    out = tmp_path / "audit"
    assert cli.main(["--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    document = json.loads((out / "report.json").read_text(encoding="utf-8"))
    rec = document["recommendation"]
    assert rec["certificate"]["bound"] <= 0.12
    assert rec["certificate"]["method"] == "binomial"
    assert "with probability ≥ 95%" in rec["text"].lower()
    assert "bound-optimal" not in text and "prefers" not in text
    if document["bound"]["vacuous"]:
        assert f"vacuous at n = {document['bound']['n']}" in rec["text"]


def test_candidates_as_subsets_of_the_group():
    """bound_regularizer's form: nested TransformationSets, mapped to element indices."""
    x = _points(0, 60)
    y = _radial(x)[:, None]
    fit = random_features_ridge(16, 1e-2, key=jax.random.key(0))
    c8 = groups.cyclic_rotations(8)
    nested = [groups.cyclic_rotations(2), groups.cyclic_rotations(4), c8]
    choice = choose_symmetry(x, y, c8, fit=fit, key=None, candidates=nested, t_grid=[0.0])
    assert [list(m) for m in choice.candidates] == [[0], [0, 4], [0, 2, 4, 6], list(range(8))]
    with pytest.raises(ValueError, match="subset of C8"):
        choose_symmetry(x, y, c8, fit=fit, key=None, candidates=[groups.cyclic_rotations(3)])


@pytest.mark.extended
@pytest.mark.slow
def test_audit_regularizer_trains_on_the_screened_set(monkeypatch):
    """A soft screen (0 < t* < 1) trains jaxsym.bound_regularizer on the screen's own choice."""
    from jaxsym import decision
    from jaxsym.audit import analysis, inputs, pipeline

    group = groups.cyclic_rotations(8)
    real_pick, built, screened = decision._pick, [], []

    def soft_pick(sizes, levels, risks, stderrs, none):  # force C4 at t = 0.5
        _, best, ceiling = real_pick(sizes, levels, risks, stderrs, none)
        soft = next(j for j in range(len(sizes)) if sizes[j] == 4 and levels[j] == 0.5)
        return soft, best, ceiling

    real_screen, real_regularizer = analysis.screen, analysis.bound_regularizer

    def screen(*args):
        screened.append(real_screen(*args))
        return screened[-1]

    def recording(*args):
        built.append(real_regularizer(*args))
        return built[-1]

    monkeypatch.setattr(decision, "_pick", soft_pick)
    monkeypatch.setattr(analysis, "screen", screen)
    monkeypatch.setattr(analysis, "bound_regularizer", recording)
    monkeypatch.setattr(pipeline, "settings", lambda quick: pipeline.AuditSettings(
        max_train=150, max_test=50, num_features=32, ridge=1e-2, hidden=8, steps=100))  # fmt: skip
    x = _points(4, 150)
    y = _c4_target(x).reshape(-1, 1).astype(np.float32)
    data = inputs.Dataset(
        x=x, y=y, x_test=x[:50], y_test=y[:50], task="regression", classes=None,
        source="test", scale=1.0, test_source="file",
    )  # fmt: skip
    results = pipeline.run_audit(data, group, seed=0, quick=True, quiet=True)
    assert len(built) == 1 and built[0].group.size == 4
    (choice,) = screened
    assert built[0].choice.name == choice.name and built[0].choice.t_star == choice.t_star == 0.5
    np.testing.assert_allclose(float(built[0].budget), choice.budget, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(built[0].group.elements), np.asarray(group.elements)[[0, 2, 4, 6]]
    )
    row = next(r for r in results["training"] if r["method"] == "bound regularizer")
    assert row["available"] and list(row["elements"]) == [0, 2, 4, 6]
    assert row["certificate"]["options"] == 4  # none, full, the set exactly, the regularizer
    _check_certified(results)


def test_set_names_list_the_elements_of_a_proper_subset():
    group = groups.flip_rot90()
    assert set_name(group, np.arange(8)) == group.name
    assert set_name(group, [0]) == "none"
    assert set_name(group, [0, 2]) == "{e, rot 180°}"
    big = groups.cyclic_rotations(24)
    name = set_name(big, np.arange(0, 24, 2))
    assert "12 of 24" in name and name.startswith("{e, rot 30°")
