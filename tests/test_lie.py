"""Lie derivatives against central finite differences of the finite actions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import blob, random_cnn, random_mlp

import jaxsym
from jaxsym import groups
from jaxsym.groups.images import bilinear_sample
from jaxsym.lie import IMAGE_GENERATORS, image_tangent

ROTATION = jnp.asarray([[0.0, -1.0], [1.0, 0.0]])


def _images():
    return jnp.stack([blob(12, (2.0, -1.0), 2.0), blob(12, (-1.5, 2.5), 1.8)])[..., None]


def _moved(group, element, x):
    return jax.vmap(group.act_in, in_axes=(None, 0))(element, x)


def _finite_difference(f, x, move, t=1e-3):
    """``‖(f(move(t)) − f(move(−t))) / 2t‖`` per example."""
    diff = (f(move(t)) - f(move(-t))) / (2 * t)
    return np.linalg.norm(np.asarray(diff).reshape(x.shape[0], -1), axis=-1)


def _scale(x, t):
    """``x(e^{−t} p)`` by bilinear sampling (an independent finite scaling)."""
    size = x.shape[1]
    r = (jnp.arange(size) - (size - 1) / 2) * math.exp(-t) + (size - 1) / 2
    rows, cols = jnp.meshgrid(r, r, indexing="ij")
    return jax.vmap(lambda image: bilinear_sample(image, rows, cols))(x)


@pytest.mark.slow
@pytest.mark.parametrize("generator", ["rotation", "translate_x", "translate_y", "scale"])
def test_image_generators_match_finite_differences(generator):
    f, _, _ = random_cnn(jax.random.key(0), size=12)
    x = _images()
    rotations = groups.image_rotations(1)
    shifts = groups.image_translations([[1.0, 0.0]])
    moves = {
        "rotation": lambda t: _moved(rotations, jnp.float32(t), x),
        "translate_y": lambda t: _moved(shifts, jnp.asarray([t, 0.0], jnp.float32), x),
        "translate_x": lambda t: _moved(shifts, jnp.asarray([0.0, t], jnp.float32), x),
        "scale": lambda t: _scale(x, t),
    }
    expected = _finite_difference(f, x, moves[generator])
    ours = np.asarray(jaxsym.lie_derivative(f, x, generator))
    assert np.all(expected > 1e-3)  # a non-invariant model
    np.testing.assert_allclose(ours, expected, rtol=0.05)


@pytest.mark.slow
def test_image_tangent_is_the_central_difference_of_the_action():
    x = _images()[..., 0]  # (B, H, W) images work too
    t = 1e-3
    rotations = groups.image_rotations(1)
    fd = (_moved(rotations, jnp.float32(t), x) - _moved(rotations, jnp.float32(-t), x)) / (2 * t)
    tangent = image_tangent(x, "rotation")
    assert tangent.shape == x.shape
    assert float(jnp.abs(fd - tangent).max()) < 0.01 * float(jnp.abs(fd).max())


def test_matrix_generator_matches_finite_differences_on_points():
    f, _, _ = random_mlp(jax.random.key(1), 10, 3)
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 5, 2)), jnp.float32)
    rotation = groups.planar.rotation_matrices

    def move(t):
        return x @ jnp.asarray(rotation([t])[0], jnp.float32).T

    expected = _finite_difference(f, x, move)
    np.testing.assert_allclose(jaxsym.lie_derivative(f, x, ROTATION), expected, rtol=0.05)


def test_invariant_radial_model_has_zero_lie_derivative():
    x = jnp.asarray(np.random.default_rng(1).standard_normal((6, 4, 3)), jnp.float32)

    def radial(z):  # a function of the points' norms only: SO(3) invariant
        return jnp.tanh(jnp.linalg.norm(z, axis=-1) @ jnp.ones((4, 2)))

    a = np.random.default_rng(2).standard_normal((3, 3))
    generator = jnp.asarray(a - a.T, jnp.float32)  # any element of so(3)
    assert float(jnp.max(jaxsym.lie_derivative(radial, x, generator))) < 1e-5
    f, _, _ = random_mlp(jax.random.key(2), 12, 2)
    assert float(jnp.min(jaxsym.lie_derivative(f, x, generator))) > 1e-3


def test_equivariant_outputs_subtract_the_output_generator():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((5, 6, 2)), jnp.float32)

    def equivariant(z):  # each point scaled by a function of its norm: SO(2) equivariant
        return z * jnp.tanh(jnp.linalg.norm(z, axis=-1, keepdims=True))

    assert (
        float(jnp.max(jaxsym.lie_derivative(equivariant, x, ROTATION, output_generator=ROTATION)))
        < 1e-5
    )
    assert float(jnp.min(jaxsym.lie_derivative(equivariant, x, ROTATION))) > 1e-2
    images = _images()
    pixelwise = lambda z: 3.0 * z  # noqa: E731  (image-valued, commutes with the action)
    lie = jaxsym.lie_derivative(pixelwise, images, "rotation", output_generator="rotation")
    assert float(jnp.max(lie)) < 1e-5
    assert float(jnp.min(jaxsym.lie_derivative(pixelwise, images, "rotation"))) > 1e-2


@pytest.mark.slow
def test_dial_interpolates_the_lie_derivative():
    """C4 averaging leaves an infinitesimal rotation defect; the dial mixes the two linearly."""
    f, _, _ = random_cnn(jax.random.key(3), size=12)
    x = _images()
    plain = jaxsym.lie_derivative(f, x, "rotation")
    half = jaxsym.lie_derivative(jaxsym.dial(f, groups.rot90(), 0.5), x, "rotation")
    symmetric = jaxsym.lie_derivative(jaxsym.symmetrize(f, groups.rot90()), x, "rotation")
    # The dial: L(f_t) = L(Q f) + t (L(f) − L(Q f)) (linear in f).
    full = jax.jvp(f, (x,), (image_tangent(x, "rotation"),))[1]
    sym = jax.jvp(jaxsym.symmetrize(f, groups.rot90()), (x,), (image_tangent(x, "rotation"),))[1]
    expected = np.linalg.norm(np.asarray(sym + 0.5 * (full - sym)), axis=-1)
    np.testing.assert_allclose(half, expected, rtol=1e-4)
    assert np.all(np.asarray(symmetric) > 0) and np.all(np.asarray(plain) > 0)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_jit_vmap_and_grad_wrt_parameters():
    _, params, net = random_cnn(jax.random.key(4), size=12)
    x = _images()

    def penalty(p):
        return jnp.sum(jaxsym.lie_derivative(lambda z: net(p, z), x, "rotation") ** 2)

    value = penalty(params)
    np.testing.assert_allclose(jax.jit(penalty)(params), value, rtol=1e-5)
    grads = jax.grad(penalty)(params)
    direction = jax.tree_util.tree_map(
        lambda leaf: jnp.asarray(np.random.default_rng(5).standard_normal(leaf.shape), leaf.dtype),
        params,
    )
    eps = 1e-3
    plus = penalty(jax.tree_util.tree_map(lambda p, d: p + eps * d, params, direction))
    minus = penalty(jax.tree_util.tree_map(lambda p, d: p - eps * d, params, direction))
    fd = (plus - minus) / (2 * eps)
    analytic = sum(
        jnp.vdot(g, d)
        for g, d in zip(
            jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(direction), strict=True
        )
    )
    np.testing.assert_allclose(analytic, fd, rtol=0.02)
    stacked = jax.tree_util.tree_map(lambda leaf: jnp.stack([leaf, 2 * leaf]), params)
    batched = jax.vmap(penalty)(stacked)
    np.testing.assert_allclose(batched[0], value, rtol=1e-5)


def test_gradient_is_finite_where_the_lie_derivative_vanishes():
    x = jnp.asarray(np.random.default_rng(6).standard_normal((3, 4, 2)), jnp.float32)

    def loss(scale):
        model = lambda z: scale * jnp.linalg.norm(z, axis=-1)  # noqa: E731
        return jnp.sum(jaxsym.lie_derivative(model, x, ROTATION))

    assert bool(jnp.isfinite(jax.grad(loss)(1.0)))


def test_bad_generators_raise_clear_errors():
    f = lambda z: z.reshape(z.shape[0], -1)[:, :2]  # noqa: E731
    points = jnp.ones((2, 5, 2))
    with pytest.raises(ValueError, match=r"\(2, 2\) matrix.*shape \(3, 3\)"):
        jaxsym.lie_derivative(f, points, jnp.eye(3))
    with pytest.raises(ValueError, match=r"shape \(2, 3\)"):
        jaxsym.lie_derivative(f, points, jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="generator must be one of"):
        jaxsym.lie_derivative(f, jnp.ones((2, 4, 4)), "shear")
    with pytest.raises(ValueError, match="acts on images"):
        jaxsym.lie_derivative(f, jnp.ones((2, 5)), "rotation")
    with pytest.raises(ValueError, match="output_generator"):
        jaxsym.lie_derivative(f, points, ROTATION, output_generator=jnp.eye(3))
    with pytest.raises(ValueError, match="non-finite"):
        jaxsym.lie_derivative(f, points.at[0, 0, 0].set(jnp.nan), ROTATION)


# ----------------------------------------------------------------------------- layouts


def test_lie_derivative_agrees_across_layouts():
    x = jnp.stack([blob(12, (2.0, -1.0), 2.0, 2), blob(12, (-1.5, 2.5), 1.8, 2)])  # (B, H, W, C)
    x_first = jnp.moveaxis(x, -1, 1)  # (B, C, H, W)
    weights = jnp.asarray(np.random.default_rng(30).standard_normal((12 * 12 * 2, 3)) / 17)

    def f_last(z):  # a fixed linear map on flattened channels-last images
        return z.reshape(z.shape[0], -1) @ weights.astype(z.dtype)

    def f_first(z):  # the same model, fed channels-first images
        return f_last(jnp.moveaxis(z, 1, -1))

    def tangents(layout):  # every named generator, in one compiled call
        return jax.jit(lambda z: [image_tangent(z, g, layout=layout) for g in IMAGE_GENERATORS])

    pairs = zip(tangents("channels_first")(x_first), tangents("channels_last")(x), strict=True)
    for first, last in pairs:
        np.testing.assert_array_equal(first, jnp.moveaxis(last, -1, 1))  # last, transposed
    lie = jax.jit(jaxsym.lie_derivative, static_argnums=(0, 2), static_argnames="layout")
    last = np.asarray(lie(f_last, x, "rotation"))
    ours = lie(f_first, x_first, "rotation", layout="channels_first")
    np.testing.assert_allclose(ours, last, rtol=1e-5)
    assert np.all(last > 1e-3)  # not invariant: the comparison is not 0 = 0
    # Independent: central finite differences of the channels-first rotation set.
    rotations = groups.image_rotations(1, layout="channels_first")
    moved = jax.jit(_moved)
    expected = _finite_difference(
        f_first, x_first, lambda t: moved(rotations, jnp.float32(t), x_first)
    )
    np.testing.assert_allclose(ours, expected, rtol=0.05)


def test_image_valued_outputs_follow_the_layout():
    x_first = jnp.moveaxis(_images(), -1, 1)  # (B, 1, H, W)
    mix = jnp.asarray([[1.0], [-0.5]])

    def channel_mix(z):  # (B, 1, H, W) -> (B, 2, H, W): commutes with moving pixels
        return jnp.einsum("bchw,dc->bdhw", z, mix)

    @jax.jit
    def both(z):  # one compiled call (eager ops are slow on CPU)
        kwargs = {"layout": "channels_first"}
        equivariant = jaxsym.lie_derivative(
            channel_mix, z, "rotation", output_generator="rotation", **kwargs
        )
        return equivariant, jaxsym.lie_derivative(channel_mix, z, "rotation", **kwargs)

    equivariant, plain = both(x_first)
    assert float(jnp.max(equivariant)) < 1e-5
    assert float(jnp.min(plain)) > 1e-2


def test_lie_derivative_refuses_the_other_layout_naming_the_argument():
    def f(z):
        return z.reshape(z.shape[0], -1)[:, :2]

    with pytest.raises(
        ValueError, match=r"\(1, 12, 12\), which looks channels-first.*pass layout='channels_first'"
    ):
        jaxsym.lie_derivative(f, jnp.ones((2, 1, 12, 12)), "rotation")
    with pytest.raises(
        ValueError, match=r"\(12, 12, 3\), which looks channels-last.*pass layout='channels_last'"
    ):
        jaxsym.lie_derivative(f, jnp.ones((2, 12, 12, 3)), "translate_x", layout="channels_first")
    with pytest.raises(ValueError, match=r"f\(x\).*looks channels-first.*layout='channels_first'"):
        jaxsym.lie_derivative(
            lambda z: jnp.moveaxis(z, -1, 1),  # channels-last in, channels-first out
            jnp.ones((2, 12, 12, 1)),
            "rotation",
            output_generator="rotation",
        )
    with pytest.raises(ValueError, match="layout must be one of"):
        jaxsym.lie_derivative(f, jnp.ones((2, 12, 12, 3)), "rotation", layout="NHWC")
    flat = _images()[..., 0]  # (B, H, W) fits both layouts, with one result
    model = lambda z: z.reshape(z.shape[0], -1)[:, ::7]  # noqa: E731
    np.testing.assert_array_equal(
        jaxsym.lie_derivative(model, flat, "rotation"),
        jaxsym.lie_derivative(model, flat, "rotation", layout="channels_first"),
    )


# ----------------------------------------------------------------------------- output dtypes


@pytest.mark.parametrize(
    "f",
    [
        lambda z: jnp.argmax(z.reshape(z.shape[0], -1), axis=1),  # class indices (int32)
        lambda z: z.reshape(z.shape[0], -1) > 0.5,  # a threshold (bool)
        lambda z: jnp.round(z.reshape(z.shape[0], -1)).astype(jnp.int8),  # quantized (int8)
    ],
    ids=["argmax", "bool", "int8"],
)
@pytest.mark.parametrize("jit", [False, True])
def test_integer_and_boolean_outputs_are_refused_before_differentiating(f, jit):
    x = _images()
    calls = []

    def counted(z):
        calls.append(z)
        return f(z)

    def run(z):
        return jaxsym.lie_derivative(counted, z, "rotation")

    with pytest.raises(TypeError, match="f must return floating-point outputs") as info:
        jax.jit(run)(x) if jit else run(x)
    dtype = jax.eval_shape(f, x).dtype  # independent: what f really returns
    assert not jnp.issubdtype(dtype, jnp.inexact) and str(dtype) in str(info.value)
    assert len(calls) == 1  # traced once for its output type; no JVP was taken


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("generator", None),
        ("generator", object()),
        ("generator", 2.5),
        ("output_generator", object()),  # None there is invariance, a valid choice
        ("output_generator", 2.5),
    ],
)
def test_a_missing_or_odd_generator_lists_the_valid_ones(name, value):
    x = _images()
    kwargs = {"generator": "rotation", name: value}
    with pytest.raises(TypeError) as info:
        jaxsym.lie_derivative(lambda z: z.sum(axis=(1, 2)), x, **kwargs)
    message = str(info.value)
    assert message.startswith(f"{name} must be one of")
    assert (
        all(generator in message for generator in IMAGE_GENERATORS) and "(d, d) matrix" in message
    )


def test_an_unknown_generator_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="generator must be one of") as info:
        jaxsym.lie_derivative(lambda z: z.sum(axis=(1, 2)), _images(), "rotate")
    assert all(generator in str(info.value) for generator in IMAGE_GENERATORS)
