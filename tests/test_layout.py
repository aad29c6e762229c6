"""The package layout: no private name of one module is used by another.

The convention (optax's ``_src`` style): the private modules live in one private
package, ``jaxsym._src`` (``jaxsym/_src/orbits.py``, …), which may be imported
anywhere; the functions inside them have public names. A private *name*
(``_helper``, or a private module outside ``jaxsym._src``) is used only in the
module that defines it: a helper that another module needs is public in its
module, or lives in ``jaxsym._src``. Tests may reach into the module they test,
so only ``jaxsym/`` and ``benchmarks/`` are scanned, including Python code held in string literals
(the benchmarks run their cases as ``python -c`` children).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SCANNED = ("jaxsym", "benchmarks")
#: The one private package: its modules hold the internals that several modules share.
PRIVATE_PACKAGE = "jaxsym._src"


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_modules() -> set[str]:
    return {_module_name(path) for path in (ROOT / "jaxsym").rglob("*.py")}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str | None, level: int, here: str, is_package: bool) -> str:
    """The absolute module of ``from <level dots><module> import …`` written in ``here``."""
    if level == 0:
        return module or ""
    base = here.split(".") if is_package else here.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` for a chain of attributes on a name, else ``None``."""
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(names)]


def _violations(tree: ast.AST, here: str, is_package: bool, modules: set[str]) -> list[str]:
    """``"line: module._name"`` for each private name of another module used in ``tree``."""
    bound: dict[str, str] = {}  # local name -> the jaxsym module it is bound to
    found = []

    def private_path(module: str) -> bool:
        inside = module == PRIVATE_PACKAGE or module.startswith(PRIVATE_PACKAGE + ".")
        return module != here and not inside and any(_private(p) for p in module.split("."))

    def foreign(owner: str, name: str) -> bool:
        # jaxsym._src, the one private package, may be imported anywhere, by module name
        return owner != here and f"{owner}.{name}" != PRIVATE_PACKAGE

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "jaxsym" and private_path(alias.name):
                    found.append(f"{node.lineno}: {alias.name}")
                if alias.name.split(".")[0] == "jaxsym":
                    if alias.asname:
                        bound[alias.asname] = alias.name
                    else:
                        bound["jaxsym"] = "jaxsym"
        elif isinstance(node, ast.ImportFrom):
            owner = _absolute(node.module, node.level, here, is_package)
            if owner.split(".")[0] != "jaxsym":
                continue
            if private_path(owner):
                found.append(f"{node.lineno}: {owner}")
                continue
            for alias in node.names:
                if f"{owner}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{owner}.{alias.name}"
                elif _private(alias.name) and foreign(owner, alias.name):
                    found.append(f"{node.lineno}: {owner}.{alias.name}")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or isinstance(
            getattr(node, "parent", None), ast.Attribute
        ):
            continue
        chain = _dotted(node)
        if chain is None or chain[0] not in bound:
            continue
        owner = bound[chain[0]]
        for name in chain[1:]:
            if f"{owner}.{name}" in modules:
                owner = f"{owner}.{name}"
                continue
            if _private(name) and foreign(owner, name):
                found.append(f"{node.lineno}: {owner}.{name}")
            break
    return sorted(set(found))


def _parse(text: str) -> ast.AST:
    """The syntax tree of ``text``, each node knowing its ``parent``."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    return tree


def _embedded_code(tree: ast.AST):
    """String literals that are Python code importing jaxsym (``python -c`` children)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if "import" in text and "jaxsym" in text and "\n" in text:
                try:
                    yield _parse(text)
                except SyntaxError:
                    continue


def _scan(path: pathlib.Path, modules: set[str]) -> list[str]:
    tree = _parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    is_package = path.name == "__init__.py"
    found = _violations(tree, here, is_package, modules)
    for code in _embedded_code(tree):
        found += [f"{entry} (in a string)" for entry in _violations(code, here, False, modules)]
    return [f"{path.relative_to(ROOT)}:{entry}" for entry in found]


def test_no_private_name_is_used_outside_its_module():
    modules = _package_modules()
    offenders = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            offenders += _scan(path, modules)
    assert not offenders, "private names used outside their module:\n" + "\n".join(offenders)


SAMPLES = {
    "from jaxsym.groups.images import _check_layout_shape": ["jaxsym.groups.images._check"],
    "from jaxsym.covering import covering_numbers, _flat_orbit": ["jaxsym.covering._flat_orbit"],
    "from . import _helper": ["jaxsym.groups._helper"],
    "from .images import _check_layout_shape": ["jaxsym.groups.images._check"],
    "import jaxsym.covering as cov\ncov._flat_orbit(g, x)": ["jaxsym.covering._flat_orbit"],
    "import jaxsym\njaxsym.datasets._rotate(x)": ["jaxsym.datasets._rotate"],
    "from jaxsym import groups\ngroups.images._looks_like(s)": ["jaxsym.groups.images._looks"],
    "from jaxsym._src import orbits\norbits._walk(j)": ["jaxsym._src.orbits._walk"],
    "from jaxsym.groups import _base": ["jaxsym.groups._base"],  # a private module outside _src
    "from jaxsym.groups._base import format_matrix": ["jaxsym.groups._base"],
    # allowed: the private package's modules by name, public names, dunders, namedtuple methods
    "from jaxsym._src import distances, orbits\ndistances.min_squares(a, b)": [],
    "from jaxsym._src.group_base import format_matrix": [],
    "import jaxsym\njaxsym.__version__\nt._replace(a=1)": [],
    "from jaxsym import bounds as _bounds\n_bounds.bound_tables(x)": [],
}


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_the_scan_finds_what_it_should(code):
    """The scan, on snippets written in ``jaxsym/groups/subsets.py``, with known answers."""
    found = _violations(_parse(code), "jaxsym.groups.subsets", False, _package_modules())
    expected = SAMPLES[code]
    assert len(found) == len(expected), found
    for entry, prefix in zip(found, expected, strict=True):
        assert entry.split(": ")[1].startswith(prefix)


def test_embedded_child_code_is_scanned():
    source = 'CHILD = r"""\nfrom jaxsym.covering import _flat_orbit\nprint(1)\n"""\n'
    codes = list(_embedded_code(_parse(source)))
    assert len(codes) == 1
    found = _violations(codes[0], "benchmarks.covering", False, _package_modules())
    assert found == ["2: jaxsym.covering._flat_orbit"]


def test_private_modules_live_in_the_one_private_package():
    """Every private module or package of jaxsym is ``jaxsym._src`` or inside it."""
    private = [
        _module_name(path)
        for path in (ROOT / "jaxsym").rglob("*.py")
        if any(_private(part) for part in _module_name(path).split("."))
    ]
    outside = [name for name in private if not name.startswith(PRIVATE_PACKAGE)]
    assert private and not outside, outside
