"""The documentation in the repository: citations resolve, no timings, snippets run.

* Every ``§N`` that a docstring or comment in ``jaxsym/`` cites must be a section
  of ``docs/theory.md`` (a heading ``## N. Title {#sN}``).
* No docstring quotes a timing (a number with a time unit next to words such
  as "takes", "faster", "slower"); performance claims live in ``benchmarks/``.
* Every fenced ``python`` block in ``README.md`` and ``docs/**/*.md`` runs as
  written, in a fresh interpreter. A block preceded by the line
  ``<!-- skip -->`` is not run; one preceded by ``<!-- continue -->`` runs
  after the block before it in the same file (for step-by-step tours), in
  the same interpreter: one process per chain. These runs are ``extended``
  (CI: ``pytest -m extended``; a plain ``pytest`` leaves them out).
"""

from __future__ import annotations

import ast
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxsym"
THEORY = ROOT / "docs" / "theory.md"

SNIPPET_TIMEOUT_S = 300

# ----------------------------------------------------------------------------- docstring sections

_SECTIONS = ("Args:", "Returns:", "Yields:", "Raises:", "Attributes:")


def section_problems(doc: str) -> list[str]:
    """A Google docstring's section headers that repeat, or whose first line is not indented."""
    lines = doc.splitlines()
    heads = [line for line in lines if line in _SECTIONS]  # cleaned: headers at column 0
    problems = [
        f"{head} appears {heads.count(head)} times" for head in set(heads) if heads.count(head) > 1
    ]
    for line, after in itertools.pairwise(lines):
        if line in _SECTIONS and after.strip() and not after.startswith((" ", "\t")):
            problems.append(f"{line} is followed by the unindented {after.strip()[:40]!r}")
    return sorted(problems)


def test_section_problems_finds_the_known_shapes():
    merged = "Summary.\n\nText.\n\nAttributes:\n    a: one.\n    b: two.\n"
    twice = "Summary.\n\nAttributes:\nText.\n\nAttributes:\n    a: one.\n"
    assert section_problems(merged) == []
    assert section_problems(twice) == [
        "Attributes: appears 2 times",
        "Attributes: is followed by the unindented 'Text.'",
    ]


def test_every_docstring_has_each_section_once():
    """E.g. a class docstring with two ``Attributes:`` sections, one of them prose."""
    found = []
    for path in package_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                continue
            doc = ast.get_docstring(node)
            for problem in section_problems(doc or ""):
                name = getattr(node, "name", "<module>")
                found.append(f"{path.relative_to(ROOT)}: {name}: {problem}")
    assert not found, "\n".join(found)


# ----------------------------------------------------------------------------- §N citations

_HEADING = re.compile(r"^##\s+(\d+)\.\s+.*\{#s(\d+)\}\s*$", re.MULTILINE)
_CITATION = re.compile(r"§\s*(\d+)(?:\s*[–-]\s*(\d+))?")


def theory_sections(text: str) -> set[int]:
    """Section numbers of ``docs/theory.md``: headings ``## N. Title {#sN}``."""
    sections = set()
    for number, anchor in _HEADING.findall(text):
        assert number == anchor, f"theory.md heading §{number} has anchor #s{anchor}"
        sections.add(int(number))
    return sections


def cited_sections(text: str) -> set[int]:
    """Every section cited as ``§N`` or as a range ``§N–M``."""
    cited = set()
    for start, end in _CITATION.findall(text):
        first = int(start)
        last = int(end) if end else first
        cited.update(range(first, last + 1))
    return cited


def package_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_theory_has_sections_one_to_nine():
    sections = theory_sections(THEORY.read_text(encoding="utf-8"))
    assert set(range(1, 12)) <= sections  # §9 decision, §10 Lie derivatives, §11 images


def test_citation_parser_finds_ranges_and_lists():
    assert cited_sections("(theory.md §2–3) and §5, §8; docs/theory.md §4") == {2, 3, 4, 5, 8}
    assert cited_sections("no citation here") == set()


