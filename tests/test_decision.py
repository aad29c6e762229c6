"""Tests for jaxsym.decision: the one decision function (§9). Certificates: test_certificates.py."""

from __future__ import annotations

import json
import math

import jax
import numpy as np
import pytest

import jaxsym
from jaxsym import groups
from jaxsym.certificates import kl_inverse
from jaxsym.decision import choose_symmetry, set_name
from jaxsym.models import random_features_ridge

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
    assert choice.t_star <= 0.25
    if choice.t_star in (0.0, 1.0):
        assert choice.budget == 0.0


@pytest.mark.slow
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


def _ridge_in_class(x_train, y_train, x_test, group, members, t, fit):
    """An independent in-class ridge: numpy features, averaged over the set, dialed, solved."""
    model = fit(x_train, y_train)  # the plain model carries W, b
    w, b = np.asarray(model.projection, np.float64), np.asarray(model.phase, np.float64)
    p = b.shape[0]
    mats = np.asarray(group.elements, np.float64)[list(members)]

    def feats(z):
        base = np.sqrt(2 / p) * np.cos(z @ w + b)
        avg = np.mean([np.sqrt(2 / p) * np.cos(z @ m.T @ w + b) for m in mats], axis=0)
        return avg + t * (base - avg)

    phi = feats(np.asarray(x_train, np.float64))
    yt = np.asarray(y_train, np.float64)
    mean = yt.mean(0)
    gram = phi.T @ phi / len(phi) + 1e-2 * np.eye(p)
    weights = np.linalg.solve(gram, phi.T @ (yt - mean) / len(phi))
    return feats(np.asarray(x_test, np.float64)) @ weights + mean


@pytest.mark.slow
def test_the_cross_fit_trains_in_each_class_and_the_rule_is_the_written_one():
    """Every risk against an independent in-class ridge fold by fold; the winner by the rule."""
    seed, n, group = 3, 120, groups.cyclic_rotations(4)
    x = _points(seed, n)
    y = (_radial(x) + 0.2 * x[:, 0]).astype(np.float32)[:, None]
    fit = random_features_ridge(32, 1e-2, key=jax.random.key(0), lengthscale=1.0)
    key = jax.random.key(5)
    choice = choose_symmetry(x, y, group, fit=fit, key=key, t_grid=[0.0, 0.5, 1.0], num_folds=4)
    folds = jaxsym.cross_fitting_folds(n, 4, key=key)
    options = choice.problem.options
    assert len(options) == choice.num_options == 1 + 2 * 2  # none, {e, 180°} and C4 at t = 0, .5
    for j, option in enumerate(options):
        fold_risks = []
        for fold in folds:
            train = np.setdiff1d(np.arange(n), fold)
            pred = _ridge_in_class(
                x[train], y[train], x[fold], group, option.elements, option.t, fit
            )
            fold_risks.append(np.mean(np.sum((y[fold] - pred) ** 2, axis=1)))
        fold_risks = np.asarray(fold_risks)
        weights = np.array([len(f) for f in folds]) / n
        assert choice.risks[j] == pytest.approx(weights @ fold_risks, rel=2e-3)
        assert choice.stderrs[j] == pytest.approx(fold_risks.std(ddof=1) / 2, rel=2e-2)
    # the rule, written out: most symmetric within one SE of the best (soft needs a margin)
    best = int(np.argmin(choice.risks))
    ceiling = choice.risks[best] + choice.stderrs[best]
    inside = [i for i in range(len(choice.risks)) if choice.risks[i] <= ceiling]
    exact_or_none = [i for i in inside if choice.levels[i] in (0.0, 1.0)]
    top = max(choice.sizes[i] for i in exact_or_none) if exact_or_none else 1
    assert choice.risks[choice.index] <= ceiling
    if choice.levels[choice.index] in (0.0, 1.0):
        assert choice.sizes[choice.index] == top


