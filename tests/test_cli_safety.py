"""The audit CLI never removes a user's file, checks every input before any work,
and ends cleanly on Ctrl-C (issue 15 §1, §4).

In-process calls of :func:`jaxsym.audit.cli.main` with the data loader (or the
pipeline) replaced by a tripwire show that a refusal comes before any work; only
the Ctrl-C tests start a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from jaxsym.audit import cli, inputs, output
from jaxsym.audit.inputs import AuditError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THESIS = "\\documentclass{article} my thesis"


def _points(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)


def _good(path) -> str:
    x = _points(60)
    np.savez(path, x=x, y=np.cos(x[:, 0]).astype(np.float32))
    return str(path)


def _snapshot(*folders) -> dict[str, str]:
    """Every file under ``folders`` with its content."""
    files = {}
    for folder in folders:
        for base, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(base, name)
                with open(path, "rb") as handle:
                    files[path] = handle.read().decode("latin-1")
    return files


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A home and a working directory two levels below it, each holding a user's file."""
    home = tmp_path / "home"
    work = home / "thesis" / "code"
    work.mkdir(parents=True)
    for folder in (home, home / "thesis", work):
        (folder / "thesis.tex").write_text(THESIS)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the data set is read (i.e. work starts before the refusal)."""

    def tripwire(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(cli, "load_dataset", tripwire)


def _refused(argv, capsys, status: int = 2) -> str:
    # "Refused before any long work" is checked by the no_work tripwire where it matters,
    # not by a wall-clock limit (which a loaded 2-core machine can miss).
    assert cli.main([str(a) for a in argv]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("jaxsym audit: error:")
    return captured.err


# ----------------------------------------------------------------------------- --out


@pytest.mark.parametrize(
    "out", ["", " ", ".", "./", "..", "../..", "~", "~/", "/", "/..", "{cwd}", "{up}/..", "a\0b"]
)
@pytest.mark.parametrize("force", [False, True])
def test_out_is_never_the_working_directory_an_ancestor_or_home(
    workdir, capsys, no_work, out, force
):
    before = _snapshot(workdir.parent.parent)
    out = out.format(cwd=os.getcwd(), up=os.path.dirname(os.getcwd()))
    err = _refused(["--data", "any.npz", "--out", out, *(["--force"] if force else [])], capsys)
    assert "--out" in err
    assert _snapshot(workdir.parent.parent) == before


@pytest.mark.parametrize("target", ["cwd", "parent", "home", "root"])
def test_out_through_a_symlink_to_a_protected_directory_is_refused(
    workdir, tmp_path, capsys, no_work, target
):
    link = tmp_path / "link"
    resolved = {
        "cwd": workdir,
        "parent": workdir.parent,
        "home": workdir.parent.parent,
        "root": "/",
    }[target]
    link.symlink_to(resolved)
    before = _snapshot(workdir.parent.parent)
    err = _refused(["--out", link, "--force"], capsys)
    assert "directory" in err or "symbolic link" in err
    assert _snapshot(workdir.parent.parent) == before
    assert link.is_symlink()


def test_force_refuses_a_directory_the_audit_did_not_write(workdir, capsys, no_work):
    out = workdir / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = _refused(["--out", out, "--force"], capsys)
    assert "did not write" in err and "results" in err
    assert (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("extra", ["thesis.tex", "sub/", "report.json.bak"])
@pytest.mark.parametrize("kind", ["marker", "report"])
def test_force_refuses_an_audit_directory_holding_anything_else(
    workdir, capsys, no_work, extra, kind
):
    out = workdir / "audit"
    out.mkdir()
    if kind == "marker":
        (out / output.MARKER).write_text(json.dumps({"files": ["report.json"]}))
    (out / "report.json").write_text(json.dumps({"schema_version": "1.0", "jaxsym_version": "0"}))
    if extra.endswith("/"):
        (out / extra).mkdir()
    else:
        (out / extra).write_text("mine")
    before = _snapshot(out)
    err = _refused(["--out", out, "--force"], capsys)
    assert "did not write" in err and extra.rstrip("/") in err
    assert _snapshot(out) == before


def test_force_refuses_a_report_json_that_is_not_ours(workdir, capsys, no_work):
    out = workdir / "audit"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"title": "someone else's report"}))
    err = _refused(["--out", out, "--force"], capsys)
    assert "did not write" in err
    assert (out / "report.json").exists()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        ("file", "not a directory"),
        ("parent_file", "not a directory"),
        ("dev_null", "not a directory"),
        ("proc", "cannot create a directory"),
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_bad_output_paths_are_refused_before_any_work(
    workdir, capsys, no_work, make, fragment, force
):
    (workdir / "report.pdf").write_text("keep")
    out = {
        "file": workdir / "report.pdf",
        "parent_file": workdir / "report.pdf" / "sub",
        "dev_null": "/dev/null/sub",
        "proc": "/proc/jaxsym-audit-test/out",
    }[make]
    if make == "proc" and not os.path.isdir("/proc"):
        pytest.skip("no /proc")
    err = _refused(["--out", out, *(["--force"] if force else [])], capsys)
    assert fragment in err
    assert (workdir / "report.pdf").read_text() == "keep"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_parent_is_refused_before_any_work(workdir, capsys, no_work):
    parent = workdir / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        err = _refused(["--out", parent / "out"], capsys)
    finally:
        parent.chmod(0o755)
    assert "cannot create a directory" in err


def test_the_writability_check_creates_a_directory_even_as_root(tmp_path, monkeypatch):
    # permission bits say little to root: the check must try, not ask os.access
    def fail(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(output.tempfile, "mkdtemp", fail)
    monkeypatch.setattr(output.os, "access", lambda *args, **kwargs: True)
    with pytest.raises(AuditError, match=r"cannot create a directory.*Permission denied"):
        output.check_out(str(tmp_path / "out"), force=False)
    assert os.listdir(tmp_path) == []


def test_check_out_creates_nothing(tmp_path):
    target = output.check_out(str(tmp_path / "a" / "b" / "out"), force=False)
    assert target.path == str(tmp_path / "a" / "b" / "out") and not target.replace
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- writing


def _writer(text: str, names=("report.json",)):
    def fill(directory):
        for name in names:
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(text)
        return list(names)

    return fill


def test_write_atomically_replaces_only_an_earlier_audit_with_force(tmp_path):
    out = tmp_path / "out"
    output.write_atomically(str(out), _writer("one"), force=False)
    assert (out / "report.json").read_text() == "one"
    assert json.loads((out / output.MARKER).read_text()) == {"files": ["report.json"]}
    with pytest.raises(AuditError, match="--force"):
        output.write_atomically(str(out), _writer("two"), force=False)
    assert (out / "report.json").read_text() == "one"
    output.write_atomically(str(out), _writer("three", ("report.json", "risk.png")), force=True)
    assert (out / "report.json").read_text() == "three"
    assert sorted(os.listdir(out)) == [output.MARKER, "report.json", "risk.png"]
    assert os.listdir(tmp_path) == ["out"]  # no temporary or old directory left


def test_write_atomically_keeps_the_old_output_when_interrupted(tmp_path):
    out = tmp_path / "out"
    output.write_atomically(str(out), _writer("old"), force=False)

    def interrupted(directory):
        _writer("half")(directory)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        output.write_atomically(str(out), interrupted, force=True)
    assert (out / "report.json").read_text() == "old"
    assert os.listdir(tmp_path) == ["out"]


def test_a_file_that_appears_during_the_run_is_never_deleted(tmp_path):
    out = tmp_path / "out"
    output.write_atomically(str(out), _writer("old"), force=False)

    def meanwhile(directory):  # the user saves a file into the old output while we write
        (out / "notes.txt").write_text("mine")
        return _writer("new")(directory)

    output.write_atomically(str(out), meanwhile, force=True)
    assert (out / "report.json").read_text() == "new"
    survivors = [p for p in tmp_path.rglob("notes.txt")]
    assert [p.read_text() for p in survivors] == ["mine"]


def test_parents_made_for_out_are_removed_if_the_write_fails(tmp_path):
    def broken(directory):
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        output.write_atomically(str(tmp_path / "a" / "b" / "out"), broken, force=False)
    assert os.listdir(tmp_path) == []


def test_ctrl_c_during_the_final_renames_is_deferred_until_they_finish(tmp_path, monkeypatch):
    out = tmp_path / "out"
    output.write_atomically(str(out), _writer("old"), force=False)
    real = os.rename
    handler = cli._interrupt_handler("jaxsym audit")

    def rename(source, destination):
        assert output.committing()
        handler(signal.SIGINT, None)  # must return (not exit) while committing
        real(source, destination)

    monkeypatch.setattr(output.os, "rename", rename)
    assert output.write_atomically(str(out), _writer("new"), force=True) is True
    monkeypatch.setattr(output.os, "rename", real)
    assert (out / "report.json").read_text() == "new"
    assert os.listdir(tmp_path) == ["out"]
    assert output.write_atomically(str(out), _writer("next"), force=True) is False


def test_a_marker_never_makes_a_user_file_ours(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / output.MARKER).write_text(json.dumps({"files": ["report.json", "thesis.tex"]}))
    (out / "thesis.tex").write_text(THESIS)
    with pytest.raises(AuditError, match=r"thesis\.tex"):
        output.write_atomically(str(out), _writer("new"), force=True)
    assert (out / "thesis.tex").read_text() == THESIS


def test_a_legacy_report_without_the_marker_can_be_replaced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text(json.dumps({"schema_version": "1.0", "jaxsym_version": "0"}))
    (out / "bound.png").write_bytes(b"png")
    output.write_atomically(str(out), _writer("new"), force=True)
    assert sorted(os.listdir(out)) == [output.MARKER, "report.json"]
    assert os.listdir(tmp_path) == ["out"]


# ----------------------------------------------------------------------------- flags


@pytest.mark.parametrize("seed", ["-1", str(2**32), str(2**70), "1.5", "1e3", "", "0x10", "٣"])
def test_bad_seeds_are_usage_errors(capsys, no_work, seed):
    with pytest.raises(SystemExit) as info:
        cli.main(["--seed", seed, "--out", "unused"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seed" in err and repr(seed) in err


@pytest.mark.parametrize("seed", ["0", str(2**32 - 1)])
def test_the_seed_range_is_what_jax_accepts(seed):
    import jax

    from jaxsym._src.validation import parse_seed

    assert parse_seed(seed) == int(seed)
    jax.random.key(int(seed))  # no overflow at the ends of the range


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("c1", "1 element"),
        ("so2:1", "1 element"),
        ("shift:1", "1 element"),
        ("perm:1", "1 element"),
        ("so3:1", "1 element"),
        ("rot:30:1", "1 element"),
        ("rot-image:1", "1 element"),
        ("rot-image:200", "at most 128"),
        ("shift-image:1", "1 element"),
        ("c129", "at most 128"),
        ("d65", "at most 128"),
        ("c100000", "at most 128"),
        ("c99999999999", "at most 128"),
        ("so3:1000", "at most 128"),
        ("perm:6", "K ≤ 5"),
        ("perm:20", "K ≤ 5"),
        ("c" + "9" * 5000, "at most 12 digits"),
        ("", "unknown group"),
    ],
)
def test_trivial_and_oversized_groups_are_refused_before_building(
    capsys, monkeypatch, no_work, spec, fragment
):
    def tripwire(*args, **kwargs):
        raise AssertionError("built the group before checking its size")

    for name in (
        "cyclic_rotations",
        "dihedral",
        "cyclic_shifts",
        "permutations",
        "so3",
        "rotation_range",
        "image_rotations",
        "translation_grid",
    ):
        monkeypatch.setattr(inputs.groups, name, tripwire)
    err = _refused(["--group", spec, "--out", "unused-out"], capsys)
    assert fragment in err and "--group" in err


@pytest.mark.parametrize(
    ("spec", "size"), [("c2", 2), ("c128", 128), ("d64", 128), ("perm:5", 120)]
)
def test_groups_at_the_limits_are_accepted(spec, size):
    assert inputs.parse_group(spec).size == size


def _data_cases(tmp_path) -> dict[str, tuple[str, str]]:
    x = _points(60)
    y = np.cos(x[:, 0]).astype(np.float32)

    def save(name, **arrays):
        path = str(tmp_path / name)
        np.savez(path, **arrays)
        return path

    npy = str(tmp_path / "x.npy")
    np.save(npy, x)
    fake = str(tmp_path / "fake.npz")
    with open(fake, "wb") as handle:
        handle.write(b"PK\x03\x04 truncated")
    return {
        "npy": (npy, "an .npz archive with arrays x and y"),
        "empty x": (save("e.npz", x=x[:0], y=y[:0]), "x is empty"),
        "empty test": (save("t.npz", x=x, y=y, x_test=x[:0], y_test=y[:0]), "x_test is empty"),
        "x (n, 0)": (save("x0.npz", x=np.zeros((60, 0), np.float32), y=y), "no numbers"),
        "y (n, 0)": (save("y0.npz", x=x, y=np.zeros((60, 0), np.float32)), "no target values"),
        "y 1e30": (save("big.npz", x=x, y=y * np.float32(1e30)), "rescale the targets"),
        "y int 1e18 regression": (
            save("bigint.npz", x=x, y=np.full(60, 10**18, np.int64)),
            "rescale the targets",
        ),
        "x 1e300": (save("bigx.npz", x=x.astype(np.float64) * 1e300, y=y), "beyond float32"),
        "features": (save("f.npz", x=np.zeros((60, 4097), np.float32), y=y), "at most 4096"),
        "targets": (save("d.npz", x=x, y=np.zeros((60, 2000), np.float32)), "at most 1024"),
        "classes": (save("k.npz", x=np.tile(x, (40, 1)), y=np.arange(2400)), "at most 1024"),
        "nan": (save("nan.npz", x=x, y=np.where(y > 0, np.nan, y)), "NaN or infinite"),
        "lengths": (save("len.npz", x=x, y=y[:-1]), "different lengths"),
        "scalar y": (save("s.npz", x=x, y=np.float32(1.0)), "got a scalar"),
        "truncated zip": (fake, "cannot read it"),
        "directory": (str(tmp_path), "is a directory"),
        "device": ("/dev/null", "not a regular file"),
        "empty name": ("", "no such file"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "npy",
        "empty x",
        "empty test",
        "x (n, 0)",
        "y (n, 0)",
        "y 1e30",
        "y int 1e18 regression",
        "x 1e300",
        "features",
        "targets",
        "classes",
        "nan",
        "lengths",
        "scalar y",
        "truncated zip",
        "directory",
        "device",
        "empty name",
    ],
)
def test_bad_data_is_refused_in_one_line_before_the_run(tmp_path, capsys, monkeypatch, case):
    import jaxsym.audit.pipeline as pipeline

    def tripwire(*args, **kwargs):
        raise AssertionError("the pipeline ran on bad data")

    monkeypatch.setattr(pipeline, "run_audit", tripwire)
    path, fragment = _data_cases(tmp_path)[case]
    task = ["--task", "regression"] if "regression" in case else []
    err = _refused(["--data", path, "--group", "c4", "--out", tmp_path / "out", *task], capsys)
    assert fragment in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_data_at_the_limits_is_accepted(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 2, 2048)).astype(np.float32)
    y = np.full(40, 1e12, np.float64)
    path = str(tmp_path / "ok.npz")
    np.savez(path, x=x, y=y)
    data = inputs.load_dataset(path, inputs.parse_group("shift:2"))
    assert data.x.shape[1:] == (2, 2048) and np.all(np.isfinite(data.x))


def test_huge_inputs_are_rescaled_without_overflow(tmp_path):
    x = _points(60).astype(np.float64) * 1e37  # squares overflow float32
    path = str(tmp_path / "ok.npz")
    np.savez(path, x=x, y=np.cos(x[:, 0] / 1e37))
    data = inputs.load_dataset(path, inputs.parse_group("c4"))
    rms = np.sqrt(np.mean(np.square(data.x, dtype=np.float64)))  # the scale is the train RMS
    assert np.isclose(rms, 1.0, rtol=1e-5) and np.all(np.isfinite(data.x_test))


@pytest.mark.parametrize(
    ("spec", "parameter"),
    [
        ("rot-image:8:", "MAX_DEGREES"),
        ("rot-image::30", "NUM"),
        ("rot-image:8:abc", "MAX_DEGREES"),
        ("rot-image:8:1_0", "MAX_DEGREES"),  # float() would read 10
        ("shift-image:3:", "MAX_PIXELS"),
        ("shift-image::0.5", "NUM"),
        ("shift-image:3:0.5px", "MAX_PIXELS"),
        ("rot:30:", "NUM"),
        ("rot::7", "DEGREES"),
        ("rot:٣٠:7", "DEGREES"),  # float() would read 30
        ("rot:30:7.0", "NUM"),
        ("so2:", "N"),
        ("so2:eight", "N"),
        ("perm:", "K"),
        ("shift:", "N"),
        ("so3:", "NUM"),
        ("so3:1e2", "NUM"),
        ("c", "N"),
        ("d", "N"),
        ("c8.5", "N"),
    ],
)
def test_every_empty_or_garbled_group_parameter_is_named(capsys, no_work, spec, parameter):
    err = _refused(["--group", spec, "--out", "unused-out"], capsys)
    assert f"--group {spec!r}: {parameter} " in err
    assert "could not convert" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("rot-image:8:30:1", "rot-image takes 1 or 2 parameter(s), NUM:MAX_DEGREES; got 3"),
        ("so2", "so2 takes 1 parameter(s), N; got 0"),
        ("d4-image:", "d4-image takes no parameters; got 1"),
        ("c8:3", "cN takes no ':' parameters"),
    ],
)
def test_a_wrong_number_of_group_parameters_shows_the_form(capsys, no_work, spec, fragment):
    err = _refused(["--group", spec, "--out", "unused-out"], capsys)
    assert f"--group {spec!r}" in err and fragment in err


@pytest.mark.parametrize("spec", ["rot-image:3:1e-298", "rot:1e-300:3", "shift-image:3:1e-300"])
def test_groups_whose_elements_coincide_are_refused(capsys, no_work, spec):
    err = _refused(["--group", spec, "--out", "unused-out"], capsys)
    assert f"--group {spec!r}" in err and "in float32" in err


def _constant_cases(tmp_path) -> dict[str, str]:
    rng = np.random.default_rng(1)
    one = rng.normal(size=(8, 8)).astype(np.float32)
    cases = {
        "zero images": np.zeros((60, 8, 8), np.float32),
        "constant tabular": np.full((60, 2), 3.0),
        "one image repeated": np.broadcast_to(one, (60, 8, 8)).copy(),
        "constant integers": np.ones((60, 8, 8), np.int64),
    }
    paths = {}
    for name, x in cases.items():
        path = str(tmp_path / f"{name.replace(' ', '_')}.npz")
        np.savez(path, x=x, y=np.arange(60) % 2)
        paths[name] = path
    return paths


@pytest.mark.parametrize(
    "case", ["zero images", "constant tabular", "one image repeated", "constant integers"]
)
def test_constant_inputs_are_refused_before_the_run(tmp_path, capsys, monkeypatch, case):
    import jaxsym.audit.pipeline as pipeline

    def tripwire(*args, **kwargs):
        raise AssertionError("the pipeline ran on constant inputs")

    monkeypatch.setattr(pipeline, "run_audit", tripwire)
    path = _constant_cases(tmp_path)[case]
    x = np.load(path)["x"]
    assert np.unique(x.reshape(len(x), -1), axis=0).shape[0] == 1  # one distinct example
    group = "c4" if x.ndim == 2 else "d4-image"
    err = _refused(["--data", path, "--group", group, "--out", tmp_path / "out"], capsys)
    assert "inputs x are constant" in err and "no symmetry can be measured" in err
    assert not (tmp_path / "out").exists()


def test_two_distinct_examples_are_enough_to_pass_the_constant_check(tmp_path):
    x = np.zeros((60, 2), np.float32)
    x[7] = 1.0
    path = str(tmp_path / "almost.npz")
    np.savez(path, x=x, y=np.arange(60.0))
    data = inputs.load_dataset(path, inputs.parse_group("c4"), task="regression")
    assert data.x.shape[1:] == (2,)


@pytest.mark.parametrize("seed", ["٣", "+5", " 5", "5_0", "5 ", "１"])
def test_both_command_lines_parse_seeds_with_one_rule(capsys, no_work, seed):
    """``jaxsym audit`` and ``jaxsym demo`` refuse the same seeds with the same words."""
    import jaxsym.__main__ as entry

    assert int(seed) >= 0  # Python's int() would take every one of them
    with pytest.raises(SystemExit) as audit:
        cli.main(["--seed", seed, "--out", "unused"])
    audit_err = capsys.readouterr().err.splitlines()[-1]
    with pytest.raises(SystemExit) as demo:
        entry.main(["demo", "--seed", seed])
    demo_err = capsys.readouterr().err.splitlines()[-1]
    assert audit.value.code == demo.value.code == 2
    assert audit_err.split("error: ", 1)[1] == demo_err.split("error: ", 1)[1]
    assert repr(seed) in audit_err and "ASCII digits" in audit_err


# ----------------------------------------------------------------------------- Ctrl-C


def _interrupt(args, delay: float, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    process = subprocess.Popen(
        [sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


def _check_clean_interrupt(result, folder) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 130, result.stderr
    assert len(lines) == 1 and lines[0].endswith("interrupted; nothing written."), lines
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(folder)) == ["ok.npz", "thesis.tex"]  # no output, no temp dirs
    assert (folder / "thesis.tex").read_text() == THESIS


@pytest.mark.extended
@pytest.mark.slow
@pytest.mark.parametrize(
    "delay",
    [
        0.4,
        2.0,
        pytest.param(4.5, marks=pytest.mark.slow),
        pytest.param(9.0, marks=pytest.mark.slow),
    ],
)
def test_ctrl_c_anywhere_exits_130_with_one_line(tmp_path, delay):
    (tmp_path / "thesis.tex").write_text(THESIS)
    _good(tmp_path / "ok.npz")
    args = ["-m", "jaxsym", "audit", "--data", "ok.npz", "--group", "c4", "--out", "out"]
    result = _interrupt([*args, "--quick", "--quiet"], delay, tmp_path)
    _check_clean_interrupt(result, tmp_path)


_WRITER = """
import os, signal, sys, time
from jaxsym.audit import cli, output
signal.signal(signal.SIGINT, cli._interrupt_handler("jaxsym audit"))

