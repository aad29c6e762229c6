"""The notebooks in ``notebooks/``: committed without outputs, and they run.

* Fast: every committed notebook is a valid nbformat-4 notebook with no outputs
  and no execution counts (outputs are stripped in the repository; the rendered
  versions are built, not committed).
* Slow and ``extended`` (CI: ``pytest -m extended``; a plain ``pytest`` leaves
  them out): every notebook is executed top to bottom by nbmake (``pytest
  --nbmake``) in a subprocess, with a per-cell timeout; a failing cell fails
  the test and its traceback is shown.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

#: Per-cell limit for nbmake and the limit for one notebook's whole run. Each
#: notebook is sized to run in about a minute on 2 idle CPU cores (two on busy ones).
CELL_TIMEOUT_S = 300
NOTEBOOK_TIMEOUT_S = 900


def _ids(paths):
    return [path.name for path in paths]


def test_notebooks_exist():
    names = {path.name for path in NOTEBOOKS}
    assert {
        "01_groups_and_defects.ipynb",
        "02_quotients_and_bounds.ipynb",
        "03_tradeoff.ipynb",
        "04_images.ipynb",
        "05_mnist_rotation.ipynb",
    } <= names, names


def title_problems(notebook: dict) -> list[str]:
    """What keeps a notebook from opening with a title and what it shows."""
    cells = notebook.get("cells", [])
    if not cells or cells[0].get("cell_type") != "markdown":
        return ["the first cell is not a markdown cell"]
    source = cells[0].get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    lines = [line for line in text.splitlines() if line.strip()]
    problems = []
    if not lines or not lines[0].startswith("# "):
        problems.append("the first cell does not start with a '# ' title")
    if len(lines) < 2:
        problems.append("the title is not followed by what the notebook shows")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_opens_with_title(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    problems = title_problems(notebook)
    assert not problems, f"{path.name}: " + "; ".join(problems)


def test_title_check_can_fail():
    code_first = {"cells": [{"cell_type": "code", "source": "# 1. Title"}]}
    bare = {"cells": [{"cell_type": "markdown", "source": "# 1. Title\n"}]}
    no_title = {"cells": [{"cell_type": "markdown", "source": ["Some text\n", "more"]}]}
    good = {"cells": [{"cell_type": "markdown", "source": ["# 1. Title\n", "\n", "Shows X."]}]}
    assert title_problems(code_first) == ["the first cell is not a markdown cell"]
    assert title_problems(bare) == ["the title is not followed by what the notebook shows"]
    assert title_problems(no_title) == ["the first cell does not start with a '# ' title"]
    assert title_problems(good) == []


def stripped_problems(notebook: dict) -> list[str]:
    """What keeps a notebook (parsed JSON) from being output-free: one line per problem."""
    problems = []
    if notebook.get("nbformat") != 4:
        problems.append(f"nbformat is {notebook.get('nbformat')!r}, expected 4")
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            if cell.get("outputs") or cell.get("attachments"):
                problems.append(f"cell {index}: a {cell.get('cell_type')} cell with outputs")
            continue
        if cell.get("outputs"):
            problems.append(f"cell {index}: {len(cell['outputs'])} outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {index}: execution_count {cell['execution_count']}")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_notebook_has_no_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook.get("cells"), f"{path.name} has no cells"
    problems = stripped_problems(notebook)
    assert not problems, f"{path.name} is not stripped (clear its outputs):\n" + "\n".join(problems)


def test_stripped_check_can_fail():
    """The check above flags outputs and execution counts."""
    cell = {"cell_type": "code", "outputs": [], "execution_count": None}
    clean = {"nbformat": 4, "cells": [cell]}
    assert stripped_problems(clean) == []
    dirty = {
        "nbformat": 4,
        "cells": [
            {"cell_type": "markdown", "source": "x"},
            {"cell_type": "code", "outputs": [{"output_type": "stream"}], "execution_count": 3},
        ],
    }
    assert stripped_problems(dirty) == ["cell 1: 1 outputs", "cell 1: execution_count 3"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_valid_nbformat(path):
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path):
    pytest.importorskip("nbmake", reason="the test extra installs nbmake")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("MPLBACKEND", None)  # the kernel's own inline backend draws the figures
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--nbmake",
        f"--nbmake-timeout={CELL_TIMEOUT_S}",
        "-p",
        "no:cacheprovider",
        "-q",
        str(path),
    ]
    result = subprocess.run(
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=NOTEBOOK_TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{path.name} failed under nbmake (exit {result.returncode}):\n"
        f"{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    )
