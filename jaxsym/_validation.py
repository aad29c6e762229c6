"""Checks at the API boundary: clear errors that name the argument and the problem.

Values are checked only when they are concrete (outside ``jax.jit``); shapes are
checked always, at trace time.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(value) -> bool:
    """Whether ``value`` holds data (not a tracer inside a transformation)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(value))


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` if a concrete floating array holds NaN or inf."""
    if not is_concrete(value):
        return
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.inexact) and not np.all(np.isfinite(array)):
        count = int(np.size(array) - np.isfinite(array).sum())
        raise ValueError(f"{name} holds {count} non-finite values (NaN or inf).")


def check_batch(group, x, name: str = "x") -> jax.Array:
    """Check a batch ``(B, *example)`` that ``group`` can act on; return it as an array."""
    if not hasattr(x, "shape"):
        x = jnp.asarray(x)
    group.check_inputs(x, name)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {x.shape}).")
    check_finite(name, x)
    return x


def check_model_output(y, batch_size: int, name: str = "f") -> None:
    """The model must be batched: ``f`` on ``N`` examples returns ``N`` outputs."""
    shape = getattr(y, "shape", None)
    if shape is None or len(shape) < 1 or shape[0] != batch_size:
        raise ValueError(
            f"{name} must be a batched callable: on a batch of {batch_size} examples it "
            f"returned an output of shape {shape}, expected leading axis {batch_size}."
        )


def check_nonnegative(name: str, value) -> None:
    """Raise ``ValueError`` if a concrete value is negative or not finite."""
    if not is_concrete(value):
        return
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must be non-negative and finite; got {value}.")


def check_positive(name: str, value) -> None:
    """Raise ``ValueError`` if a concrete value is not strictly positive and finite."""
    if not is_concrete(value):
        return
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise ValueError(f"{name} must be positive and finite; got {value}.")


def check_unit_interval(name: str, value) -> None:
    """Raise ``ValueError`` if a concrete value lies outside ``[0, 1]``."""
    if not is_concrete(value):
        return
    array = np.asarray(value, dtype=np.float64)
    if not np.all((array >= 0) & (array <= 1)):
        raise ValueError(f"{name} must lie in [0, 1]; got {value}.")


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise ``ValueError`` if ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}.")


def check_chunk_size(chunk_size) -> None:
    """``chunk_size`` is ``None`` (automatic) or a positive number of elements."""
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be a positive int or None; got {chunk_size!r}.")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of elements; got {chunk_size}.")


def check_profile(profile, name: str = "profile") -> jax.Array:
    """A defect profile is a 1-D array with one entry per element."""
    profile = jnp.asarray(profile)
    if profile.ndim != 1 or profile.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty 1-D array (one value per element); "
            f"got shape {profile.shape}."
        )
    check_finite(name, profile)
    return profile