def test_every_cited_section_exists():
    sections = theory_sections(THEORY.read_text(encoding="utf-8"))
    missing = {}
    for path in package_files():
        for number in cited_sections(path.read_text(encoding="utf-8")):
            if number not in sections:
                missing.setdefault(str(path.relative_to(ROOT)), []).append(number)
    assert not missing, f"citations of sections that docs/theory.md lacks: {missing}"


def test_some_citations_exist():
    # Guards the test above against a parser that finds nothing.
    total = sum(len(cited_sections(p.read_text(encoding="utf-8"))) for p in package_files())
    assert total >= 8


def test_citations_name_the_repository_path():
    bare = re.compile(r"(?<!docs/)theory\.md")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in package_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if bare.search(line)
    ]
    assert not offenders, f"cite docs/theory.md, not theory.md: {offenders[:10]}"


def test_display_math_is_a_block():
    # pymdownx.arithmatex only typesets a $$ … $$ block that stands alone: a blank
    # line before and after (inside a list item, indented by four spaces).
    problems = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        lines = path.read_text(encoding="utf-8").splitlines()
        inside = False
        for index, line in enumerate(lines):
            if line.strip() != "$$":
                continue
            before = lines[index - 1] if index else ""
            after = lines[index + 1] if index + 1 < len(lines) else ""
            if not inside and before.strip():
                problems.append(f"{path.relative_to(ROOT)}:{index + 1}: no blank line before $$")
            if inside and after.strip():
                problems.append(f"{path.relative_to(ROOT)}:{index + 1}: no blank line after $$")
            indent = len(line) - len(line.lstrip())
            if indent not in (0, 4):
                problems.append(f"{path.relative_to(ROOT)}:{index + 1}: indent $$ by 0 or 4")
            inside = not inside
    assert not problems, problems


# ----------------------------------------------------------------------------- timings

_TIMING = re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|seconds|minutes)\b")
_TIMING_WORDS = re.compile(
    r"\b(?:takes?|took|faster|slower|speed(?:-?up)?|runs? in|ran in|wall|timing|latency)\b",
    re.IGNORECASE,
)
_SPEED_RATIO = re.compile(
    r"\d+(?:\.\d+)?\s?(?:×|x|%)\s*(?:faster|slower)\b|"
    r"\b(?:faster|slower)\s+(?:by\s+)?\d+(?:\.\d+)?\s?(?:×|x|%)",
    re.IGNORECASE,
)


def docstrings(path: Path) -> list[tuple[int, str]]:
    """``(line, text)`` of the module, class and function docstrings of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            text = ast.get_docstring(node, clean=False)
            if text:
                line = node.body[0].lineno if node.body else 0
                found.append((line, text))
    return found


def quoted_timings(text: str, window: int = 60) -> list[str]:
    """Numbers with a time unit that sit within ``window`` characters of a timing word."""
    hits = []
    for match in _TIMING.finditer(text):
        context = text[max(0, match.start() - window) : match.end() + window]
        if _TIMING_WORDS.search(context):
            hits.append(match.group(0))
    return hits


def test_timing_detector():
    assert quoted_timings("the D4 CNN takes 123 ms against 64 ms") == ["123 ms", "64 ms"]
    assert quoted_timings("runs in 9.1s on two cores") == ["9.1s"]
    assert quoted_timings("rotations by 30 degrees; a σ of 0.3 s.t. the noise") == []
    assert quoted_timings("shape (n, 2) with 5 ms") == []  # no timing word nearby
    assert _SPEED_RATIO.search("unrolled chunks ran ~20% slower")
    assert _SPEED_RATIO.search("a 21x faster backward")
    assert not _SPEED_RATIO.search("faster on XLA:CPU")


def test_no_docstring_quotes_a_timing():
    offenders = []
    for path in package_files():
        for line, text in docstrings(path):
            for hit in quoted_timings(text):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {hit!r}")
    assert not offenders, f"docstrings quote timings (move them to benchmarks/): {offenders}"


def test_no_public_docstring_quotes_a_speed_ratio():
    # Private modules (``_orbits.py``) explain design choices with the A/B that
    # decided them; public docstrings make no performance claims.
    offenders = []
    for path in package_files():
        if path.name.startswith("_") and path.name != "__init__.py":
            continue
        for line, text in docstrings(path):
            for match in _SPEED_RATIO.finditer(text):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)!r}")
    assert not offenders, f"public docstrings quote speed ratios: {offenders}"


# ----------------------------------------------------------------------------- snippets

_FENCE = re.compile(r"^```(\S*)\s*$")


def fenced_python(path: Path) -> list[tuple[int, str, str]]:
    """``(line, code, marker)`` of every fenced ``python`` block of a Markdown file.

    ``marker`` is ``"skip"``, ``"continue"`` or ``""``, from an HTML comment on
    the last non-blank line before the fence.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index].strip())
        if not opening:
            index += 1
            continue
        language = opening.group(1).lower()
        start = index
        index += 1
        body = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1  # the closing fence
        if language not in ("python", "py"):
            continue
        previous = next((ln.strip() for ln in reversed(lines[:start]) if ln.strip()), "")
        marker = ""
        if previous == "<!-- skip -->":
            marker = "skip"
        elif previous == "<!-- continue -->":
            marker = "continue"
        indent = min((len(b) - len(b.lstrip()) for b in body if b.strip()), default=0)
        blocks.append((start + 1, "\n".join(b[indent:] for b in body), marker))
    return blocks


