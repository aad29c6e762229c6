"""Flax adapters (linen, nnx): symmetrize or dial a model without rewriting it (docs/theory.md §3).

``Symmetrized(model, group)`` is ``Q_G model`` and ``Dialed(model, group, t)``
is ``Q_G model + t (model − Q_G model)``. Both take a batch ``(B, *input)`` and
return ``(B, *output)``.

* :mod:`jaxsym.flax.linen`: ``Symmetrized`` / ``Dialed`` as linen modules, the
  wrapped module a submodule (its parameters live under ``params/model``).
* :mod:`jaxsym.flax.nnx`: ``Symmetrized`` / ``Dialed`` as nnx modules.

Both are importable modules (``import jaxsym.flax.linen``) and attributes of
this package (``jaxsym.flax.linen.Symmetrized``).

What never trains: the group's elements (constants of the computation, read
with gradients stopped; in nnx a static attribute, outside ``nnx.state``) and a
fixed ``t`` (a Python number, neither a parameter nor a variable). A trainable
``t`` (``trainable_t=True``, ``params/t`` in linen, an ``nnx.Param`` in nnx) is
stored as it is and used as ``clip(t, 0, 1)`` with a projected gradient: only a
gradient that points out of ``[0, 1]`` from the boundary or beyond is dropped,
so a ``t`` pushed out of ``[0, 1]`` comes back as soon as the loss prefers a
level inside.

What should train ``t``: not the training loss. Jointly with the weights, the
training loss prefers whatever level fits the training sample best (with an
expressive network, the least constrained one), so a ``t`` learned on it is an
overfitted level. Train ``t`` on a validation split while the weights train on
the training split, or fix it at :func:`jaxsym.choose_symmetry`'s ``t*``
(docs/guides/training.md, "A trainable t").

The model is called on the orbit inside jaxsym's chunked loop over the group
(a :func:`jax.lax.scan`), so it is called as a pure function of its variables
(``apply`` for linen, ``split``/``merge`` for nnx): wrapped models should not
mutate state while predicting (no batch-norm statistics in training mode,
no dropout RNG streams). This package is imported only on request;
``import jaxsym`` does not need flax.

Reference: Petrache & Trivedi, NeurIPS 2023, arXiv:2305.17592.
"""

from __future__ import annotations

try:
    import flax.linen as _flax_linen  # noqa: F401
    from flax import nnx as _flax_nnx  # noqa: F401
except Exception as error:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "jaxsym.flax needs flax (linen and nnx); install it with `pip install flax`. "
        f"Importing flax failed with: {error!r}"
    ) from error

from jaxsym.flax import linen, nnx

__all__ = ["linen", "nnx"]
