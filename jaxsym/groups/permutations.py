"""Permutations of the leading set axis of one example ``(k, ...)``.

An element ``p`` acts by gathering, ``(p·x)_i = x_{p_i}``; composition is
``compose(a, b) = b[a]`` so that ``act(compose(a, b)) = act(a) ∘ act(b)``
(a left action, docs/theory.md §1).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxsym._src.group_base import Action, TransformationSet
from jaxsym._src.validation import check_key, is_concrete, positive_int

__all__ = ["MAX_EXHAUSTIVE_K", "PermutationAction", "permutations", "random_permutations"]

MAX_EXHAUSTIVE_K = 8


@dataclasses.dataclass(frozen=True)
class PermutationAction(Action):
    """Index arrays ``(k,)`` permuting the leading axis of one example."""

    k: int

    def __call__(self, element, x):
        return x[element]

    def inverse(self, element):
        return jnp.argsort(element).astype(element.dtype)

    def compose(self, a, b):
        return b[a]

    def check_example_shape(self, shape, name):
        if len(shape) < 1 or shape[0] != self.k:
            raise ValueError(
                f"{name}: permutations of {self.k} items act on examples whose leading "
                f"(set) axis has size {self.k}; got one example of shape {shape}."
            )

    def describe(self) -> str:
        return f"permutations of the leading set axis (k={self.k})"

    def format_element(self, element) -> str:
        return f"permutation {np.asarray(element).tolist()}"


def permutations(k: int) -> TransformationSet:
    """The symmetric group S_k: all ``k!`` permutations (identity first).

    Args:
        k: number of items, 1 to 8. For larger k use :func:`random_permutations`.
    """
    k = positive_int("k", k)
    if k > MAX_EXHAUSTIVE_K:
        raise ValueError(
            f"permutations(k={k}) would hold {math.factorial(k):,} elements; k must be at "
            f"most {MAX_EXHAUSTIVE_K}. Sample instead: random_permutations(k, num, key=key)."
        )
    elements = np.array(list(itertools.permutations(range(k))), dtype=np.int32)
    return TransformationSet(
        elements=jnp.asarray(elements), action=PermutationAction(k), name=f"S{k}"
    )


@functools.partial(jax.jit, static_argnums=1)
def _draw(keys: jax.Array, k: int) -> jax.Array:
    """One uniform permutation of ``k`` items per key."""
    return jax.vmap(lambda one: jax.random.permutation(one, k))(keys)


def random_permutations(k: int, num: int, *, key: jax.Array) -> TransformationSet:
    """The identity and ``num − 1`` distinct uniformly random permutations of ``k`` items.

    A uniform sample of S_k without repeats, not a group: averaging over it is
    Monte Carlo. The ``num − 1`` permutations drawn from ``key`` are kept in
    order; a draw that repeats an earlier one (or the identity) is replaced by a
    fresh draw, so the set never holds one element twice. Samples drawn with
    different keys share one ``jit`` trace.

    Args:
        k: number of items, at least 1.
        num: number of elements, at least 1 and at most ``k!``.
        key: a concrete PRNG key (keyword-only), e.g. ``jax.random.key(0)``.

    Raises:
        ValueError: if ``num`` exceeds ``k!``, the number of distinct permutations.
        TypeError: if ``key`` is not one PRNG key, or is traced (the repeats are
            removed on the host).
    """
    k = positive_int("k", k)
    num = positive_int("num", num)
    check_key(key)
    if k <= 20 and num > math.factorial(k):
        raise ValueError(
            f"num must be at most k! = {math.factorial(k)}, the number of distinct "
            f"permutations of {k} items; got num={num}. For all of them use permutations({k})."
        )
    if not is_concrete(key):
        raise TypeError(
            "key must be concrete (call random_permutations outside jit): the sample is "
            "drawn without repeats on the host."
        )
    chosen = [np.arange(k, dtype=np.int32)]
    seen = {chosen[0].tobytes()}
    keys, round_ = jax.random.split(key, num - 1), 0
    while len(chosen) < num:
        for perm in np.asarray(_draw(keys, k), dtype=np.int32):
            if len(chosen) < num and perm.tobytes() not in seen:
                seen.add(perm.tobytes())
                chosen.append(perm)
        round_ += 1  # later rounds keep the shape: one compilation
        keys = jax.random.split(jax.random.fold_in(key, round_), num - 1)
    return TransformationSet(
        elements=jnp.asarray(np.stack(chosen)),
        action=PermutationAction(k),
        is_group=num == 1,
        name=f"S{k}[{num}]",
    )
