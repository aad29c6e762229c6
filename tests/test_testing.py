"""assert_equivariant: profiles checked against brute force, readable failures, dtypes."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import brute_force_defects, enable_x64, random_mlp

import jaxsym
from jaxsym import groups
from jaxsym.testing import EquivarianceProfile, assert_equivariant, default_tolerance


def _normal(seed, shape, dtype=jnp.float32):
    """Standard normal test data from NumPy (no PRNG compile per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


@pytest.fixture(scope="module")
def planar():
    x = _normal(0, (24, 4, 2))
    f, _, _ = random_mlp(jax.random.key(1), 8, 2)
    return f, x


def test_passes_for_the_group_average_and_returns_the_profile(planar):
    f, x = planar
    c8 = groups.cyclic_rotations(8)
    profile = assert_equivariant(jaxsym.symmetrize(f, c8), x, c8)
    assert isinstance(profile, EquivarianceProfile)
    assert profile.abs_defect.shape == profile.rel_defect.shape == (8,)
    assert profile.worst_example.shape == (8,)
    assert np.all(profile.abs_defect <= profile.tolerance)
    assert profile.atol == profile.rtol == pytest.approx(np.finfo(np.float32).eps ** 0.75)
    scale = np.linalg.norm(np.asarray(jaxsym.symmetrize(f, c8)(x)), axis=1).max()
    assert profile.scale == pytest.approx(scale, rel=1e-6)
    assert profile.tolerance == pytest.approx(profile.atol + profile.rtol * scale)


def test_profile_of_a_loose_check_matches_brute_force(planar):
    f, x = planar
    c8 = groups.cyclic_rotations(8)
    profile = assert_equivariant(f, x, c8, atol=100.0)
    defects = brute_force_defects(f, x, c8)
    expected = defects.max(1)
    np.testing.assert_allclose(profile.abs_defect, expected, rtol=1e-4, atol=1e-6)
    # The reported example attains the maximum (a near-tie may pick either, on any CPU).
    attained = defects[np.arange(c8.size), np.asarray(profile.worst_example)]
    np.testing.assert_allclose(attained, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(profile.rel_defect, expected / profile.scale, rtol=1e-4, atol=1e-6)
    assert profile.abs_defect[0] == 0.0


def test_failure_names_each_element_its_defects_and_worst_example(planar):
    f, x = planar
    c8 = groups.cyclic_rotations(8)
    defects = brute_force_defects(f, x, c8)
    expected = defects.max(1)
    with pytest.raises(AssertionError) as info:
        assert_equivariant(f, x, c8)
    message = str(info.value)
    assert "not invariant under C8" in message
    assert "7 of 8 elements" in message
    line = next(row for row in message.splitlines() if "element 1:" in row)
    assert "rotation by 45°" in line
    worst = int(re.search(r"worst at example (\d+)", line).group(1))
    assert defects[1, worst] == pytest.approx(expected[1], rel=1e-4)
    reported = float(re.search(r"defect ([0-9.e+-]+)", line).group(1))
    assert reported == pytest.approx(expected[1], rel=1e-3)
    relative = float(re.search(r"relative ([0-9.e+-]+)", line).group(1))
    scale = np.linalg.norm(np.asarray(f(x)), axis=1).max()
    assert relative == pytest.approx(expected[1] / scale, rel=1e-3)
    assert "element 0:" not in message  # the identity passes


def test_equivariant_outputs_and_permutations():
    x = _normal(2, (5, 4, 3))
    s4 = groups.permutations(4).equivariant()
    assert_equivariant(lambda z: jnp.tanh(z) * 2.0, x, s4)  # elementwise: equivariant
    w = _normal(3, (4, 4))
    with pytest.raises(AssertionError, match=r"not equivariant under S4.*\n.*permutation \["):
        assert_equivariant(lambda z: jnp.einsum("ij,bjk->bik", w, z), x, s4)


def test_report_is_capped_at_ten_elements(planar):
    f, x = planar
    c36 = groups.cyclic_rotations(36)
    with pytest.raises(AssertionError) as info:
        assert_equivariant(f, x, c36)
    message = str(info.value)
    assert "35 of 36 elements" in message
    assert sum(row.lstrip().startswith("element ") for row in message.splitlines()) == 10
    assert "and 25 more failing elements" in message
    defects = [float(v) for v in re.findall(r": defect ([0-9.e+-]+)", message)]
    assert defects == sorted(defects, reverse=True)  # worst first


def test_fails_on_nan_outputs_on_the_original_inputs():
    x = jnp.ones((4, 3, 2))
    with pytest.raises(AssertionError, match=r"non-finite.*original inputs"):
        assert_equivariant(lambda z: jnp.full((z.shape[0], 1), jnp.nan), x, groups.dihedral(3))
    with pytest.raises(AssertionError, match=r"non-finite.*original inputs"):
        assert_equivariant(
            lambda z: jnp.sum(z, axis=(1, 2))[:, None] / 0.0, x, groups.cyclic_rotations(4)
        )


def test_fails_on_nan_outputs_on_transformed_inputs_only():
    # sqrt(z_0 − z_1) is finite on x (first item larger) and NaN once 0 and 1 swap.
    x = jnp.stack([jnp.full((6, 2), 2.0), jnp.ones((6, 2)), jnp.zeros((6, 2))], axis=1)

    def f(z):
        return jnp.sqrt(z[:, 0, :] - z[:, 1, :])

    with pytest.raises(AssertionError, match=r"non-finite.*transformed inputs") as info:
        assert_equivariant(f, x, groups.permutations(3))
    assert "permutation [" in str(info.value)


def test_default_tolerances_follow_the_dtype():
    assert default_tolerance(jnp.float64) == pytest.approx(1.82e-12, rel=0.01)
    assert default_tolerance(jnp.float32) == pytest.approx(6.4e-6, rel=0.01)
    assert default_tolerance(jnp.float16) > default_tolerance(jnp.float32)
    assert default_tolerance(jnp.bfloat16) > default_tolerance(jnp.float16)
    assert default_tolerance(jnp.int32) == default_tolerance(jnp.float32)


def _norm_model(eps):
    def f(z):
        squares = jnp.sum(z.reshape(z.shape[0], -1) ** 2, axis=-1, keepdims=True)
        return squares + eps * z[:, 0, :1]  # a defect of order eps

    return f


def test_a_1e9_defect_fails_in_float64_and_passes_in_float32():
    with enable_x64():
        c8 = groups.cyclic_rotations(8)
        x = _normal(4, (8, 3, 2), jnp.float64)
        profile = assert_equivariant(_norm_model(0.0), x, c8)  # tight default passes
        assert profile.tolerance < 1e-10
        assert profile.abs_defect.max() <= 1e-12
        with pytest.raises(AssertionError, match="not invariant"):
            assert_equivariant(_norm_model(1e-9), x, c8)
        q = assert_equivariant(jaxsym.symmetrize(_norm_model(1e-9), c8), x, c8)
        assert q.abs_defect.max() < 1e-12
    c8 = groups.cyclic_rotations(8)
    x32 = _normal(4, (8, 3, 2))
    profile = assert_equivariant(_norm_model(1e-9), x32, c8)
    assert profile.atol == pytest.approx(6.4e-6, rel=0.01)


def test_integer_inputs_match_float_inputs():
    x = jnp.asarray((np.arange(48) % 7 - 3).reshape(8, 3, 2), jnp.int32)
    c8 = groups.cyclic_rotations(8)
    f = _norm_model(0.01)
    loose_int = assert_equivariant(f, x, c8, atol=10.0)
    loose_float = assert_equivariant(f, x.astype(jnp.float32), c8, atol=10.0)
    np.testing.assert_array_equal(loose_int.abs_defect, loose_float.abs_defect)
    assert loose_int.abs_defect[1] > 1e-3  # the rotations were not rounded to integers


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), [1e-3, 1e-3]])
@pytest.mark.parametrize("name", ["atol", "rtol"])
def test_bad_tolerances_are_named(name, bad):
    x = jnp.ones((2, 3, 2))
    with pytest.raises(ValueError, match=name):
        assert_equivariant(_norm_model(0.0), x, groups.cyclic_rotations(4), **{name: bad})


def test_bad_arguments():
    x = jnp.ones((2, 3, 2))
    with pytest.raises(TypeError, match="group"):
        assert_equivariant(_norm_model(0.0), x, "C4")
    with pytest.raises(TypeError, match=r"group comes after the data.*C4"):
        assert_equivariant(_norm_model(0.0), groups.cyclic_rotations(4), x)
    with pytest.raises(TypeError, match="f must be callable"):
        assert_equivariant(3, x, groups.cyclic_rotations(4))
    with pytest.raises(ValueError, match="non-finite"):
        assert_equivariant(_norm_model(0.0), x.at[0].set(jnp.nan), groups.cyclic_rotations(4))