def snippet_cases():
    """One case per chain: a block and the ``<!-- continue -->`` blocks after it, run once."""
    files = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    chains = []
    for path in files:
        if not path.exists():
            continue
        page = []
        for line, code, marker in fenced_python(path):
            block = (f"{path.relative_to(ROOT)}:{line}", code)
            if marker == "continue" and page:
                page[-1].append(block)
            elif marker != "skip":
                page.append([block])
        chains.extend(page)
    return [pytest.param(chain, id=chain[0][0]) for chain in chains]


def test_snippet_extraction(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\na = 1\n```\n<!-- skip -->\n```python\nraise SystemExit(1)\n```\n"
        "<!-- continue -->\n\n```python\nprint(a)\n```\n```bash\nls\n```\n",
        encoding="utf-8",
    )
    blocks = fenced_python(page)
    assert [(code, marker) for _, code, marker in blocks] == [
        ("a = 1", ""),
        ("raise SystemExit(1)", "skip"),
        ("print(a)", "continue"),
    ]


#: Runs ``(name, code)`` blocks in order in one namespace; a traceback names the block.
_DRIVER = """
import json, sys
namespace = {"__name__": "__main__"}
for name, code in json.loads(sys.stdin.read()):
    exec(compile(code, name, "exec"), namespace)
"""


def run_snippet(blocks: list[tuple[str, str]], cwd: Path) -> subprocess.CompletedProcess:
    """Run the blocks of one chain in a fresh interpreter (one process for the chain)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps(blocks),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT_S,
    )


def test_snippet_runner_reports_failures(tmp_path):
    ok = run_snippet([("a.md:1", "x = 1 + 1"), ("a.md:5", "assert x == 2")], tmp_path)
    assert ok.returncode == 0, ok.stderr
    failed = run_snippet([("a.md:1", "x = 1"), ("a.md:9", "\nprint(undefined_name)")], tmp_path)
    assert failed.returncode != 0 and "NameError" in failed.stderr
    assert 'File "a.md:9", line 2' in failed.stderr  # the failing block, by its page and line


def test_chains_run_once():
    cases = snippet_cases()
    names = [name for case in cases for name, _ in case.values[0]]
    assert len(names) == len(set(names))  # every block in exactly one case
    assert any(len(case.values[0]) > 1 for case in cases)  # continued blocks share a case


@pytest.mark.slow
@pytest.mark.extended
@pytest.mark.parametrize("chain", snippet_cases())
def test_markdown_snippet_runs(chain, tmp_path):
    result = run_snippet(chain, tmp_path)
    names = ", ".join(name for name, _ in chain)
    assert result.returncode == 0, (
        f"snippet failed (exit {result.returncode}) in {names}:\n--- stderr ---\n"
        f"{result.stderr[-3000:]}"
    )
