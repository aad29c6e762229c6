"""Group averaging: equivariance, idempotence, chunking, dial, partial averages."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import FINITE_GROUPS, brute_force_defects, orbit_closed_sample, random_mlp
from hypothesis import given
from hypothesis import strategies as st

import jaxsym
from jaxsym import groups


def _model_and_batch(group, shape, seed=0, out_dim=3, batch=7):
    key_model, key_x = jax.random.split(jax.random.key(seed))
    f, _, _ = random_mlp(key_model, int(np.prod(shape)), out_dim)
    return f, jax.random.normal(key_x, (batch, *shape))


def _brute_force_average(f, group, x, weights=None):
    """Σ_g w_g ρ_Y(g)⁻¹ f(ρ_X(g) x), one element at a time in a Python loop."""
    weights = np.full(group.size, 1 / group.size) if weights is None else weights
    total = 0.0
    for i in range(group.size):
        y = f(_moved(group, i, x))
        inverse = group.inverse(group.element(i))
        total = total + weights[i] * jax.vmap(group.act_out, in_axes=(None, 0))(inverse, y)
    return total


def _moved(group, index, x):
    """``ρ_X(g_index) x_b`` for every example (one element, vmapped over the batch)."""
    return jax.vmap(group.act_in, in_axes=(None, 0))(group.element(index), x)


def _assert_equivariant_by_brute_force(f, x, group, atol=1e-6):
    """The public ``assert_equivariant``'s argument order, checked by the conftest oracle."""
    defect = brute_force_defects(f, x, group).max()
    assert defect <= atol, f"not equivariant: defect {defect:.3g} > {atol:.3g}"


def _group_names(fast):
    """FINITE_GROUPS, the ones not in ``fast`` marked slow."""
    return [
        pytest.param(name, marks=() if name in fast else pytest.mark.slow)
        for name in sorted(FINITE_GROUPS)
    ]


def _group(name):
    make, shape = FINITE_GROUPS[name]
    return make(), shape


