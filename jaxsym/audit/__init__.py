"""``jaxsym audit``: point jaxsym at a data set and learn which symmetry to build in.

The command (``python -m jaxsym audit``, or the ``jaxsym`` console script)
estimates the data's per-element equivariance profile and ε-stabilizers, the
orbit covering numbers of nested candidate symmetry sets, the (estimated)
certified bound curve, the predicted best symmetry level, and trains a small
model at a few levels; it prints tables and a recommendation and writes
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
