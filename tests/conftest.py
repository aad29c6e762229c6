"""Shared fixtures: random groups, random models, orbit-closed samples."""

from __future__ import annotations

import math
import os

# Tests compile many small programs once each: XLA's backend optimizations cost more
# compile time than they save at these sizes (results are the same up to rounding,
# which every test allows). A user's own XLA_FLAGS win.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from jaxsym import groups

settings.register_profile(
    "jaxsym",
    max_examples=int(os.environ.get("JAXSYM_HYPOTHESIS_EXAMPLES", "6")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("jaxsym")


def enable_x64():
    """A context in which float64 is enabled, on every jax the package supports."""
    if hasattr(jax, "enable_x64"):
        return jax.enable_x64(True)
    from jax.experimental import enable_x64 as legacy_enable_x64  # jax < 0.5.1

    return legacy_enable_x64()


def random_mlp(key, in_dim: int, out_dim: int, hidden: int = 16):
    """A batched MLP on flattened inputs and its parameters: ``(f, params, net)``."""
    k1, k2, k3 = jax.random.split(key, 3)
    params = {
        "w1": jax.random.normal(k1, (in_dim, hidden)) / jnp.sqrt(in_dim),
        "b1": 0.1 * jax.random.normal(k2, (hidden,)),
        "w2": jax.random.normal(k3, (hidden, out_dim)) / jnp.sqrt(hidden),
    }

    def net(p, x):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ p["w1"] + p["b1"]) @ p["w2"]

    return (lambda x: net(params, x)), params, net


def blob(size, centre, sigma, channels=None):
    """A Gaussian blob ``exp(−|p − c|²/2σ²)`` on a ``size × size`` grid (centred coords)."""
    r = np.arange(size) - (size - 1) / 2
    image = np.exp(
        -((r[:, None] - centre[0]) ** 2 + (r[None, :] - centre[1]) ** 2) / (2 * sigma**2)
    )
    image = image.astype(np.float32)
    return jnp.asarray(image if channels is None else np.repeat(image[..., None], channels, -1))


def random_cnn(key, channels=1, width=8, outputs=3, size=None):
    """A random two-layer CNN: ``(f, params, net)``.

    Global mean pooling (nearly rotation invariant) when ``size`` is ``None``; a
    dense head on the ``size × size`` feature map (far from invariant) otherwise.
    """
    k1, k2, k3 = jax.random.split(key, 3)
    features = width if size is None else width * size * size
    params = {
        "w1": jax.random.normal(k1, (3, 3, channels, width)) / 3.0,
        "w2": jax.random.normal(k2, (3, 3, width, width)) / (3.0 * math.sqrt(width)),
        "w3": jax.random.normal(k3, (features, outputs)) / math.sqrt(features),
    }

    def net(p, x):
        h = x if x.ndim == 4 else x[..., None]
        spec = ("NHWC", "HWIO", "NHWC")
        h = jnp.tanh(
            jax.lax.conv_general_dilated(h, p["w1"], (1, 1), "SAME", dimension_numbers=spec)
        )
        h = jnp.tanh(
            jax.lax.conv_general_dilated(h, p["w2"], (1, 1), "SAME", dimension_numbers=spec)
        )
        pooled = h.mean(axis=(1, 2)) if size is None else h.reshape(h.shape[0], -1)
        return pooled @ p["w3"]

    return (lambda x: net(params, x)), params, net


def brute_force_defects(f, x, group) -> np.ndarray:
    """The test oracle ``e_f(x_b, g) = ‖f(ρ_X(g) x_b) − ρ_Y(g) f(x_b)‖``, shape ``(|G|, B)``.

    One element at a time in a Python loop (vmapped over the batch only), the
    difference taken in float64: independent of the library's chunked orbit code.
    """
    fx = f(x)
    rows = []
    for i in range(group.size):
        g = group.element(i)
        moved = np.asarray(f(jax.vmap(group.act_in, in_axes=(None, 0))(g, x)), np.float64)
        target = np.asarray(jax.vmap(group.act_out, in_axes=(None, 0))(g, fx), np.float64)
        rows.append(np.linalg.norm((moved - target).reshape(len(x), -1), axis=-1))
    return np.stack(rows)


def orbit_closed_sample(group, x):
    """All transformed copies ``ρ_X(g) x_b``, flattened to one batch closed under G."""
    moved = groups.transform_batch(group, group.elements, x)
    return moved.reshape((-1,) + x.shape[1:])


# Finite groups with an example input shape and an output-equivariant model shape.
FINITE_GROUPS = {
    "C5": (lambda: groups.cyclic_rotations(5), (6, 2)),
    "D4": (lambda: groups.dihedral(4), (6, 2)),
    "D3": (lambda: groups.dihedral(3), (6, 2)),
    "rot90": (lambda: groups.rot90(), (5, 5)),
    "flip_rot90": (lambda: groups.flip_rot90(), (4, 4, 2)),
    "S4": (lambda: groups.permutations(4), (4, 3)),
    "Z6": (lambda: groups.cyclic_shifts(6), (6, 2)),
}


@pytest.fixture(params=sorted(FINITE_GROUPS))
def finite_group(request):
    """``(group, example_shape)`` for each finite group family."""
    make, shape = FINITE_GROUPS[request.param]
    return make(), shape
