"""The ``>>>`` examples of the package's docstrings run and give what they print.

Every module's examples run here (``jaxsym.datasets``'s in test_datasets.py,
with the bundled MNIST fixture), and the most used public functions must have one.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import jaxsym

#: The public functions a user meets first: each shows itself in a short example.
MOST_USED = (
    "symmetrize",
    "dial",
    "defect_profile",
    "orbit_stats",
    "distance_to_equivariance",
    "assert_equivariant",
    "covering_numbers",
    "generalization_bound",
    "data_defect",
    "choose_symmetry",
    "held_out_bound",
    "bound_regularizer",
    "regularizer_report",
    "random_features_ridge",
)


def _modules() -> list[str]:
    names = [
        info.name
        for info in pkgutil.walk_packages(jaxsym.__path__, prefix="jaxsym.")
        if info.name not in {"jaxsym.datasets", "jaxsym.__main__"}
    ]
    return sorted(names)


@pytest.mark.parametrize("name", MOST_USED)
def test_the_most_used_functions_have_an_example(name):
    assert ">>>" in (getattr(jaxsym, name).__doc__ or ""), f"jaxsym.{name} has no >>> example"


@pytest.mark.slow
@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in {name}"
