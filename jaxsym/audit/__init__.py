"""``jaxsym audit``: point jaxsym at a data set and learn which symmetry to build in.

The command (``python -m jaxsym audit``, or the ``jaxsym`` console script)
estimates the data's per-element equivariance profile and ε-stabilizers,
screens (set, level) options with :func:`jaxsym.choose_symmetry`, trains the
screened options, certifies each on held-out data with
:func:`jaxsym.held_out_bound` and recommends the best-certified one
(docs/theory.md §9); the covering-number theory bound (§4) is reported and
decides nothing. It prints tables and the recommendation and writes
``report.json`` (schema in :mod:`jaxsym.audit.report`) and PNG plots.

Modules: :mod:`~jaxsym.audit.cli` (the command line), :mod:`~jaxsym.audit.inputs`
(groups and data, validated), :mod:`~jaxsym.audit.analysis` (every numeric call
into jaxsym), :mod:`~jaxsym.audit.pipeline` (the steps and the choice),
:mod:`~jaxsym.audit.sweep` (the training sweep), :mod:`~jaxsym.audit.report`
(tables, paragraph, JSON), :mod:`~jaxsym.audit.output` (the output directory,
checked first and replaced atomically), :mod:`~jaxsym.audit.plots` (PNGs).

Needs the ``audit`` extra (scikit-learn, matplotlib, tqdm) and optax.
Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from jaxsym.audit.cli import main
from jaxsym.audit.report import SCHEMA_VERSION

__all__ = ["SCHEMA_VERSION", "main"]