def test_the_soft_level_needs_a_margin_over_both_ends():
    """_pick on hand-made tables: a soft level wins only by more than the best's SE."""
    from jaxsym.decision import _pick  # the rule itself, on tables with known answers

    sizes, levels = np.array([1, 4, 4, 4]), np.array([1.0, 0.0, 0.5, 0.75])
    se = np.full(4, 0.01)
    # soft beats none and exact by 0.05 ≫ SE: the soft level
    assert _pick(sizes, levels, np.array([0.30, 0.30, 0.25, 0.28]), se)[0] == 2
    # soft beats exact by less than the SE: exact (more symmetric, within one SE)
    assert _pick(sizes, levels, np.array([0.30, 0.255, 0.25, 0.28]), se)[0] == 1
    # soft beats exact but not none by the margin: exact is out (0.33), none within SE wins
    assert _pick(sizes, levels, np.array([0.255, 0.33, 0.25, 0.28]), se)[0] == 0


def test_rounding_never_decides():
    """Exactly invariant, noise-free labels: risks at rounding level tie; the largest set wins."""
    from jaxsym.decision import decide

    x = _points(0, 40)
    y = _radial(x)[:, None].astype(np.float32)
    group = groups.cyclic_rotations(8)
    problem = jaxsym.symmetry_problem(x, y, group, key=None, t_grid=[0.0])
    sizes = [len(o.elements) for o in problem.options]
    tiny = np.array([[1e-15 * (1 + s)] * 40 for s in sizes])  # bigger sets slightly "worse"
    tiny[0] = 1.0  # none is bad
    fit = random_features_ridge(8, 1e-2, key=jax.random.key(0))
    choice = decide(problem, tiny, fit)
    assert choice.name == "C8"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_folds": 1}, ValueError, "num_folds"),
        ({"t_grid": [0.5, 1.5]}, ValueError, "t_grid"),
        ({"t_grid": "abc"}, TypeError, "t_grid"),
        ({"candidates": [[0, 9]]}, ValueError, "candidates"),
        ({"candidates": groups.cyclic_rotations(4)}, TypeError, "candidates"),
        ({"fit": None}, TypeError, "fit"),
        ({"fit": lambda x, y: x}, TypeError, "post_hoc"),
        ({"key": 3}, TypeError, "key"),
        ({"loss": "hinge"}, ValueError, "loss"),
        ({"y": np.arange(20)}, ValueError, "one-hot"),
        ({"y": np.array(["a"] * 20)}, TypeError, "y"),
        ({"y": np.ones(20, complex)}, TypeError, "y"),
        ({"y": np.ones((20, 1)), "loss": "zero_one"}, ValueError, "one column per class"),
    ],
)
def test_choose_symmetry_bad_input(kwargs, error, match):
    x = _points(0, 20)
    args = {
        "fit": random_features_ridge(8, 1e-2, key=jax.random.key(0)),
        "key": None,
        "y": _radial(x)[:, None],
    }
    args.update(kwargs)
    y = args.pop("y")
    with pytest.raises(error, match=match):
        choose_symmetry(x, y, groups.cyclic_rotations(4), **args)


@pytest.mark.slow
def test_a_range_gets_nested_sub_ranges_and_soft_levels():
    group = groups.rotation_range(math.pi / 3, 7)
    choice = _choose(_radial, group, 0.1, 0, n=200)
    sizes = [len(c) for c in choice.candidates]
    assert sizes == [1, 3, 5, 7]  # ±20°, ±40°, ±60°: nested, fixed by the set
    angles = np.abs(
        np.arctan2(np.asarray(group.elements)[:, 1, 0], np.asarray(group.elements)[:, 0, 0])
    )
    for small, large in zip(choice.candidates, choice.candidates[1:], strict=False):
        assert set(small) < set(large)
        added = sorted(set(large) - set(small))
        assert angles[list(small)].max() < angles[added].min() + 1e-6  # a ball, growing
    assert choice.problem.candidates_fixed
    assert any(0 < o.t < 1 for o in choice.problem.options)  # soft levels on a non-group set
    assert choice.name == group.name  # radial labels: the whole range


