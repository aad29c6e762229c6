"""``python -m jaxsym demo``: flags are validated by argparse before anything is computed."""

from __future__ import annotations

import pytest

import jaxsym.__main__ as demo


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--order", "0"], "--order"),
        (["--order", "abc"], "--order"),
        (["--order", "2.5"], "--order"),
        (["--batch", "-3"], "--batch"),
        (["--batch", "0"], "--batch"),
        (["--eps", "-1"], "--eps"),
        (["--eps", "nan"], "--eps"),
        (["--eps", "inf"], "--eps"),
        (["--seed", "-1"], "--seed"),
        (["--seed", str(2**32)], "--seed"),
        (["--seed", str(2**70)], "--seed"),
    ],
)
def test_bad_flag_values_exit_2_before_computing(argv, flag, capsys, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise RuntimeError("computed before validating the flags")

    monkeypatch.setattr(demo.groups, "dihedral", must_not_run)
    with pytest.raises(SystemExit) as info:
        demo.main(["demo", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {flag}" in err
    assert repr(argv[1]) in err  # the message quotes the bad value
    assert "usage: jaxsym" in err


@pytest.mark.slow
def test_a_good_call_prints_the_table(capsys):
    demo.main(["demo", "--order", "2", "--batch", "4", "--eps", "0.1"])
    out = capsys.readouterr().out
    assert "under D2, 4 random point sets" in out
    rows = [line for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [int(line.split("|")[0]) for line in rows] == [0, 1, 2, 3]
    q_column = [float(line.split("|")[2]) for line in rows]
    assert max(q_column) < 1e-4  # Q_G f is invariant
    assert "λ(Stab_0.1)" in out
