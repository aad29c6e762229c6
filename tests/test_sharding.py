"""Inputs sharded over a device mesh give the same results as on one device.

The simulated device count (``--xla_force_host_platform_device_count``) must be
set before jax initializes, so the body runs in a fresh Python process and
prints its findings as JSON, which the test asserts on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A fresh process compiles everything on 4 simulated devices (about 30 s): CI runs it
# with -m extended.
pytestmark = [pytest.mark.slow, pytest.mark.extended]

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
import jaxsym
from jaxsym import groups

out = {"devices": jax.device_count()}
mesh = Mesh(np.array(jax.devices()), ("batch",))
by_batch = NamedSharding(mesh, P("batch"))
replicated = NamedSharding(mesh, P())
key = jax.random.key(0)
k1, k2, k3, k4 = jax.random.split(key, 4)
W1 = jax.random.normal(k1, (12, 16)) / 3.0
W2 = jax.random.normal(k2, (16, 12)) / 4.0

def f(x):  # (B, 6, 2) -> (B, 6, 2), not equivariant
    h = jnp.tanh(x.reshape(x.shape[0], -1) @ W1)
    return (h @ W2).reshape(x.shape)

def close(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))

G = groups.dihedral(6).equivariant()
x = jax.random.normal(k3, (16, 6, 2))
xs = jax.device_put(x, by_batch)
out["input_sharding"] = list(xs.sharding.spec)

sym = jax.jit(jaxsym.symmetrize(f, G, chunk_size=5))
one, many = jax.device_get(sym(x)), sym(xs)
out["symmetrize_diff"] = close(one, many)
out["symmetrize_out_spec"] = list(many.sharding.spec)
hlo = sym.lower(xs).compile().as_text()
out["symmetrize_all_gather"] = "all-gather" in hlo
out["symmetrize_eager_diff"] = close(one, jaxsym.symmetrize(f, G)(xs))

prof = jax.jit(lambda z: jaxsym.defect_profile(f, z, G, "max"))
out["profile_diff"] = close(prof(x), prof(xs))
out["ee_diff"] = close(jaxsym.equivariance_error(f, x, G, "rms"),
                       jaxsym.equivariance_error(f, xs, G, "rms"))
out["dial_diff"] = close(jaxsym.dial(f, G, 0.3)(x), jaxsym.dial(f, G, 0.3)(xs))

# gradients with a sharded batch and replicated parameters
def loss(w, z):
    g = lambda v: (jnp.tanh(v.reshape(v.shape[0], -1) @ w) @ W2).reshape(v.shape)
    return jaxsym.equivariance_error(g, z, G, "rms") + jnp.sum(jaxsym.symmetrize(g, G)(z) ** 2)
grad = jax.jit(jax.grad(loss))
out["grad_diff"] = close(grad(W1, x), grad(jax.device_put(W1, replicated), xs))

# images under D4, batch sharded
C = groups.flip_rot90()
Wi = jax.random.normal(k4, (25, 3))
fi = lambda z: jnp.tanh(z.reshape(z.shape[0], -1) @ Wi)
xi = jax.random.normal(k4, (8, 5, 5))
out["image_diff"] = close(jaxsym.symmetrize(fi, C)(xi),
                          jax.jit(jaxsym.symmetrize(fi, C))(jax.device_put(xi, by_batch)))

from jaxsym.covering import covering_numbers

S = groups.cyclic_rotations(4)
pts = jax.random.normal(k1, (32, 3, 2))
radii = jnp.linspace(0.5, 3.0, 6)
a = np.asarray(covering_numbers(pts, S, radii))
b = np.asarray(covering_numbers(jax.device_put(pts, by_batch), S, radii))
out["covering"] = "same" if np.array_equal(a, b) else f"differ: {a} vs {b}"

# orbit_stats: one pass, sharded batch
from jaxsym.defects import orbit_stats

st_one, st_many = orbit_stats(f, x, G), jax.jit(lambda z: orbit_stats(f, z, G))(xs)
out["orbit_stats_diff"] = max(close(a, b) for a, b in zip(st_one, st_many))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def sharded_run():
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "JAX_PLATFORMS": "cpu",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_four_simulated_devices_and_a_sharded_input(sharded_run):
    assert sharded_run["devices"] == 4
    assert sharded_run["input_sharding"] == ["batch"]


@pytest.mark.parametrize(
    "name",
    [
        "symmetrize_diff",
        "symmetrize_eager_diff",
        "profile_diff",
        "ee_diff",
        "dial_diff",
        "grad_diff",
        "image_diff",
        "orbit_stats_diff",
    ],
)
def test_sharded_results_match_one_device(sharded_run, name):
    assert sharded_run[name] < 1e-5, (name, sharded_run[name])


def test_averaging_stays_data_parallel(sharded_run):
    """The batch stays sharded through the group average: no all-gather of inputs."""
    assert sharded_run["symmetrize_out_spec"] == ["batch"]
    assert not sharded_run["symmetrize_all_gather"]


def test_covering_numbers_with_a_sharded_input(sharded_run):
    assert sharded_run["covering"] == "same"
