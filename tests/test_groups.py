"""Groups: axioms through their actions, isometry, Haar sampling, errors."""

from __future__ import annotations

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import enable_x64

import jaxsym
from jaxsym import groups


def _normal(seed, shape, dtype=jnp.float32):
    """Standard normal test data from NumPy (no PRNG compile per shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _act(group, index, x):
    return group.act_in(group.element(index), x)


def test_identity_is_element_zero(finite_group):
    group, shape = finite_group
    x = jax.random.normal(jax.random.key(0), shape)
    np.testing.assert_array_equal(_act(group, 0, x), x)


@pytest.mark.slow
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
    x = _normal(2, (3, *shape))
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
    act_all(groups.dihedral(3), x)  # same structure and static fields up to the name
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


# ----------------------------------------------------------------------------- dtypes


def _norm_model(x):
    """Exactly invariant under any isometry of the example: ‖x_b‖² (plus a cube)."""
    squares = jnp.sum(x.reshape(x.shape[0], -1) ** 2, axis=-1, keepdims=True)
    return squares + 0.1 * squares**1.5


def _matrix_groups():
    return {
        "C8": (groups.cyclic_rotations(8), 2),
        "D8": (groups.dihedral(8), 2),
        "SO3[16]": (groups.so3(16, key=jax.random.key(4)), 3),
    }


@pytest.mark.slow
def test_integer_inputs_are_promoted_not_the_elements():
    for name, (group, dim) in _matrix_groups().items():
        x_int = jnp.arange(-6, 6, dtype=jnp.int32).reshape(2, -1, dim)
        moved = groups.transform_batch(group, group.elements, x_int)
        assert moved.dtype == jnp.float32, name
        # Independent: NumPy float64 matrices acting on the float64 points.
        mats = np.asarray(group.elements, dtype=np.float64)
        expected = np.einsum("gij,bpj->gbpi", mats, np.asarray(x_int, dtype=np.float64))
        np.testing.assert_allclose(moved, expected, atol=1e-5, err_msg=name)
        assert np.abs(np.asarray(moved) - np.round(np.asarray(moved))).max() > 0.1, name
        as_float = groups.transform_batch(group, group.elements, x_int.astype(jnp.float32))
        np.testing.assert_array_equal(moved, as_float)
        bools = groups.transform_batch(group, group.elements, x_int > 0)
        assert bools.dtype == jnp.float32


def test_float_inputs_keep_their_precision():
    group = groups.cyclic_rotations(8)
    for dtype in (jnp.float16, jnp.bfloat16, jnp.float32):
        x = jnp.ones((2, 3, 2), dtype)
        assert groups.transform_batch(group, group.elements, x).dtype == dtype


@pytest.mark.slow
def test_x64_gives_float64_elements_and_rounding_level_defects():
    from jaxsym.defects import pointwise_defects

    defects_of = jax.jit(lambda x, group: pointwise_defects(_norm_model, x, group))
    with enable_x64():
        for name, (group, dim) in _matrix_groups().items():
            assert group.elements.dtype == jnp.float64, name
            x = _normal(5, (16, 5, dim), jnp.float64)
            assert jax.eval_shape(groups.transform_batch, group, group.elements, x).dtype == (
                jnp.float64
            )
            mats = np.asarray(group.elements)
            np.testing.assert_allclose(
                mats @ np.swapaxes(mats, 1, 2),
                np.broadcast_to(np.eye(dim), mats.shape),
                atol=1e-14,
                err_msg=name,
            )
            defects = np.asarray(defects_of(x, group))
            assert defects.shape == (group.size, 16)
            assert defects.max() <= 1e-12, (name, defects.max())
            x_int = jnp.asarray((np.arange(24) % 5 - 2).reshape(2, -1, dim))
            from_int = defects_of(x_int, group)
            np.testing.assert_array_equal(from_int, defects_of(x_int.astype(jnp.float64), group))
            assert np.asarray(from_int).max() <= 1e-12
    # Without x64 the same elements are float32 (a group is fixed when it is built).
    assert groups.cyclic_rotations(8).elements.dtype == jnp.float32


def test_gathering_actions_work_on_integer_and_boolean_inputs():
    grid = np.arange(16, dtype=np.int32).reshape(4, 4)
    produced = groups.transform_batch(groups.flip_rot90(), groups.flip_rot90().elements, grid[None])
    assert produced.dtype == jnp.int32
    expected = {np.rot90(y, k).tobytes() for y in (grid, grid[::-1]) for k in range(4)}
    assert {np.asarray(p[0]).tobytes() for p in produced} == expected
    sets = np.arange(12, dtype=np.int32).reshape(1, 4, 3)
    s4 = groups.permutations(4)
    moved = np.asarray(groups.transform_batch(s4, s4.elements, sets))
    assert moved.dtype == np.int32
    np.testing.assert_array_equal(moved[:, 0], sets[0][np.asarray(s4.elements)])
    seq = np.array([[True, False, False, True, False]])
    z5 = groups.cyclic_shifts(5)
    shifted = np.asarray(groups.transform_batch(z5, z5.elements, seq))
    assert shifted.dtype == np.bool_
    for s in range(5):
        np.testing.assert_array_equal(shifted[s, 0], np.roll(seq[0], s))


# ----------------------------------------------------------------------------- rotation_range


@pytest.mark.parametrize("max_angle", [np.pi, np.pi - 1e-9, 3.0, 2.7, 2.0, 0.3, 1e-3])
@pytest.mark.parametrize("num", [3, 5, 7, 9])
def test_rotation_range_never_repeats_a_rotation(max_angle, num):
    subset = groups.rotation_range(max_angle, num)
    mats = np.asarray(subset.elements, dtype=np.float64)
    angles = np.arctan2(mats[:, 1, 0], mats[:, 0, 0])
    assert angles[0] == 0.0 and subset.size == num
    assert np.all(np.abs(angles) <= max_angle + 1e-6)
    # Circular distance between every pair of distinct elements.
    gaps = np.abs(np.angle(np.exp(1j * (angles[:, None] - angles[None, :]))))
    np.fill_diagonal(gaps, np.inf)
    step = min(max_angle / (num // 2), 2 * np.pi / num)
    assert gaps.min() >= step * (1 - 1e-5), (gaps.min(), step)
    # Symmetric: inverses are in the set.
    assert sorted(groups.inverse_indices(subset).tolist()) == list(range(num))
    if subset.is_group:  # the whole circle: C_num, closed under composition
        groups.cayley_table(subset)
        np.testing.assert_allclose(
            np.sort(np.mod(angles, 2 * np.pi)), 2 * np.pi * np.arange(num) / num, atol=1e-6
        )


def test_rotation_range_at_pi_is_the_cyclic_group():
    subset = groups.rotation_range(np.pi, 7)
    mats = np.asarray(subset.elements, dtype=np.float64)
    angles = np.arctan2(mats[:, 1, 0], mats[:, 0, 0])
    assert not np.any(np.isclose(np.abs(angles), np.pi))  # neither +π nor −π twice
    assert subset.is_group
    table = groups.cayley_table(subset)
    assert sorted(table[1].tolist()) == list(range(7))
    with pytest.raises(ValueError, match="num=1"):
        groups.rotation_range(0.0, 5)
    assert groups.rotation_range(0.0, 1).size == 1


# ----------------------------------------------------------------------------- jit


def _count_traces(pairs):
    chex.clear_trace_counter()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def act_all(group, x):
        return groups.transform_batch(group, group.elements, x)

    for group, x in pairs:
        act_all(group, x)


@pytest.mark.slow
def test_groups_differing_only_in_elements_share_one_trace():
    points = jnp.ones((2, 3, 2))
    _count_traces([(groups.rotation_range(a, 7), points) for a in (0.3, 0.5, 1.0)])
    _count_traces([(groups.so3(5, key=jax.random.key(k)), jnp.ones((2, 4, 3))) for k in range(3)])
    _count_traces(
        [
            (groups.random_permutations(6, 10, key=jax.random.key(k)), jnp.ones((2, 6, 2)))
            for k in range(3)
        ]
    )
    c8 = groups.cyclic_rotations(8)
    _count_traces([(c8.subset(idx), points) for idx in ([0, 2, 4, 6], [1, 3, 5, 7])])
    with pytest.raises(AssertionError):  # the counter does catch a retrace
        _count_traces(
            [(groups.rotation_range(0.3, 7), points), (groups.cyclic_rotations(7), points)]
        )


def test_names_hold_no_values():
    assert groups.rotation_range(0.3, 7).name == groups.rotation_range(0.5, 7).name
    for make in (
        lambda k: groups.so3(4, key=k),
        lambda k: groups.random_permutations(5, 4, key=k),
    ):
        a, b = make(jax.random.key(0)), make(jax.random.key(1))
        assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
        assert not np.array_equal(np.asarray(a.elements), np.asarray(b.elements))


# ----------------------------------------------------------------------------- keys


def test_keys_are_keyword_only_and_checked():
    key = jax.random.key(0)
    with pytest.raises(TypeError):
        groups.so3(3, key)  # the positional form is gone
    with pytest.raises(TypeError):
        groups.random_permutations(4, 3, key)
    with pytest.raises(TypeError, match="key must be one PRNG key"):
        groups.so3(3, key=0)
    with pytest.raises(TypeError, match="key must be one PRNG key"):
        groups.random_permutations(4, 3, key=jax.random.split(key, 2))
    assert groups.so3(3, key=jax.random.PRNGKey(0)).size == 3  # raw uint32 keys work


# ----------------------------------------------------------------------------- identity probe


def _identity_by_brute_force(group, x):
    """Matrices acting on float32 points in NumPy; exact equality with the points."""
    x = np.asarray(x, dtype=np.float32)
    mats = np.asarray(group.elements, dtype=np.float32)
    return [i for i, mat in enumerate(mats) if np.array_equal(x @ mat.T, x)]


@pytest.mark.slow
def test_identity_elements_match_brute_force():
    d4 = groups.dihedral(4)
    x = _normal(6, (10, 3, 2))
    assert groups.identity_elements(d4, x).tolist() == [0] == _identity_by_brute_force(d4, x)
    on_axis = jnp.stack([jnp.linspace(1.0, 2.0, 10), jnp.zeros(10)], -1)[:, None]  # (10, 1, 2)
    found = groups.identity_elements(d4, on_axis)
    assert found.tolist() == _identity_by_brute_force(d4, on_axis)
    assert len(found) == 2 and found[0] == 0  # the identity and the reflection F
    np.testing.assert_array_equal(d4.element(int(found[1])), np.diag([1.0, -1.0]))
    # A row beyond the screened ones breaks the reflection: it is confirmed on all rows.
    broken = on_axis.at[-1, 0, 1].set(0.5)
    assert groups.identity_elements(d4, broken, probe_rows=4).tolist() == [0]
    assert groups.identity_elements(d4, jnp.zeros((3, 2, 2))).tolist() == list(range(8))
    assert groups.identity_elements(d4.subset([1, 2, 3]), x).size == 0
    ints = jnp.ones((4, 5), jnp.int32)
    assert groups.identity_elements(groups.cyclic_shifts(5), ints).tolist() == list(range(5))
    with pytest.raises(TypeError, match="group"):
        groups.identity_elements("D4", x)


def test_identity_elements_of_traced_values_is_empty():
    results = []

    @jax.jit
    def probe(x):
        results.append(groups.identity_elements(groups.cyclic_rotations(4), x))
        return x

    probe(jnp.ones((3, 2)))
    assert results[0].shape == (0,)


# ----------------------------------------------------------------------------- orbit_augment


def test_orbit_augment_is_element_major():
    group = groups.dihedral(3)
    x = _normal(7, (4, 5, 2))
    augmented = groups.orbit_augment(x, group)
    assert augmented.shape == (6 * 4, 5, 2)
    for i in range(group.size):
        mat = np.asarray(group.element(i), dtype=np.float64)
        for b in range(4):
            np.testing.assert_allclose(
                augmented[i * 4 + b], np.asarray(x[b], np.float64) @ mat.T, atol=1e-6
            )
    from_int = groups.orbit_augment(jnp.ones((2, 5, 2), jnp.int32), group)
    assert from_int.dtype == jnp.float32
    with pytest.raises(TypeError, match="group"):
        groups.orbit_augment(x, np.eye(2))
    with pytest.raises(TypeError, match="group comes after the data"):
        groups.orbit_augment(group, x)
    with pytest.raises(ValueError, match="R\\^2"):
        groups.orbit_augment(jnp.ones((2, 3)), group)
    with pytest.raises(ValueError, match="non-finite"):
        groups.orbit_augment(x.at[0, 0, 0].set(jnp.nan), group)


def test_group_functions_check_the_group():
    for fn in (groups.cayley_table, groups.inverse_indices):
        with pytest.raises(TypeError, match="group"):
            fn("C8")
    with pytest.raises(TypeError, match="group"):
        groups.transform_batch(None, jnp.eye(2)[None], jnp.ones((1, 2)))


# ----------------------------------------------------------------------------- formatting


def test_elements_are_formatted_readably():
    c8 = groups.cyclic_rotations(8)
    assert "rotation by 45°" in c8.action.format_element(c8.element(1))
    d4 = groups.dihedral(4)
    assert "reflection across the line at 45°" in d4.action.format_element(d4.element(5))
    img = groups.flip_rot90()
    assert "rotation by 90°" in img.action.format_element(img.element(1))
    s3 = groups.permutations(3)
    assert s3.action.format_element(s3.element(3)) == "permutation [1, 2, 0]"
    z5 = groups.cyclic_shifts(5)
    assert z5.action.format_element(z5.element(2)) == "shift by 2"
    so3 = groups.so3(2, key=jax.random.key(0))
    mat = np.asarray(so3.element(1), np.float64)
    angle = np.degrees(np.arccos((np.trace(mat) - 1) / 2))
    assert f"rotation by {angle:.4g}°" in so3.action.format_element(so3.element(1))


# ----------------------------------------------------------------------------- __all__


@pytest.mark.parametrize(
    "module", ["group_base", "images", "permutations", "planar", "shifts", "spatial", "__init__"]
)
def test_every_public_module_declares_all(module):
    import importlib
    import inspect

    name = {"__init__": "jaxsym.groups", "group_base": "jaxsym._src.group_base"}.get(
        module, f"jaxsym.groups.{module}"
    )
    mod = importlib.import_module(name)
    assert hasattr(mod, "__all__"), name
    for exported in mod.__all__:
        assert hasattr(mod, exported), (name, exported)
    if module != "__init__":
        defined = {
            n
            for n, v in vars(mod).items()
            if not n.startswith("_")
            and (inspect.isfunction(v) or inspect.isclass(v))
            and v.__module__ == name
        }
        missing = (
            defined
            - set(mod.__all__)
            - {"CustomOutputAction", "check_argument_order", "format_matrix"}
            - {"close_pair", "repeated_elements"}  # the builders' distinctness checks
        )
        assert not missing, (name, missing)


def _import_graph() -> dict[str, set[str]]:
    """``module -> jaxsym modules it imports``, every import statement (lazy ones too)."""
    import ast
    import pathlib

    root = pathlib.Path(jaxsym.__file__).parent
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                base = node.module or ""
                for alias in node.names:
                    deps.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in files else base)
            elif isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names)
        graph[name] = {d for d in deps if d in files and d != name}
    return graph


def test_package_layers_have_no_import_cycle():
    graph = _import_graph()
    assert "jaxsym._src.group_base" in graph["jaxsym.groups"]  # the parser sees imports
    state, path = {}, []

    def visit(module):
        state[module] = "open"
        path.append(module)
        for dep in sorted(graph[module]):
            assert state.get(dep) != "open", " -> ".join(path[path.index(dep) :] + [dep])
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not graph["jaxsym._src.validation"]  # the bottom layer imports no jaxsym module


@pytest.mark.parametrize(
    "group",
    [groups.flip_rot90(), groups.dihedral(6), groups.rotation_range(0.6, 5)],
    ids=lambda g: g.name,
)
def test_element_labels_name_each_matrix_by_its_angle(group):
    """Labels against the angle and determinant read off each matrix independently."""
    labels = groups.element_labels(group)
    assert len(labels) == group.size and labels[0] == "e"
    for matrix, label in zip(np.asarray(group.elements, np.float64)[1:], labels[1:], strict=True):
        kind, text = label.split(" ")
        value = float(text.rstrip("°"))
        if np.linalg.det(matrix) > 0:
            angle = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
            assert kind == "rot" and np.isclose((value - angle + 180) % 360 - 180, 0, atol=0.01)
        else:  # a reflection across the line at angle a has first column (cos 2a, sin 2a)
            doubled = np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))
            assert kind == "flip" and np.isclose(
                (2 * value - doubled + 180) % 360 - 180, 0, atol=0.02
            )


def test_element_labels_of_shifts_and_permutations():
    assert groups.element_labels(groups.cyclic_shifts(3)) == ["e", "shift 1", "shift 2"]
    perms = groups.permutations(3)
    labels = groups.element_labels(perms)
    assert labels[0] == "e" and len(set(labels)) == 6
    for element, label in zip(np.asarray(perms.elements)[1:], labels[1:], strict=True):
        assert label == f"perm {element.tolist()}"


# ----------------------------------------------------------------------------- distinct elements


def _float32_rows(group) -> np.ndarray:
    """The elements as stored in float32, one flat row each (independent of the package)."""
    return np.asarray(group.elements, np.float32).reshape(group.size, -1)


@pytest.mark.parametrize(
    ("build", "argument"),
    [
        (lambda: groups.image_rotations(3, max_angle=1e-300), "max_angle=1e-300"),
        (lambda: groups.rotation_range(1e-300, 5), "max_angle=1e-300"),
        (lambda: groups.rotation_range(1e-7, 3), "max_angle=1e-07"),  # distinct, too close
        (lambda: groups.image_rotations(5, max_angle=2e-7), "max_angle=2e-07"),
    ],
)
def test_angle_sets_with_repeated_elements_are_refused(build, argument):
    with pytest.raises(ValueError, match="same rotation in float32") as info:
        build()
    message = str(info.value)
    assert argument in message and "elements 0 and 1" in message


def test_the_spacing_rule_is_relative_and_keeps_fine_but_distinct_sets():
    """1e-6 relative: h = 2e-6 rad is kept and distinct in float32; h = 5e-7 is refused."""
    kept = groups.rotation_range(2e-6, 3)
    angles = np.arctan2(_float32_rows(kept)[:, 2], _float32_rows(kept)[:, 0])
    assert len(np.unique(angles)) == 3
    assert np.min(np.diff(np.sort(angles))) >= 1e-6
    with pytest.raises(ValueError, match="max_angle"):
        groups.rotation_range(5e-7, 3)


def test_a_custom_set_flagged_a_group_must_not_repeat_an_element():
    eye = np.eye(2)
    almost = eye * (1 + 1e-9)  # distinct in float64, the identity once stored in float32
    assert not np.array_equal(almost, eye)
    assert np.array_equal(almost.astype(np.float32), eye.astype(np.float32))
    with pytest.raises(ValueError, match="elements 0 and 1 are the same"):
        groups.TransformationSet(
            elements=jnp.asarray(np.stack([eye, almost])), action=groups.MatrixAction(2)
        )
    # a Monte Carlo multiset (not a group) may repeat elements, as orbit sampling does
    sample = groups.TransformationSet(
        elements=jnp.asarray(np.stack([eye, eye])), action=groups.MatrixAction(2), is_group=False
    )
    assert sample.size == 2


@pytest.mark.parametrize(("indices", "element"), [([1, 2, 1], 1), ([0, 3, -5], 3)])
def test_subsets_refuse_an_element_picked_twice(indices, element):
    with pytest.raises(ValueError, match=f"element {element} of C8 twice"):
        groups.cyclic_rotations(8).subset(indices)


def test_random_permutations_are_distinct_and_at_most_k_factorial():
    sample = groups.random_permutations(3, 6, key=jax.random.key(0))  # all of S3, no repeat
    rows = {tuple(row) for row in np.asarray(sample.elements).tolist()}
    assert rows == set(itertools.permutations(range(3)))
    assert tuple(np.asarray(sample.elements)[0]) == (0, 1, 2)
    with pytest.raises(ValueError, match="num must be at most k! = 6"):
        groups.random_permutations(3, 7, key=jax.random.key(0))


def test_so3_refuses_a_sample_that_repeats_a_rotation(monkeypatch):
    from jaxsym.groups import spatial

    monkeypatch.setattr(
        spatial, "haar_so3", lambda num, *, key: jnp.broadcast_to(jnp.eye(3), (num, 3, 3))
    )
    with pytest.raises(ValueError, match=r"key: .*elements 0 and 1"):
        groups.so3(3, key=jax.random.key(0))
