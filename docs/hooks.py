"""MkDocs hook: render Sphinx cross-reference roles of jaxsym's docstrings.

Docstrings cite other objects as ``:func:`name```, ``:class:`name``` and so
on; Markdown renders the backticks as code and leaves the role as literal text
(``:func:covering_numbers``). This hook drops the role, keeping the code span;
a leading ``~`` (Sphinx: show the last component only) shortens the name.
"""

from __future__ import annotations

import re

_ROLE = re.compile(
    r":(?:py:)?(?:func|class|meth|attr|data|mod|obj|exc|const):<code>(~?)([^<]*)</code>"
)


def _code(match: re.Match) -> str:
    name = match.group(2)
    if match.group(1):
        name = name.rsplit(".", 1)[-1]
    return f"<code>{name}</code>"


def on_page_content(html: str, **kwargs) -> str:
    return _ROLE.sub(_code, html)