@pytest.mark.parametrize("name", _group_names({"D4", "S4"}))
def test_symmetrize_matches_brute_force(name):
    group, shape = _group(name)
    f, x = _model_and_batch(group, shape, batch=3)
    np.testing.assert_allclose(
        jaxsym.symmetrize(f, group)(x), _brute_force_average(f, group, x), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", _group_names({"D4"}))
def test_symmetrized_model_is_invariant(name):
    group, shape = _group(name)
    f, x = _model_and_batch(group, shape, seed=1)
    _assert_equivariant_by_brute_force(jaxsym.symmetrize(f, group), x, group, atol=1e-5)
    with pytest.raises(AssertionError, match="not equivariant"):
        _assert_equivariant_by_brute_force(f, x, group)


def _pointwise_model(key, channels):
    """A per-point/per-pixel map plus a position-dependent global term: equivariant
    to nothing, with outputs of the input's shape."""
    w = jax.random.normal(key, (channels, channels))
    v = jax.random.normal(jax.random.fold_in(key, 1), (channels,))

    def f(x):
        flat = x.reshape(x.shape[0], -1)
        glob = jnp.tanh(3.0 * flat[:, :1] + flat[:, -1:])
        return jnp.tanh(x @ w) + glob.reshape((x.shape[0],) + (1,) * (x.ndim - 1)) * v

    return f


@pytest.mark.parametrize(
    ("make", "shape"),
    [
        (lambda: groups.dihedral(5), (6, 2)),
        pytest.param(lambda: groups.permutations(4), (4, 2), marks=pytest.mark.slow),
        pytest.param(lambda: groups.cyclic_shifts(5), (5, 2), marks=pytest.mark.slow),
        pytest.param(lambda: groups.flip_rot90(), (4, 4, 2), marks=pytest.mark.slow),
    ],
)
def test_symmetrize_equivariant_outputs(make, shape):
    """With ``.equivariant()`` the average is equivariant in the output action too."""
    group = make().equivariant()
    key = jax.random.key(4)
    f = _pointwise_model(key, shape[-1])
    x = jax.random.normal(jax.random.fold_in(key, 2), (5, *shape))
    assert f(x).shape == x.shape
    with pytest.raises(AssertionError):
        _assert_equivariant_by_brute_force(f, x, group)
    _assert_equivariant_by_brute_force(jaxsym.symmetrize(f, group), x, group, atol=1e-5)


def test_vector_output_under_so3_custom_action():
    """A custom output action: rotate an R³ vector output by the same matrix."""
    sample = groups.so3(6, key=jax.random.key(0))
    group = sample.with_output_action(lambda e, y: e @ y)
    f, x = _model_and_batch(group, (4, 3), out_dim=3)
    y = _brute_force_average(f, group, x)
    np.testing.assert_allclose(jaxsym.symmetrize(f, group)(x), y, rtol=1e-5, atol=1e-6)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@given(seed=st.integers(0, 2**16), name=st.sampled_from(sorted(FINITE_GROUPS)))
def test_averaging_is_idempotent(seed, name):
    make, shape = FINITE_GROUPS[name]
    group = make()
    f, x = _model_and_batch(group, shape, seed=seed, batch=4)
    q = jaxsym.symmetrize(f, group)
    np.testing.assert_allclose(jaxsym.symmetrize(q, group)(x), q(x), rtol=1e-4, atol=1e-5)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@given(
    seed=st.integers(0, 2**16), t=st.floats(0.0, 1.0), name=st.sampled_from(sorted(FINITE_GROUPS))
)
def test_dial_scales_the_pointwise_defect(seed, t, name):
    make, shape = FINITE_GROUPS[name]
    group = make()
    f, x = _model_and_batch(group, shape, seed=seed, batch=4)
    base = jaxsym.pointwise_defects(f, x, group)
    dialed = jaxsym.pointwise_defects(jaxsym.dial(f, group, t), x, group)
    np.testing.assert_allclose(dialed, t * base, rtol=1e-4, atol=2e-5)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
@given(seed=st.integers(0, 2**16), name=st.sampled_from(sorted(FINITE_GROUPS)))
def test_distance_to_average_below_mean_defect(seed, name):
    """‖f − Q_G f‖_∞ ≤ mean_g E_f(g) on an orbit-closed sample (theory.md §3)."""
    make, shape = FINITE_GROUPS[name]
    group = make()
    f, x = _model_and_batch(group, shape, seed=seed, batch=3)
    x = orbit_closed_sample(group, x)
    gap = jnp.max(jnp.linalg.norm(f(x) - jaxsym.symmetrize(f, group)(x), axis=-1))
    profile = jaxsym.defect_profile(f, x, group)
    assert gap <= jnp.mean(profile) + 1e-5
    assert jnp.max(profile) <= 2 * gap + 1e-5  # E_f(g) ≤ 2‖f − Q_G f‖_∞


@pytest.mark.parametrize("chunk_size", [1, 3, 5, 8, 100])
def test_chunk_size_does_not_change_results(chunk_size):
    group = groups.dihedral(4)
    f, x = _model_and_batch(group, (6, 2), seed=3)
    np.testing.assert_allclose(
        jaxsym.symmetrize(f, group, chunk_size=chunk_size)(x),
        _brute_force_average(f, group, x),
        rtol=1e-5,
        atol=1e-6,
    )


def test_partial_average_matches_weighted_brute_force():
    subset = groups.rotation_range(np.pi / 4, 5)
    f, x = _model_and_batch(subset, (6, 2), seed=5)
    weights = np.array([3.0, 1.0, 2.0, 1.0, 2.0])
    np.testing.assert_allclose(
        jaxsym.partial_average(f, subset, weights)(x),
        _brute_force_average(f, subset, x, weights / weights.sum()),
        rtol=1e-5,
        atol=1e-6,
    )
    # Averaging over a subset that is not a group is not exactly invariant.
    with pytest.raises(AssertionError):
        _assert_equivariant_by_brute_force(jaxsym.partial_average(f, subset), x, subset, atol=1e-4)


@pytest.mark.slow
def test_monte_carlo_so3_average_is_not_idempotent():
    sample = groups.so3(8, key=jax.random.key(1))
    f, x = _model_and_batch(sample, (4, 3), seed=6, out_dim=1)
    q = jaxsym.symmetrize(f, sample)
    assert jnp.max(jnp.abs(jaxsym.symmetrize(q, sample)(x) - q(x))) > 1e-3


class TestTransformations(chex.TestCase):
    """Results agree with and without jit, and a second call does not retrace."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_symmetrize_and_dial_variants(self):
        group = groups.cyclic_rotations(6)
        f, x = _model_and_batch(group, (5, 2), seed=7)
        sym = self.variant(lambda x: jaxsym.symmetrize(f, group)(x))
        dialed = self.variant(lambda x, t: jaxsym.dial(f, group, t)(x))
        q = _brute_force_average(f, group, x)
        np.testing.assert_allclose(sym(x), q, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(dialed(x, 0.25), q + 0.25 * (f(x) - q), rtol=1e-5, atol=1e-6)

    def test_no_retrace_and_group_as_argument(self):
        f, x = _model_and_batch(groups.cyclic_rotations(6), (5, 2), seed=8)

        @jax.jit
        @chex.assert_max_traces(n=1)
        def averaged(group, x):
            return jaxsym.symmetrize(f, group)(x)

        first = averaged(groups.cyclic_rotations(6), x)
        second = averaged(groups.cyclic_rotations(6), x + 1.0)
        assert first.shape == second.shape


def test_trainable_dial_level_has_a_gradient():
    group = groups.cyclic_rotations(4)
    f, x = _model_and_batch(group, (5, 2), seed=9, out_dim=1)
    q, full = _brute_force_average(f, group, x), f(x)
    grad = jax.grad(lambda t: jnp.sum(jaxsym.dial(f, group, t)(x)))(0.3)
    np.testing.assert_allclose(grad, jnp.sum(full - q), rtol=1e-4)


@pytest.mark.parametrize("t", [-0.1, 1.5, float("nan")])
def test_dial_rejects_levels_outside_unit_interval(t):
    group = groups.cyclic_rotations(4)
    with pytest.raises(ValueError, match=r"t must be in \[0, 1\]"):
        jaxsym.dial(lambda x: x, group, t)


def test_averaging_errors_name_the_problem():
    group = groups.cyclic_rotations(4)
    f, x = _model_and_batch(group, (5, 2))
    with pytest.raises(ValueError, match=r"weights must have shape \(4,\)"):
        jaxsym.partial_average(f, group, jnp.ones(3))
    with pytest.raises(ValueError, match="non-negative with a positive sum"):
        jaxsym.partial_average(f, group, jnp.array([1.0, -1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="positive sum"):
        jaxsym.partial_average(f, group, jnp.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        jaxsym.partial_average(f, group, jnp.array([1.0, jnp.nan, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"R\^2"):
        jaxsym.symmetrize(f, group)(jnp.zeros((3, 5, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        jaxsym.symmetrize(f, group)(x.at[0, 0, 0].set(jnp.nan))
    with pytest.raises(ValueError, match="chunk_size"):
        jaxsym.symmetrize(f, group, chunk_size=0)
    with pytest.raises(ValueError, match="on a batch of 7 examples it returned"):
        jaxsym.symmetrize(lambda x: jnp.sum(x), group)(x)
    with pytest.raises(TypeError, match="group must be a jaxsym group"):
        jaxsym.symmetrize(f, "C4")
    with pytest.raises(TypeError, match="group must be a jaxsym group"):
        jaxsym.dial(f, jnp.eye(2)[None], 0.5)
    with pytest.raises(TypeError, match="f must be callable"):
        jaxsym.partial_average("model", group)
    with pytest.raises(TypeError, match="returned a tuple"):
        jaxsym.symmetrize(lambda z: (f(z), f(z)), group)(x)
    with pytest.raises(ValueError, match=r"t must be a scalar; got shape \(2,\)"):
        jaxsym.dial(f, group, jnp.array([0.2, 0.4]))
    fixed = lambda z: f(z)[:7]  # noqa: E731  (works only at the user's batch size)
    with pytest.raises(ValueError, match=r"28 rows \(4 group elements × 7 examples of x\)"):
        jaxsym.symmetrize(fixed, group, chunk_size=4)(x)


def test_output_action_mismatch_names_the_action_and_both_shapes():
    group = groups.cyclic_rotations(8).equivariant()
    x = jax.random.normal(jax.random.key(0), (4, 3, 2))
    three = lambda z: z.reshape(len(z), -1)[:, :3]  # noqa: E731
    pattern = r"outputs of shape \(3,\).*output action of C8 \(rotation/reflection.*R\^2.*\(3,\)"
    for make in (
        lambda: jaxsym.symmetrize(three, group),
        lambda: jaxsym.dial(three, group, 0.5),
        lambda: jaxsym.partial_average(three, group, jnp.arange(1.0, 9.0)),
    ):
        with pytest.raises(ValueError, match=pattern):
            make()(x)
    permuted = groups.permutations(3).equivariant()  # a gather would silently clip indices
    with pytest.raises(ValueError, match=r"output action of S3 \(permutations.*k=3"):
        jaxsym.symmetrize(lambda z: z.reshape(len(z), -1)[:, :2], permuted)(x[:, :, :])


def test_weighted_average_of_an_integer_valued_model_is_float():
    """Integer weights and an integer-valued model: floats, equal to the uniform average."""
    group = groups.cyclic_rotations(4)
    x = jax.random.normal(jax.random.key(2), (6, 5, 2))

    def counts(z):  # points in the upper half plane, an integer per example
        return jnp.sum(z[..., 1] > 0, axis=-1, keepdims=True).astype(jnp.int32)

    expected = np.mean(
        [
            np.asarray(counts(jax.vmap(group.act_in, in_axes=(None, 0))(group.element(i), x)))
            for i in range(4)
        ],
        axis=0,
    )
    for averaged in (
        jaxsym.symmetrize(counts, group),
        jaxsym.partial_average(counts, group),
        jaxsym.partial_average(counts, group, jnp.array([2, 2, 2, 2])),
        jaxsym.partial_average(counts, group, np.ones(4, np.int64)),
    ):
        y = averaged(x)
        assert jnp.issubdtype(y.dtype, jnp.floating)
        np.testing.assert_allclose(y, expected, rtol=1e-6)
    assert np.any(expected != np.round(expected))  # a fractional average, not a cast


def test_integer_inputs_are_promoted_before_the_group_acts():
    group = groups.cyclic_rotations(8)
    f, x = _model_and_batch(group, (5, 2), seed=11)
    x_int = jnp.round(4 * x).astype(jnp.int32)
    np.testing.assert_allclose(
        jaxsym.symmetrize(f, group)(x_int),
        _brute_force_average(f, group, x_int.astype(jnp.float32)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_bfloat16_average_accumulates_in_float32():
    """A bf16 model averaged over C16: the float32 mean of its bf16 outputs, rounded once."""
    group = groups.cyclic_rotations(16)
    f, x = _model_and_batch(group, (5, 2), seed=12, out_dim=4, batch=16)
    half = lambda z: (10.0 + f(z)).astype(jnp.bfloat16)  # noqa: E731  (offset: rounding matters)
    outputs = np.stack(
        [
            np.asarray(
                half(jax.vmap(group.act_in, in_axes=(None, 0))(group.element(i), x)), np.float32
            )
            for i in range(group.size)
        ]
    )
    expected = jnp.asarray(outputs.mean(0)).astype(jnp.bfloat16)
    got = jaxsym.symmetrize(half, group)(x)
    assert got.dtype == jnp.bfloat16
    # Within one bfloat16 spacing (≤ |v|·2⁻⁷): the stacked call and the float32 sum may
    # round differently on another CPU. Averaging in bfloat16 would be several spacings off.
    got, expected = np.asarray(got, np.float32), np.asarray(expected, np.float32)
    assert np.all(np.abs(got - expected) <= np.abs(expected) * 2.0**-7)


def test_traced_level_is_allowed_and_concrete_one_is_checked():
    group = groups.cyclic_rotations(4)
    f, x = _model_and_batch(group, (5, 2), seed=13)
    q = _brute_force_average(f, group, x)
    dialed = jax.jit(lambda t: jaxsym.dial(f, group, t)(x))
    np.testing.assert_allclose(dialed(0.75), q + 0.75 * (f(x) - q), rtol=1e-5, atol=1e-6)
    # Traced out-of-range levels are not checked by default (documented); checkify catches them.
    from jax.experimental import checkify

    checked = checkify.checkify(lambda t: jaxsym.dial(f, group, t)(x), errors=checkify.user_checks)
    error, _ = jax.jit(checked)(1.5)
    with pytest.raises(checkify.JaxRuntimeError, match=r"t must be in \[0, 1\]"):
        error.throw()