@pytest.mark.slow
@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
def test_post_hoc_ranks_dials_of_one_fit():
    """post_hoc(fit): K + 1 plain fits, and each option's model is the dial of the fold fit."""
    x = _points(1, 80)
    y = _radial(x)[:, None].astype(np.float32)
    ridge = random_features_ridge(16, 1e-2, key=jax.random.key(0))
    calls = []

    def plain(a, b):
        calls.append(len(a))
        return ridge(a, b)

    group = groups.cyclic_rotations(4)
    choice = choose_symmetry(x, y, group, fit=jaxsym.post_hoc(plain), key=None, num_folds=4)
    assert len(calls) == 4 + 1
    fold = jaxsym.cross_fitting_folds(80, 4)[0]
    train = np.setdiff1d(np.arange(80), fold)
    model = ridge(x[train], y[train])
    j = next(i for i, o in enumerate(choice.problem.options) if o.t == 0.5 and len(o.elements) == 4)
    dialed = np.asarray(jaxsym.dial(model, group, 0.5)(x[fold]))
    expected = np.mean(np.sum((y[fold] - dialed) ** 2, axis=1))
    assert choice.fold_risks[j, 0] == pytest.approx(expected, rel=1e-4)


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
    assert rec["lowest_certificate"]["bound"] == min(bounds)
    assert rec["method"] in rec["tied"]  # tied within two paired SEs with the lowest
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
def test_audit_trains_and_certifies_the_screened_soft_level(monkeypatch):
    """A soft screen (0 < t* < 1) is trained (the screen's own model) and certified too."""
    from jaxsym import decision
    from jaxsym.audit import analysis, inputs, pipeline

    group = groups.cyclic_rotations(8)
    real_pick, screened = decision._pick, []

    def soft_pick(sizes, levels, risks, stderrs, none=0):  # force C4 at t = 0.5
        _, best, ceiling = real_pick(sizes, levels, risks, stderrs, none)
        soft = next(j for j in range(len(sizes)) if sizes[j] == 4 and levels[j] == 0.5)
        return soft, best, ceiling

    real_screen = analysis.screen

    def screen(*args, **kwargs):
        screened.append(real_screen(*args, **kwargs))
        return screened[-1]

    monkeypatch.setattr(decision, "_pick", soft_pick)
    monkeypatch.setattr(analysis, "screen", screen)
    small = pipeline.AuditSettings(
        max_train=150, max_test=50, num_features=32, ridges=(1e-2,), num_folds=5, delta=0.05
    )
    monkeypatch.setattr(pipeline, "settings", lambda quick: small)
    x = _points(4, 150)
    y = _c4_target(x).reshape(-1, 1).astype(np.float32)
    data = inputs.Dataset(
        x=x, y=y, x_test=x[:50], y_test=y[:50], task="regression", classes=None,
        source="test", scale=1.0, test_source="file",
    )  # fmt: skip
    results = pipeline.run_audit(data, group, seed=0, quick=True, quiet=True)
    (choice,) = screened
    assert choice.t_star == 0.5 and list(choice.elements) == [0, 2, 4, 6]
    row = next(r for r in results["training"] if r["screened"])
    assert row["t"] == 0.5 and list(row["elements"]) == [0, 2, 4, 6]
    assert row["budget"] == pytest.approx(choice.budget) and choice.budget > 0
    # none, C2, C4, C8 exactly, and C4 at t = 0.5: five models in the union bound
    assert row["certificate"]["options"] == 5 == len(results["training"])
    _check_certified(results)


def test_set_names_list_the_elements_of_a_proper_subset():
    group = groups.flip_rot90()
    assert set_name(group, np.arange(8)) == group.name
    assert set_name(group, [0]) == "none"
    assert set_name(group, [0, 2]) == "{e, rot 180°}"
    big = groups.cyclic_rotations(24)
    name = set_name(big, np.arange(0, 24, 2))
    assert "12 of 24" in name and name.startswith("{e, rot 30°")
