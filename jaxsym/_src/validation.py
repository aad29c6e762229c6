"""Checks at the API boundary: clear errors that name the argument and the problem.

Every public function checks its arguments here, once, at the boundary.

* **Concrete values** (outside ``jax.jit``) are checked eagerly and raise a
  ``ValueError``/``TypeError`` that names the argument, what was expected and
  what was given.
* **Traced values** (inside ``jit``/``grad``/``vmap``) cannot be inspected at
  trace time. Shapes and dtypes are still checked; values are checked with
  :func:`jax.experimental.checkify.debug_check`, which is a no-op unless the
  caller opts in by wrapping the computation in
  ``checkify.checkify(fn, errors=checkify.user_checks)``; then ``err.throw()``
  raises the same message. Without the opt-in a bad traced value propagates
  (e.g. a negative ε gives an empty stabilizer, NaN inputs give NaN outputs).
"""

from __future__ import annotations

import abc
import argparse
import operator
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

__all__: list[str] = []  # private module: helpers for the public API


def is_concrete(value) -> bool:
    """Whether ``value`` holds data (not a tracer inside a transformation)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def _traced_check(predicate, message: str) -> None:
    """Opt-in runtime check of a traced predicate (see the module docstring)."""
    checkify.debug_check(jnp.all(predicate), message)


# ----------------------------------------------------------------------------- types


class SymmetrySet(abc.ABC):  # noqa: B024 (a marker: nothing to implement)
    """What :func:`check_group` accepts: :mod:`jaxsym.groups` registers its sets here.

    A marker, so that this module (imported by every layer, groups included)
    imports nothing from the package and the layers have no import cycle.
    """


def check_group(group, name: str = "group") -> None:
    """Raise ``TypeError`` unless ``group`` is a :class:`jaxsym.groups.TransformationSet`."""
    if not isinstance(group, SymmetrySet):
        raise TypeError(
            f"{name} must be a jaxsym group or transformation set (e.g. "
            f"jaxsym.groups.cyclic_rotations(8)); got {type(group).__name__}: {group!r:.80}."
        )


def check_key(key, name: str = "key") -> None:
    """Raise ``TypeError`` unless ``key`` is one PRNG key (typed, or a raw ``uint32[2]``)."""
    dtype = getattr(key, "dtype", None)
    shape = getattr(key, "shape", None)
    typed = dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
    raw = dtype == np.uint32 and shape == (2,)
    if not ((typed and shape == ()) or raw):
        raise TypeError(
            f"{name} must be one PRNG key, e.g. jax.random.key(0); got "
            f"{type(key).__name__}{'' if shape is None else f' of shape {shape}'}: {key!r:.60}."
        )


def check_callable(name: str, value) -> None:
    """Raise ``TypeError`` unless ``value`` is callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable; got {type(value).__name__}: {value!r:.80}.")


def positive_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an int in ``[minimum, maximum]``, or raise naming the argument."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer; got {value!r}.")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer; got {value!r}.") from None
    if number < minimum or (maximum is not None and number > maximum):
        upper = "" if maximum is None else f" and at most {maximum}"
        raise ValueError(f"{name} must be at least {minimum}{upper}; got {number}.")
    return number


def optional_positive_int(name: str, value) -> int | None:
    """``None``, or a positive int (see :func:`positive_int`)."""
    return None if value is None else positive_int(name, value)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_chunk_size(chunk_size) -> None:
    """``chunk_size`` is ``None`` (automatic) or a positive number of elements."""
    optional_positive_int("chunk_size", chunk_size)


MAX_SEED = 2**32 - 1
"""The largest seed ``jax.random.key`` takes (a 32-bit unsigned integer)."""


def parse_seed(text: str) -> int:
    """argparse ``type=`` of every ``--seed``: ASCII digits of an integer in ``[0, MAX_SEED]``.

    The one seed parser of the command lines (``jaxsym audit``, ``jaxsym demo``).
    Signs, spaces, underscores, exponents and non-ASCII digits (``"٣"``, which
    ``int`` would accept) are refused.

    Args:
        text: the argument as typed.

    Returns:
        The seed.

    Raises:
        argparse.ArgumentTypeError: naming the text and the range (argparse adds
            the option's name and exits with status 2).
    """
    if not (isinstance(text, str) and re.fullmatch(r"[0-9]{1,10}", text)) or int(text) > MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, {MAX_SEED}] (2**32 - 1) written in ASCII digits, "
            f"got {text!r}"
        )
    return int(text)


# ----------------------------------------------------------------------------- values