def slow(directory):
    with open(os.path.join(directory, "report.json"), "w") as handle:
        handle.write("half")
    print("writing", flush=True)
    time.sleep(30)
    return ["report.json"]

output.write_atomically(sys.argv[1], slow, force=True)
"""


@pytest.mark.slow
def test_ctrl_c_while_writing_leaves_the_old_output_and_no_temporary_files(tmp_path):
    out = tmp_path / "out"
    output.write_atomically(str(out), _writer("old"), force=False)
    env = {**os.environ, "PYTHONPATH": ROOT}
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout.readline().strip() == b"writing"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert err.decode().strip() == "jaxsym audit: interrupted; nothing written."
    assert os.listdir(tmp_path) == ["out"]
    assert (out / "report.json").read_text() == "old"


def test_launched_as_program(monkeypatch):
    from jaxsym._src import interrupt as _interrupt

    cases = [
        (["python", "-m", "jaxsym", "audit"], "-m", True),
        (["python", "-mjaxsym"], "-m", True),
        (["python", "-m", "pytest", "tests"], "-m", False),
        (["python", "-c", "import jaxsym"], "-c", False),
        (["/venv/bin/python", "/venv/bin/jaxsym", "audit"], "/venv/bin/jaxsym", True),
        (["python", "script.py"], "script.py", False),
    ]
    for orig, argv0, expected in cases:
        monkeypatch.setattr(sys, "orig_argv", orig)
        monkeypatch.setattr(sys, "argv", [argv0])
        assert _interrupt.launched_as_program() is expected, orig


# ----------------------------------------------------------------------------- groups


def test_cayley_table_refuses_huge_groups_with_their_size():
    from jaxsym import groups

    with pytest.raises(ValueError, match="100000 elements"):
        groups.cayley_table(groups.cyclic_rotations(100000))


def test_cayley_table_in_several_blocks_matches_modular_addition():
    from jaxsym import groups

    n = 128  # 128² products: more than one block of the nearest-element search
    table = groups.cayley_table(groups.cyclic_rotations(n))
    np.testing.assert_array_equal(table, (np.arange(n)[:, None] + np.arange(n)[None]) % n)


def test_a_failure_inside_the_run_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import jaxsym.audit.pipeline as pipeline

    def crash(*args, **kwargs):
        raise RuntimeError("RESOURCE_EXHAUSTED: out of memory allocating 4 TB\nmore detail")

    monkeypatch.setattr(pipeline, "run_audit", crash)
    path = _good(tmp_path / "ok.npz")
    err = _refused(["--data", path, "--group", "c4", "--out", tmp_path / "out"], capsys, status=1)
    assert "RESOURCE_EXHAUSTED" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["ok.npz"]
