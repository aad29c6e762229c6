"""Every measured number quoted in README.md and docs/ appears in a results file.

The prose of the documentation (code blocks, snippet includes and link targets
left out; inline math kept) is scanned for numbers written with a decimal point
or an exponent (``0.149``, ``-0.018``, ``1.4e-04``). Each must be the rounding,
to the digits written, of a number in one of the results files the benchmarks
write (``benchmarks/results/``), or one of the few constants of a formula that
:data:`DERIVED` recomputes here. Integers are not checked (counts, sizes and
section numbers cannot be told apart from prose).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

#: Numbers that are a formula's value, not a measurement: each is recomputed here.
DERIVED = {
    "4.45": 2 + math.sqrt(2 * 3),  # z + (z(z+1))^{1/2} at z = 2 (theory §6, data-symmetry guide)
    "4.84": 2.2**2,  # the loss range B = 2.2² of the index page's clipped squared loss
    "2.6": 52 * 0.05,  # expected false calls among 52 uncorrected 95% intervals (benchmarks)
}

_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INCLUDE = re.compile(r"^--8<--.*$", re.M)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_INLINE_CODE = re.compile(r"`[^`\n]+`")  # names, commands, commit hashes
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_ARXIV = re.compile(r"arXiv:\s*\d{4}\.\d{4,5}")
_NUMBER = re.compile(
    r"(?<![\w.\-/#])[-−+]?(?:\d+\.\d+(?:e[-+]?\d+)?|\d+e[-+]?\d+)(?![\w.])", re.IGNORECASE
)


def prose(text: str) -> str:
    """The text a reader reads as prose: no code blocks, includes, comments or URLs."""
    for pattern in (_FENCE, _INCLUDE, _COMMENT, _INLINE_CODE, _LINK_TARGET, _ARXIV):
        text = pattern.sub(" ", text)
    return text


def quoted_numbers(text: str) -> list[str]:
    """The decimal numbers quoted in ``text``'s prose, as written."""
    return [m.group().replace("−", "-") for m in _NUMBER.finditer(prose(text))]


def _floats(text: str) -> set[float]:
    found = set()
    for match in re.finditer(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", text):
        try:
            found.add(float(match.group()))
        except ValueError:
            continue
    return found


def result_values(directory: Path = RESULTS) -> set[float]:
    """Every number in the results files (text, Markdown and JSON, read as text)."""
    values: set[float] = set()
    for path in sorted(directory.iterdir()):
        if path.suffix in {".txt", ".md", ".json"}:
            text = path.read_text(encoding="utf-8")
            if path.suffix == ".json":
                json.loads(text)  # a results file that does not parse is an error
            values |= _floats(text)
    return values


def is_from_results(number: str, values: set[float]) -> bool:
    """Whether ``number``, as written, is a rounding of one of ``values`` (or of its magnitude)."""
    quoted = float(number)
    if "e" in number.lower():
        return any(v != 0 and abs(abs(v) / abs(quoted) - 1) <= 0.005 for v in values if quoted)
    digits = len(number.split(".")[1])
    target = round(abs(quoted), digits)
    return any(round(abs(v), digits) == target for v in values)


def documents() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_derived_constants_are_their_formulas():
    for written, value in DERIVED.items():
        digits = len(written.split(".")[1])
        assert round(value, digits) == float(written), (written, value)


def test_the_scanner_finds_an_invented_number_and_passes_a_real_one():
    values = result_values()
    text = "The ±30° model's error is 0.4137 (`lr=0.5`).\n```\nx = 0.9999\n```\n"
    assert quoted_numbers(text) == ["0.4137"]  # code is not prose
    assert not is_from_results("0.4137", {0.41, 0.4136, 0.414})
    assert is_from_results("0.414", {0.41372})
    assert is_from_results("-0.018", {0.0181})
    assert is_from_results("1.4e-04", {0.000140})
    assert not is_from_results("1.4e-04", {0.000150})
    assert values, "no numbers found in benchmarks/results"


@pytest.mark.parametrize("path", documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_quoted_number_comes_from_a_results_file(path):
    values = result_values()
    missing = [
        n
        for n in quoted_numbers(path.read_text(encoding="utf-8"))
        if n not in DERIVED and not is_from_results(n, values)
    ]
    assert not missing, (
        f"{path.relative_to(ROOT)} quotes numbers found in no file of benchmarks/results "
        f"(rerun the benchmark that produces them, or remove them): {missing}"
    )