def _as_float64(name: str, value) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be a number or an array of numbers; got {value!r:.80}."
        ) from None


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` if a concrete floating array holds NaN or inf."""
    if not is_concrete(value):
        return
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        count = int(np.size(array) - np.isfinite(array).sum())
        raise ValueError(
            f"{name} holds {count} non-finite value{'s' * (count != 1)} (NaN or inf) "
            f"of {array.size}."
        )


def _check_range(name, value, ok, expected: str) -> None:
    if not is_concrete(value):
        _traced_check(ok(jnp.asarray(value)), f"{name} must be {expected}.")
        return
    array = _as_float64(name, value)
    if not np.all(np.isfinite(array)) or not np.all(ok(array)):
        raise ValueError(f"{name} must be {expected}; got {value}.")


def check_nonnegative(name: str, value) -> None:
    """``value ≥ 0`` and finite (eps, atol, rtol, radii, noise, …)."""
    _check_range(name, value, lambda a: a >= 0, "finite and ≥ 0")


def check_positive(name: str, value) -> None:
    """``value > 0`` and finite (temperature, margins, bounds, …)."""
    _check_range(name, value, lambda a: a > 0, "finite and > 0")


def check_unit_interval(name: str, value) -> None:
    """``value ∈ [0, 1]``."""
    _check_range(name, value, lambda a: (a >= 0) & (a <= 1), "in [0, 1]")


def check_probability(name: str, value) -> None:
    """``value ∈ (0, 1)`` (a failure probability such as δ)."""
    _check_range(name, value, lambda a: (a > 0) & (a < 1), "in (0, 1)")


def check_scalar(name: str, value) -> None:
    """Raise ``ValueError`` unless ``value`` is a scalar (0-d)."""
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar; got shape {np.shape(value)}.")


def check_weights(name: str, weights, size: int) -> jax.Array:
    """``(size,)`` non-negative weights with a positive sum; returned normalized."""
    weights = jnp.asarray(weights)
    if weights.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), one per element; got {weights.shape}.")
    if not jnp.issubdtype(weights.dtype, jnp.floating):
        weights = weights.astype(jnp.float32)
    if is_concrete(weights):
        values = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(values)) or np.any(values < 0) or values.sum() <= 0:
            raise ValueError(
                f"{name} must be finite and non-negative with a positive sum; got {values}."
            )
    else:
        _traced_check(
            jnp.all(weights >= 0) & (jnp.sum(weights) > 0),
            f"{name} must be non-negative with a positive sum.",
        )
    return weights / jnp.sum(weights)


# ----------------------------------------------------------------------------- arrays


def float_dtype(*arrays) -> jnp.dtype:
    """The float dtype to compute in: the inputs' float dtype, or the default float.

    Integer and boolean inputs promote to JAX's default float (float32, or
    float64 under ``jax_enable_x64``); float inputs keep their precision.
    """
    dtypes = [jnp.asarray(a).dtype if not hasattr(a, "dtype") else a.dtype for a in arrays]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.inexact)]
    if not floats:
        return jnp.dtype(jnp.zeros(()).dtype)  # the default float
    return jnp.dtype(jnp.result_type(*floats))


def as_float(x) -> jax.Array:
    """``x`` as an array of a float dtype (integers and booleans promoted)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.inexact) else x.astype(float_dtype(x))


def accumulation_dtype(dtype) -> jnp.dtype:
    """At least float32: half-precision sums of squares accumulate in float32."""
    return jnp.dtype(jnp.promote_types(dtype, jnp.float32))


def check_batch(group, x, name: str = "x") -> jax.Array:
    """Check a batch ``(B, *example)`` that ``group`` can act on; return it as a float array.

    Integer inputs are promoted to a float dtype (group elements never are cast
    down to the input's dtype).
    """
    check_group(group)
    if not hasattr(x, "shape"):
        x = jnp.asarray(x)
    group.check_inputs(x, name)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}).")
    check_finite(name, x)
    return as_float(x)


def check_model_output(y, batch_size: int, name: str = "f") -> None:
    """The model must be batched: ``f`` on ``N`` examples returns ``N`` outputs."""
    if not isinstance(y, jax.Array | np.ndarray | jax.ShapeDtypeStruct) and not hasattr(y, "shape"):
        kind = type(y).__name__
        raise TypeError(
            f"{name} must return one array (B, *output); it returned a {kind}. Pytree "
            f"outputs (dicts, tuples) are not supported: concatenate them into one array, "
            f"or measure each output with its own function."
        )
    shape = getattr(y, "shape", None)
    if shape is None or len(shape) < 1 or shape[0] != batch_size:
        raise ValueError(
            f"{name} must be a batched callable: on a batch of {batch_size} examples it "
            f"returned an output of shape {shape}, expected leading axis {batch_size}."
        )


def check_profile(profile, name: str = "profile") -> jax.Array:
    """A defect profile is a 1-D array with one entry per element."""
    profile = jnp.asarray(profile)
    if profile.ndim != 1 or profile.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array (one value per element); "
            f"got shape {profile.shape}."
        )
    check_finite(name, profile)
    return as_float(profile)


def raise_if_nonfinite(name: str, value: Any, what: str) -> None:
    """For concrete results: raise if a model produced NaN/inf (``what`` says where)."""
    if not is_concrete(value):
        return
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        raise FloatingPointError(f"{name}: {what} holds NaN or inf values.")


def check_output_dim(what: str, shape: tuple[int, ...], output_dim) -> None:
    """``prod(shape)`` (the coordinates per example) must equal the constants' ``output_dim``."""
    dim = int(np.prod(shape, dtype=np.int64))
    if is_concrete(output_dim) and dim != int(output_dim):
        raise ValueError(
            f"{what} have {dim} coordinates per example (shape {tuple(shape)}), but "
            f"constants.output_dim is {int(output_dim)}: the bound's constants "
            "must describe the model's outputs (build them with output_dim="
            f"{dim})."
        )
