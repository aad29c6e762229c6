"""Groups: axioms through their actions, isometry, Haar sampling, errors."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsym import groups


def _act(group, index, x):
    return group.act_in(group.element(index), x)


def test_identity_is_element_zero(finite_group):
    group, shape = finite_group
    x = jax.random.normal(jax.random.key(0), shape)
    np.testing.assert_array_equal(_act(group, 0, x), x)


def test_closure_inverse_and_associativity_through_actions(finite_group):
    group, shape = finite_group
    x = jax.random.normal(jax.random.key(1), shape)
    table = groups.cayley_table(group)  # raises if not closed
    inverses = groups.inverse_indices(group)
    n = group.size
    for a, b in itertools.product(range(n), repeat=2):
        composed = group.act_in(group.compose(group.element(a), group.element(b)), x)
        np.testing.assert_allclose(composed, _act(group, a, _act(group, b, x)), atol=1e-5)
        np.testing.assert_allclose(_act(group, table[a, b], x), composed, atol=1e-5)
    for a in range(n):
        np.testing.assert_allclose(_act(group, inverses[a], _act(group, a, x)), x, atol=1e-5)
        assert table[a, inverses[a]] == 0
    for a, b, c in itertools.islice(itertools.product(range(n), repeat=3), 200):
        assert table[table[a, b], c] == table[a, table[b, c]]
    # The action is faithful on a random input: distinct elements act differently.
    images = np.stack([np.asarray(_act(group, i, x)).ravel() for i in range(n)])
    assert len({row.round(4).tobytes() for row in images}) == n


def test_actions_are_isometries(finite_group):
    group, shape = finite_group
    x = jax.random.normal(jax.random.key(2), (3, *shape))
    moved = groups.transform_batch(group, group.elements, x)
    np.testing.assert_allclose(
        jnp.linalg.norm(moved.reshape(group.size, 3, -1), axis=-1),
        jnp.broadcast_to(jnp.linalg.norm(x.reshape(3, -1), axis=-1), (group.size, 3)),
        rtol=1e-5,
    )


def test_group_orders():
    assert groups.cyclic_rotations(7).size == 7
    assert groups.dihedral(5).size == 10
    assert groups.rot90().size == 4
    assert groups.flip_rot90().size == 8
    assert groups.permutations(5).size == 120
    assert groups.cyclic_shifts(9).size == 9
    assert groups.so2(16).size == 16


def test_image_actions_match_numpy_rot90_and_flips():
    x = np.arange(25.0).reshape(5, 5)
    produced = {np.asarray(_act(groups.flip_rot90(), i, x)).tobytes() for i in range(8)}
    expected = {np.rot90(y, k).tobytes() for y in (x, x[::-1]) for k in range(4)}
    assert produced == expected
    np.testing.assert_array_equal(_act(groups.rot90(), 1, x), np.rot90(x))


def test_permutation_and_shift_actions_match_numpy():
    x = np.arange(12.0).reshape(4, 3)
    produced = {np.asarray(_act(groups.permutations(4), i, x)).tobytes() for i in range(24)}
    expected = {x[list(p)].tobytes() for p in itertools.permutations(range(4))}
    assert produced == expected
    y = np.arange(6.0)
    for s in range(6):
        np.testing.assert_array_equal(_act(groups.cyclic_shifts(6), s, y), np.roll(y, s))


def test_groups_pass_through_jit_without_retracing():
    traces = []

    @jax.jit
    def act_all(group, x):
        traces.append(1)
        return groups.transform_batch(group, group.elements, x)

    x = jnp.ones((2, 3, 2))
    act_all(groups.cyclic_rotations(6), x)
    act_all(groups.so2(6), x)  # same structure and static fields up to the name
    act_all(groups.cyclic_rotations(6), x + 1)
    assert len(traces) <= 2


def test_so3_is_a_haar_sample():
    sample = groups.so3(20001, key=jax.random.key(0))
    mats = np.asarray(sample.elements[1:], dtype=np.float64)
    np.testing.assert_allclose(
        mats @ np.swapaxes(mats, 1, 2), np.broadcast_to(np.eye(3), mats.shape), atol=1e-5
    )
    np.testing.assert_allclose(np.linalg.det(mats), 1.0, atol=1e-5)
    # Haar: E[R] = 0 and E[tr R] = 0, E[(tr R)^2] = 1 (character orthogonality).
    assert np.abs(mats.mean(0)).max() < 0.03
    traces = np.trace(mats, axis1=1, axis2=2)
    assert abs(traces.mean()) < 0.03
    assert abs((traces**2).mean() - 1.0) < 0.05
    np.testing.assert_array_equal(sample.elements[0], np.eye(3))
    assert not sample.is_group


def test_rotation_range_is_a_symmetric_subset_with_identity():
    subset = groups.rotation_range(np.pi / 6, 7)
    mats = np.asarray(subset.elements)
    angles = np.arctan2(mats[:, 1, 0], mats[:, 0, 0])
    assert angles[0] == 0.0
    np.testing.assert_allclose(np.sort(angles), np.linspace(-np.pi / 6, np.pi / 6, 7), atol=1e-6)
    assert not subset.is_group
    inverses = groups.inverse_indices(subset)  # symmetric: inverses are in the set
    assert sorted(inverses.tolist()) == list(range(7))
    with pytest.raises(ValueError, match="not closed"):
        groups.cayley_table(subset)


def test_subset_by_indices_and_mask():
    group = groups.cyclic_rotations(8)
    by_index = group.subset([0, 2, 4, 6])
    by_mask = group.subset(np.arange(8) % 2 == 0)
    np.testing.assert_array_equal(by_index.elements, by_mask.elements)
    assert by_index.size == 4 and not by_index.is_group
    groups.cayley_table(by_index)  # C4 inside C8 is closed
    with pytest.raises(ValueError, match="empty"):
        group.subset(np.zeros(8, bool))
    with pytest.raises(ValueError, match="shape"):
        group.subset(np.ones(3, bool))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        group.subset([0, 8])


def test_output_actions():
    group = groups.cyclic_rotations(4)
    assert group.is_invariant
    y = jnp.array([1.0, 0.0])
    g = group.element(1)
    np.testing.assert_array_equal(group.act_out(g, y), y)
    np.testing.assert_allclose(group.equivariant().act_out(g, y), [0.0, 1.0], atol=1e-6)
    custom = group.with_output_action(lambda e, y: -y)
    np.testing.assert_array_equal(custom.act_out(g, y), -y)
    assert custom.equivariant().invariant().is_invariant
    with pytest.raises(TypeError, match="callable"):
        group.with_output_action(3)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: groups.cyclic_rotations(0), "n must be at least 1"),
        (lambda: groups.dihedral(-2), "n must be at least 1"),
        (lambda: groups.cyclic_rotations(2.5), "integer"),
        (lambda: groups.permutations(9), "random_permutations"),
        (lambda: groups.permutations(0), "k must be at least 1"),
        (lambda: groups.cyclic_shifts(0), "n must be at least 1"),
        (lambda: groups.so2(0), "num must be at least 1"),
        (lambda: groups.rotation_range(0.5, 4), "odd"),
        (lambda: groups.rotation_range(-0.1, 5), "max_angle"),
        (lambda: groups.rotation_range(4.0, 5), "max_angle"),
    ],
)
def test_constructors_reject_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


@pytest.mark.parametrize(
    ("group", "shape", "match"),
    [
        (groups.cyclic_rotations(4), (3, 5, 3), "R\\^2"),
        (groups.so3(3, key=jax.random.key(0)), (3, 2), "R\\^3"),
        (groups.rot90(), (3, 4, 5), "square"),
        (groups.permutations(3), (3, 4, 2), "size 3"),
        (groups.cyclic_shifts(5), (2, 4), "size 5"),
    ],
)
def test_inputs_the_group_cannot_act_on(group, shape, match):
    with pytest.raises(ValueError, match=match):
        group.check_inputs(jnp.zeros(shape))


def test_random_permutations_are_permutations():
    sample = groups.random_permutations(12, 50, key=jax.random.key(3))
    perms = np.asarray(sample.elements)
    assert perms.shape == (50, 12)
    np.testing.assert_array_equal(np.sort(perms, axis=1), np.broadcast_to(np.arange(12), (50, 12)))
    np.testing.assert_array_equal(perms[0], np.arange(12))
