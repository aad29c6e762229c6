"""The chunked hot path (jaxsym._src.orbits): results independent of the chunk size,
the automatic chunk rule, bounded memory, gradients, no retracing."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import enable_x64
from hypothesis import given, settings
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups
from jaxsym._src import orbits as _orbits


def _mlp(key, in_dim, out_dim, hidden=8):
    k1, k2 = jax.random.split(key)
    w1 = jax.random.normal(k1, (in_dim, hidden)) / np.sqrt(in_dim)
    w2 = jax.random.normal(k2, (hidden, out_dim)) / np.sqrt(hidden)
    return lambda p, x: jnp.tanh(x.reshape(x.shape[0], -1) @ p[0]) @ p[1], (w1, w2)


def _equivariant_points_model(key, k):
    """A non-equivariant model (k, 2) -> (k, 2): the output lives where inputs do."""
    net, params = _mlp(key, 2 * k, 2 * k)
    return lambda x: net(params, x).reshape(x.shape)


def _brute_average(f, group, x, weights=None):
    """``Σ_g w_g ρ_Y(g⁻¹) f(ρ_X(g) x)`` by a plain loop over elements and examples."""
    weights = np.full(group.size, 1.0 / group.size) if weights is None else weights
    weights = np.asarray(weights, np.float64) / np.sum(weights)
    total = 0.0
    for i in range(group.size):
        g = group.element(i)
        y = f(jax.vmap(group.act_in, in_axes=(None, 0))(g, x))
        back = jax.vmap(group.act_out, in_axes=(None, 0))(group.inverse(g), y)
        total = total + weights[i] * np.asarray(back, np.float64)
    return total


def _brute_squares(f, group, x):
    """``e_f(x_b, g)²`` by a loop, shape ``(|G|, B)``."""
    fx = np.asarray(f(x), np.float64)
    rows = []
    for i in range(group.size):
        g = group.element(i)
        moved = np.asarray(f(jax.vmap(group.act_in, in_axes=(None, 0))(g, x)), np.float64)
        target = np.asarray(jax.vmap(group.act_out, in_axes=(None, 0))(g, fx))
        rows.append(np.sum((moved - target).reshape(len(x), -1) ** 2, axis=-1))
    return np.stack(rows)


# chunk sizes for |G| = 10 or 24: automatic, padded and unpadded; the rest in the slow suite
CHUNKS = [None, 3, 4, 7, *(pytest.param(c, marks=pytest.mark.slow) for c in (1, 10, 64))]


@pytest.mark.parametrize("chunk", CHUNKS)
def test_symmetrize_equals_brute_force_for_every_chunk(chunk):
    group = groups.dihedral(5).equivariant()  # 10 elements: chunks 3, 4, 7 are padded
    x = jax.random.normal(jax.random.key(0), (6, 4, 2))
    f = _equivariant_points_model(jax.random.key(1), 4)
    got = jaxsym.symmetrize(f, group, chunk_size=chunk)(x)
    np.testing.assert_allclose(got, _brute_average(f, group, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_weighted_average_equals_brute_force_for_every_chunk(chunk):
    group = groups.dihedral(5).equivariant()
    weights = np.arange(1.0, 11.0)
    x = jax.random.normal(jax.random.key(2), (5, 4, 2))
    f = _equivariant_points_model(jax.random.key(3), 4)
    got = jaxsym.partial_average(f, group, weights, chunk_size=chunk)(x)
    np.testing.assert_allclose(got, _brute_average(f, group, x, weights), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("chunk", CHUNKS)
def test_defects_equal_brute_force_for_every_chunk(chunk):
    group = groups.permutations(4)  # 24 elements, invariant outputs
    net, params = _mlp(jax.random.key(4), 12, 3)
    f = lambda x: net(params, x)  # noqa: E731
    x = jax.random.normal(jax.random.key(5), (7, 4, 3))
    squares = _brute_squares(f, group, x)
    got = jaxsym.pointwise_defects(f, x, group, chunk_size=chunk)
    np.testing.assert_allclose(got, np.sqrt(squares), rtol=1e-4, atol=1e-5)
    profile = jaxsym.defect_profile(f, x, group, "rms", chunk_size=chunk)
    np.testing.assert_allclose(profile, np.sqrt(squares.mean(1)), rtol=1e-4, atol=1e-5)
    sup = jaxsym.equivariance_error(f, x, group, "max", chunk_size=chunk)
    np.testing.assert_allclose(sup, np.sqrt(squares.max()), rtol=1e-4)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(
    n=st.integers(1, 13),
    chunk=st.integers(1, 15),
    batch=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_chunking_never_changes_the_average(n, chunk, batch, seed):
    group = groups.cyclic_rotations(n).equivariant()
    x = jax.random.normal(jax.random.key(seed), (batch, 3, 2))
    f = _equivariant_points_model(jax.random.key(seed + 1), 3)
    got = jaxsym.symmetrize(f, group, chunk_size=chunk)(x)
    np.testing.assert_allclose(got, _brute_average(f, group, x), rtol=1e-5, atol=1e-5)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.parametrize(
    "reduce", [pytest.param(r, marks=pytest.mark.slow) for r in ("max", "rms")]
)
def test_gradients_do_not_depend_on_chunks(reduce):
    """Several chunks (scan + rematerialization) vs one chunk vs a brute-force loss."""
    group = groups.cyclic_rotations(9)
    net, params = _mlp(jax.random.key(6), 8, 2)
    x = jax.random.normal(jax.random.key(7), (5, 4, 2))

    def loss(p, chunk):
        value = jaxsym.equivariance_error(lambda z: net(p, z), x, group, reduce, chunk_size=chunk)
        average = jaxsym.symmetrize(lambda z: net(p, z), group, chunk_size=chunk)(x)
        return value + jnp.sum(average**2)

    def brute(p):
        fx = net(p, x)
        moved = groups.transform_batch(group, group.elements, x)
        ys = jnp.stack([net(p, m) for m in moved])
        squares = jnp.sum((ys - fx) ** 2, -1)
        value = jnp.sqrt(jnp.max(squares) if reduce == "max" else jnp.mean(squares))
        return value + jnp.sum(jnp.mean(ys, 0) ** 2)

    expected = jax.grad(brute)(params)
    for chunk in (2, 4, 9):
        got = jax.jit(jax.grad(loss), static_argnums=1)(params, chunk)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _conv_net(key, channels=3):
    """A small non-equivariant conv net (B, 6, 6, 1) -> (B, 2) and its parameters."""
    k1, k2 = jax.random.split(key)
    params = (
        jax.random.normal(k1, (3, 3, 1, channels)) * 0.5,
        jax.random.normal(k2, (6 * 6 * channels, 2)) * 0.1,
    )

    def net(p, x):
        h = jax.lax.conv_general_dilated(
            x, p[0], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        return jnp.tanh(h).reshape(x.shape[0], -1) @ p[1]

    return net, params


@pytest.mark.parametrize("backend", ["cpu", "gpu", "tpu"])
def test_conv_derivatives_are_unrolled_only_on_cpu_and_when_it_pays(backend):
    group = groups.flip_rot90()
    net, params = _conv_net(jax.random.key(0))
    x = jnp.ones((4, 6, 6, 1))
    conv = lambda z: net(params, z)  # noqa: E731
    on_cpu = backend == "cpu"
    assert _orbits.plan_chunks(2, conv, group, x, backend=backend) == (2, on_cpu)
    assert _orbits.plan_chunks(8, conv, group, x, backend=backend) == (8, False)  # one chunk
    mlp, mlp_params = _mlp(jax.random.key(1), 36, 2)
    plan = _orbits.plan_chunks(2, lambda z: mlp(mlp_params, z), group, x, backend=backend)
    assert plan == (2, False)  # no convolution
    big = groups.cyclic_shifts(_orbits.MAX_UNROLLED_CHUNKS + 1)
    plan = _orbits.plan_chunks(1, conv, big, jnp.ones((4, 6, 6, 1)), backend=backend)
    assert not plan.unroll_derivatives  # too many chunks
    # The default is the backend in use.
    default = _orbits.plan_chunks(2, conv, group, x)
    assert default.unroll_derivatives == (jax.default_backend() in _orbits.UNROLL_BACKENDS)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_unrolled_derivatives_match_brute_force_in_every_mode(monkeypatch):
    """grad, jvp, a Hessian and vmap through the custom JVP (several conv chunks).

    The unrolled path is forced on whatever backend runs the test.
    """
    monkeypatch.setattr(_orbits, "UNROLL_BACKENDS", (jax.default_backend(),))
    with enable_x64():
        group = groups.flip_rot90()
        net, params = _conv_net(jax.random.key(2))
        x = jax.random.normal(jax.random.key(3), (3, 6, 6, 1))
        assert _orbits.plan_chunks(3, lambda z: net(params, z), group, x).unroll_derivatives

        def loss(scale, p=params):
            f = lambda z: net(p, z) * scale  # noqa: E731
            value = jaxsym.equivariance_error(f, x, group, "rms", chunk_size=3)
            return value + jnp.sum(jaxsym.symmetrize(f, group, chunk_size=3)(x) ** 2)

        def brute(scale, p=params):
            moved = groups.transform_batch(group, group.elements, x)
            ys = jnp.stack([net(p, m) * scale for m in moved])  # invariant outputs
            value = jnp.sqrt(jnp.mean(jnp.sum((ys - net(p, x) * scale) ** 2, -1)))
            return value + jnp.sum(jnp.mean(ys, 0) ** 2)

        scale = jnp.asarray(1.3)
        np.testing.assert_allclose(loss(scale), brute(scale), rtol=1e-10)
        got, expected = jax.jit(jax.grad(loss, 1))(scale, params), jax.grad(brute, 1)(scale, params)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
        tangent = jax.jvp(loss, (scale,), (jnp.asarray(1.0),))[1]
        np.testing.assert_allclose(tangent, jax.jvp(brute, (scale,), (jnp.asarray(1.0),))[1])
        np.testing.assert_allclose(jax.hessian(loss)(scale), jax.hessian(brute)(scale), rtol=1e-8)
        scales = jnp.asarray([0.5, 2.0])
        np.testing.assert_allclose(jax.vmap(loss)(scales), jax.vmap(brute)(scales), rtol=1e-10)


def test_model_profile_counts_intermediates():
    hidden = 24
    w = jnp.ones((6, hidden))
    x = jnp.ones((10, 6))
    # one dot (B, hidden) and one tanh (B, hidden), float32
    profile = _orbits.model_profile(lambda z: jnp.tanh(z @ w), x)
    assert profile.row_bytes == pytest.approx(8 * hidden)
    assert not profile.has_convolution
    # nested jaxprs (jit, custom_jvp) are walked, not skipped
    nested = jax.jit(lambda z: jax.nn.relu(z @ w))
    assert _orbits.model_profile(nested, x).row_bytes >= 8 * hidden


def test_chunk_rule_inside_jit_and_grad_matches_outside():
    group = groups.cyclic_rotations(256)
    net, params = _mlp(jax.random.key(8), 32, 4, hidden=512)
    x = jnp.ones((64, 16, 2))
    outside = _orbits.plan_chunks(None, lambda z: net(params, z), group, x).size
    seen = []

    def loss(p):
        seen.append(_orbits.plan_chunks(None, lambda z: net(p, z), group, x).size)
        return jnp.sum(jaxsym.symmetrize(lambda z: net(p, z), group)(x))

    jax.jit(jax.grad(loss))(params)
    assert seen == [outside]
    row_bytes = _orbits.model_profile(lambda z: net(params, z), x).row_bytes
    rows = min(_orbits.MAX_ROWS_PER_CALL, _orbits.ROW_BYTES_BUDGET // row_bytes)
    assert outside * x.shape[0] <= rows  # within the budget, at least one element
    assert outside >= 1 and group.size % outside == 0


@settings(max_examples=25, deadline=None)
@given(max_chunk=st.integers(1, 300), size=st.integers(1, 300))
def test_balanced_chunk(max_chunk, size):
    chunk = _orbits.balanced_chunk(max_chunk, size)
    assert 1 <= chunk <= min(max_chunk, size)
    num_chunks = math.ceil(size / chunk)
    assert num_chunks <= 2 * math.ceil(size / min(max_chunk, size))  # never many more calls
    assert num_chunks * chunk - size < num_chunks  # padding below one element per chunk


def test_user_chunk_size_is_respected_and_checked():
    assert _orbits.resolve_chunk_size(5, 12, 1000) == 5
    assert _orbits.resolve_chunk_size(50, 12, 1000) == 12
    assert _orbits.resolve_chunk_size(None, 12, 10**6, row_bytes=1.0) == 1
    f = lambda z: z.reshape(z.shape[0], -1)  # noqa: E731
    x = jnp.ones((2, 3, 2))
    with pytest.raises(ValueError, match="chunk_size"):
        jaxsym.symmetrize(f, groups.cyclic_rotations(4), chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size"):
        jaxsym.defect_profile(f, x, groups.cyclic_rotations(4), chunk_size=2.5)


def _temp_bytes(fn, *args):
    analysis = jax.jit(fn).lower(*args).compile().memory_analysis()
    if analysis is None:
        pytest.skip("this backend gives no memory analysis")
    return analysis.temp_size_in_bytes


@pytest.mark.slow
def test_memory_stays_bounded_as_the_group_grows():
    """Automatic chunks: compiled temp memory barely grows from C_64 to C_2048,
    forward and gradient, while the unchunked pass grows with |G|."""
    net, params = _mlp(jax.random.key(9), 32, 4, hidden=64)
    x = jnp.ones((256, 16, 2))
    temps = {}
    for n in (64, 2048):
        group = groups.cyclic_rotations(n)
        temps[n] = _temp_bytes(jaxsym.symmetrize(lambda z: net(params, z), group), x)
        temps["grad", n] = _temp_bytes(
            jax.grad(lambda p, g=group: jaxsym.equivariance_error(lambda z: net(p, z), x, g)),
            params,
        )
    unchunked = _temp_bytes(
        jaxsym.symmetrize(lambda z: net(params, z), groups.cyclic_rotations(2048), chunk_size=2048),
        x,
    )
    assert temps[2048] <= 1.5 * temps[64] + 2**20
    assert temps["grad", 2048] <= 1.5 * temps["grad", 64] + 2**20
    assert unchunked > 10 * temps[2048]


def test_no_retrace_on_second_call():
    group = groups.flip_rot90()
    net, params = _mlp(jax.random.key(10), 16, 3)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(p, x):
        f = lambda z: net(p, z)  # noqa: E731
        return jaxsym.symmetrize(f, group)(x), jaxsym.defect_profile(f, x, group)

    x = jnp.ones((3, 4, 4))
    run(params, x)
    run(params, x + 1.0)
