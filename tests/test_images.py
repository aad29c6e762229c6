"""Interpolated image rotations and translations, and the interpolation floor."""

from __future__ import annotations

import itertools
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import blob, random_cnn
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.scipy.ndimage import map_coordinates

import jaxsym
from jaxsym import groups


def reference_rotation(image, theta):
    """Independent bilinear rotation: ``x(R_θ⁻¹ p)`` through ``map_coordinates(order=1)``."""
    n_r, n_c = image.shape[:2]
    rr, cc = np.meshgrid(
        np.arange(n_r) - (n_r - 1) / 2, np.arange(n_c) - (n_c - 1) / 2, indexing="ij"
    )
    rot_inv = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    src = np.einsum("ij,jhw->ihw", rot_inv, np.stack([rr, cc]))
    coords = [src[0] + (n_r - 1) / 2, src[1] + (n_c - 1) / 2]
    chans = image if image.ndim == 3 else image[..., None]
    out = [
        map_coordinates(chans[..., c], coords, order=1, mode="constant", cval=0.0)
        for c in range(chans.shape[-1])
    ]
    out = jnp.stack(out, -1)
    return out if image.ndim == 3 else out[..., 0]


# ----------------------------------------------------------------------------- rotations


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(7, 7), (8, 8, 3), (5, 5, 1)])
def test_quarter_turns_equal_rot90(shape):
    x = jnp.asarray(np.random.default_rng(0).standard_normal(shape), jnp.float32)
    for num in (4, 8, 12):
        rotations, grid = groups.image_rotations(num), groups.rot90()
        for k in range(4):
            moved = rotations.act_in(rotations.element(k * num // 4), x)
            np.testing.assert_allclose(moved, grid.act_in(grid.element(k), x), atol=1e-6, rtol=0)


@pytest.mark.slow
def test_quarter_turns_from_composition_and_inverse_are_exact():
    rotations = groups.image_rotations(8)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((6, 6, 2)), jnp.float32)
    grid = groups.rot90()
    quarter = rotations.compose(rotations.element(1), rotations.element(1))  # 45° + 45°
    np.testing.assert_allclose(
        rotations.act_in(quarter, x), grid.act_in(grid.element(1), x), atol=1e-6
    )
    minus = rotations.inverse(rotations.element(2))
    np.testing.assert_allclose(
        rotations.act_in(minus, x), grid.act_in(grid.element(3), x), atol=1e-6
    )
    for a in (2, 4, 6):  # left action, exact for quarter turns
        for b in (2, 4, 6):
            composed = rotations.act_in(
                rotations.compose(rotations.element(a), rotations.element(b)), x
            )
            twice = rotations.act_in(
                rotations.element(a), rotations.act_in(rotations.element(b), x)
            )
            np.testing.assert_allclose(composed, twice, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("theta", [0.05, 0.4, -1.0, 2.5])
def test_rotation_matches_independent_bilinear_reference(theta):
    x = jnp.asarray(np.random.default_rng(2).standard_normal((9, 9, 2)), jnp.float32)
    ours = groups.image_rotations(1).act_in(jnp.float32(theta), x)
    np.testing.assert_allclose(ours, reference_rotation(x, theta), atol=1e-5)
    flat = jnp.asarray(np.random.default_rng(3).standard_normal((6, 10)), jnp.float32)
    partial = groups.image_rotations(3, max_angle=1.0)  # no quarter turn: any H × W
    np.testing.assert_allclose(
        partial.act_in(jnp.float32(theta / 4), flat), reference_rotation(flat, theta / 4), atol=1e-5
    )


@pytest.mark.slow
def test_small_rotation_is_continuous_with_the_quarter_turn():
    x = blob(16, (3.0, -2.0), 2.5)
    quarter = groups.rot90().act_in(groups.rot90().element(1), x)
    near = groups.image_rotations(1).act_in(jnp.float32(math.pi / 2 - 1e-3), x)
    far = groups.image_rotations(1).act_in(jnp.float32(-math.pi / 2 + 1e-3), x)
    assert float(jnp.abs(near - quarter).max()) < 0.01  # same direction as rot90
    assert float(jnp.abs(far - quarter).max()) > 0.1


@pytest.mark.slow
@settings(max_examples=10)
@given(
    sigma=st.floats(1.5, 4.0),
    centre=st.tuples(st.floats(-4.0, 4.0), st.floats(-4.0, 4.0)),
    theta=st.floats(-math.pi, math.pi),
)
def test_round_trip_within_documented_interpolation_error(sigma, centre, theta):
    """θ then −θ: sup error ≤ ½ sup‖∇²u‖₂ for content inside the disc (docs/theory.md §11)."""
    rotations = groups.image_rotations(1)
    x = blob(32, centre, sigma)
    back = rotations.act_in(jnp.float32(-theta), rotations.act_in(jnp.float32(theta), x))
    hessian_bound = 1.0 / sigma**2  # sup of the Hessian's spectral norm of a unit blob
    assert float(jnp.abs(back - x).max()) <= 0.5 * hessian_bound + 1e-5


def test_round_trip_error_is_not_zero_off_quarter_turns():
    """The bound above is not vacuous by construction: interpolation does blur."""
    rotations = groups.image_rotations(1)
    x = blob(32, (1.0, 2.0), 2.0)
    back = rotations.act_in(jnp.float32(-0.3), rotations.act_in(jnp.float32(0.3), x))
    assert float(jnp.abs(back - x).max()) > 1e-3


def test_partial_set_grid_and_square_flag():
    partial = groups.image_rotations(5, max_angle=0.6)
    reference = groups.rotation_range(0.6, 5).elements
    angles = np.arctan2(np.asarray(reference)[:, 1, 0], np.asarray(reference)[:, 0, 0])
    np.testing.assert_allclose(partial.elements, angles, atol=1e-6)
    assert float(partial.elements[0]) == 0.0 and not partial.is_group
    partial.check_inputs(jnp.zeros((1, 6, 10)))  # no quarter turns: non-square is fine
    assert groups.image_rotations(4).is_group and not groups.image_rotations(8).is_group
    half = groups.image_rotations(2)  # the half turn of any H × W grid is exact
    x = jnp.asarray(np.random.default_rng(7).standard_normal((1, 5, 8)), jnp.float32)
    half.check_inputs(x)
    np.testing.assert_array_equal(half.act_in(half.element(1), x[0]), x[0, ::-1, ::-1])


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_equivariant_outputs_for_image_to_image_models():
    """A pixelwise linear map commutes with bilinear interpolation at every angle."""
    rotations = groups.image_rotations(8).equivariant()
    x = jnp.stack([blob(10, (1.0, -2.0), 2.0, 2), blob(10, (0.0, 1.0), 1.5, 2)])
    mix = jnp.asarray([[1.0, 2.0], [-0.5, 0.3]])
    linear = lambda z: z @ mix  # noqa: E731
    assert float(jnp.max(jaxsym.defect_profile(linear, x, rotations))) < 1e-5
    squared = lambda z: z**2  # noqa: E731  (pixelwise, but interpolation does not commute)
    profile = np.asarray(jaxsym.defect_profile(squared, x, rotations))
    assert np.all(profile[[0, 2, 4, 6]] < 1e-5) and np.all(profile[[1, 3, 5, 7]] > 1e-4)


def test_rotation_errors():
    with pytest.raises(ValueError, match="num"):
        groups.image_rotations(0)
    with pytest.raises(ValueError, match="max_angle"):
        groups.image_rotations(5, max_angle=float("nan"))
    with pytest.raises(ValueError, match="max_angle"):
        groups.image_rotations(5, max_angle=4.0)
    with pytest.raises(ValueError, match="odd"):
        groups.image_rotations(4, max_angle=0.5)
    with pytest.raises(ValueError, match=r"square.*\(6, 10\)"):
        groups.image_rotations(4).check_inputs(jnp.zeros((2, 6, 10)))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(H, W, C\)"):
        groups.image_rotations(4).check_inputs(jnp.zeros((2, 6)))
    with pytest.raises(ValueError, match="non-finite"):
        jaxsym.defect_profile(
            lambda z: z.sum((1, 2)), jnp.full((1, 4, 4), jnp.nan), groups.image_rotations(4)
        )


def test_integer_images_promote_and_identity_is_exact():
    x = jnp.arange(25, dtype=jnp.int32).reshape(5, 5)
    moved = groups.image_rotations(6).act_in(jnp.float32(0.0), x)
    assert jnp.issubdtype(moved.dtype, jnp.floating)
    np.testing.assert_array_equal(moved, x.astype(moved.dtype))


@pytest.mark.slow
def test_half_precision_images_keep_exact_quarter_turns():
    x = jnp.asarray(np.random.default_rng(8).standard_normal((40, 40)), jnp.bfloat16)
    moved = groups.image_rotations(4).act_in(jnp.float32(math.pi / 2), x)
    assert moved.dtype == jnp.bfloat16
    np.testing.assert_array_equal(moved, groups.rot90().act_in(groups.rot90().element(1), x))


def test_sets_with_different_angles_share_one_trace():
    traces = []

    @jax.jit
    def first_moved(group, x):
        traces.append(1)
        return group.act_in(group.element(1), x)

    x = blob(8, (0.0, 0.0), 2.0)
    first_moved(groups.image_rotations(5, max_angle=0.3), x)
    first_moved(groups.image_rotations(5, max_angle=0.5), x)
    assert len(traces) == 1


# ----------------------------------------------------------------------------- translations


def test_integer_shifts_are_exact_with_zero_padding():
    x = jnp.asarray(np.random.default_rng(5).standard_normal((6, 7, 2)), jnp.float32)
    shifts = groups.image_translations([[0, 0], [2, -1], [-3, 4]])
    for index, (dy, dx) in enumerate([(2, -1), (-3, 4)], start=1):
        expected = np.zeros_like(np.asarray(x))
        rows, cols = np.arange(6), np.arange(7)
        for r in rows:
            for c in cols:
                if 0 <= r - dy < 6 and 0 <= c - dx < 7:
                    expected[r, c] = np.asarray(x)[r - dy, c - dx]
        np.testing.assert_array_equal(shifts.act_in(shifts.element(index), x), expected)


@pytest.mark.slow
def test_sub_pixel_shift_matches_map_coordinates():
    x = jnp.asarray(np.random.default_rng(6).standard_normal((6, 9)), jnp.float32)
    shifts = groups.image_translations([[0.3, -1.7]])
    assert shifts.size == 2  # the identity was prepended
    rr, cc = np.meshgrid(np.arange(6), np.arange(9), indexing="ij")
    expected = map_coordinates(x, [rr - 0.3, cc + 1.7], order=1, mode="constant", cval=0.0)
    np.testing.assert_allclose(shifts.act_in(shifts.element(1), x), expected, atol=1e-5)
    # Left action for integer shifts of content that stays inside the grid (zero
    # padding loses what leaves it, so on a full image it is not an action).
    inner = jnp.zeros((12, 12)).at[4:8, 4:8].set(x[:4, :4])
    whole = groups.image_translations([[1.0, 2.0], [-3.0, 1.0]])
    both = whole.act_in(whole.compose(whole.element(1), whole.element(2)), inner)
    twice = whole.act_in(whole.element(1), whole.act_in(whole.element(2), inner))
    np.testing.assert_array_equal(both, twice)


def test_translation_errors_and_grid():
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        groups.image_translations([1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        groups.image_translations([[0.0, np.nan]])
    with pytest.raises(ValueError, match="repeats the identity"):
        groups.image_translations([[0, 0], [1, 0], [0, 0]])
    with pytest.raises(ValueError, match="odd"):
        groups.translation_grid(4)
    grid = groups.translation_grid(3, 0.5)
    assert grid.size == 9 and np.all(np.asarray(grid.elements[0]) == 0)
    assert len({tuple(row) for row in np.asarray(grid.elements).tolist()}) == 9


@pytest.mark.parametrize(
    ("shifts", "fragments"),
    [
        ([[1.0, 0.0], [0.0, 0.0]], ["row 1 of 2 (0-based)", "repeats the identity"]),
        ([[0.0, 0.0], [2.0, 1.0], [0.0, 0.0]], ["row 2 of 3 (0-based)", "after the identity"]),
        ([[1.0, 0.0], [np.nan, 0.0]], ["row 1 of 2 (0-based)", "NaN or inf"]),
        ([[np.inf, 0.0]], ["row 0 of 1 (0-based)", "NaN or inf"]),
        ([1.0, 2.0, 3.0], ["shape (k, 2)", "got shape (3,)"]),
        (np.zeros((2, 3)), ["shape (k, 2)", "got shape (2, 3)"]),
    ],
)
def test_translation_errors_name_the_row_as_given(shifts, fragments):
    """Rows are counted 0-based in the caller's array (not after the identity is added)."""
    with pytest.raises(ValueError) as info:
        groups.image_translations(shifts)
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("shifts", "pair"),
    [
        ([[1.0, 0.0], [1.0, 0.0]], "row 0 and row 1"),
        ([[1.0, 0.0], [1.0 + 1e-8, 0.0]], "row 0 and row 1"),  # equal in float32
        ([[2.0, 0.0], [1.0, 0.0], [1.0, 5e-7]], "row 1 and row 2"),  # distinct, 5e-7 apart
        ([[1e-9, 0.0]], "the identity (0, 0) added as element 0 and row 0"),
    ],
)
def test_translations_refuse_a_shift_given_twice(shifts, pair):
    rows = np.concatenate([np.zeros((1, 2)), np.asarray(shifts, np.float64)])  # + identity
    stored = rows.astype(np.float32).astype(np.float64)
    tolerance = 1e-6 * max(1.0, np.abs(stored).max())
    close = [
        (i, j)
        for i, j in itertools.combinations(range(len(rows)), 2)
        if np.abs(stored[i] - stored[j]).max() < tolerance
    ]
    assert close  # brute force: some pair is one shift in float32
    with pytest.raises(ValueError, match="same shift in float32") as info:
        groups.image_translations(shifts)
    assert pair in str(info.value)


def test_translations_a_micro_pixel_apart_are_kept():
    shifts = groups.image_translations([[1.0, 0.0], [1.0, 2e-6]])  # 2e-6 ≥ 1e-6 · max(1, 1)
    assert shifts.size == 3
    assert len(np.unique(np.asarray(shifts.elements, np.float32), axis=0)) == 3


@pytest.mark.parametrize("max_shift", ["x", None, float("nan"), float("inf")])
def test_translation_grid_speaks_of_pixels(max_shift):
    with pytest.raises((TypeError, ValueError)) as info:
        groups.translation_grid(3, max_shift)
    assert "max_shift" in str(info.value) and "pixels" in str(info.value)
    assert "radians" not in str(info.value)


def test_translation_grid_too_fine_for_float32_is_refused():
    with pytest.raises(ValueError, match=r"max_shift=1e-300 with num=3: .*same shift"):
        groups.translation_grid(3, 1e-300)
    with pytest.raises(ValueError, match="max_shift=2e-07 with num=5"):
        groups.translation_grid(5, 2e-7)  # steps 1e-7 px apart, distinct in float32


def test_angles_still_speak_of_radians():
    with pytest.raises(TypeError, match="max_angle must be a number of radians"):
        groups.image_rotations(3, max_angle="x")


# ----------------------------------------------------------------------------- floor


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_floor_against_brute_force_probe():
    x = jnp.stack([blob(12, (1.0, -2.0), 2.0, 2), blob(12, (-3.0, 0.5), 1.5, 2)])
    x = x.at[1, ..., 1].multiply(-1.0)  # a signed channel
    rotations = groups.image_rotations(8)
    floor = np.asarray(groups.interpolation_floor(x, rotations, reduce="max"))
    mask = groups.images.disc_mask(12, 12)
    images = np.asarray(x, np.float64)
    expected = []
    for k in range(8):
        rel = []
        for b in range(2):
            moved = np.asarray(rotations.act_in(rotations.element(k), x[b]), np.float64)
            p0, p1 = (
                (images[b] * mask[..., None]).sum((0, 1)),
                (moved * mask[..., None]).sum((0, 1)),
            )
            rel.append(np.linalg.norm(p1 - p0) / np.linalg.norm(p0))
        expected.append(max(rel))
    np.testing.assert_allclose(floor, expected, rtol=1e-3, atol=1e-6)
    assert floor[0] == 0.0
    assert np.all(floor[[2, 4, 6]] <= 1e-6)  # exact quarter turns
    assert np.all(floor[[1, 3, 5, 7]] > 1e-5)  # interpolation at 45°


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_floor_of_translations_is_zero_for_content_inside_the_grid():
    x = blob(16, (0.0, 0.0), 1.5)[None]
    floor = groups.interpolation_floor(x, groups.image_translations([[0.5, -0.25], [1.0, 1.0]]))
    assert float(jnp.max(floor)) < 1e-5  # bilinear shifts conserve the total away from borders
    edge = blob(16, (7.0, 0.0), 1.5)[None]
    lost = groups.interpolation_floor(edge, groups.image_translations([[1.0, 0.0]]))
    assert float(lost[1]) > 1e-2  # content shifted out through the zero padding


def test_floor_rejects_blank_images():
    with pytest.raises(ValueError, match="blank"):
        groups.interpolation_floor(jnp.zeros((2, 4, 4)), groups.image_rotations(4))


# ----------------------------------------------------------------------------- consumers


def _relative_profile(f, x, group):
    scale = float(jnp.max(jnp.linalg.norm(f(x), axis=-1)))
    return np.asarray(jaxsym.defect_profile(f, x, group)) / scale


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_c4_symmetrized_cnn_is_at_the_floor_on_quarter_turns_and_above_at_45():
    f, _, _ = random_cnn(jax.random.key(0), size=12)
    x = jnp.stack([blob(12, (1.0, -2.0), 2.0), blob(12, (-2.0, 1.5), 1.5)])[..., None]
    rotations = groups.image_rotations(8)
    floor = np.asarray(groups.interpolation_floor(x, rotations))
    symmetric = jaxsym.symmetrize(f, groups.image_rotations(4))
    relative = _relative_profile(symmetric, x, rotations)
    assert np.all(relative[[0, 2, 4, 6]] <= floor[[0, 2, 4, 6]] + 1e-5)
    assert np.all(relative[[1, 3, 5, 7]] > 10 * floor[[1, 3, 5, 7]])
    plain = _relative_profile(f, x, rotations)
    assert np.all(plain[[2, 4, 6]] > 1e-3)


@pytest.mark.extended  # heavy: CI runs it with -m extended (README)
@pytest.mark.slow
def test_dial_assert_equivariant_and_data_defect_accept_image_sets():
    f, _, _ = random_cnn(jax.random.key(1))
    x = jnp.stack([blob(8, (1.0, 0.0), 1.5), blob(8, (-1.0, 1.0), 2.0)])[..., None]
    c4 = groups.image_rotations(4)
    half = jaxsym.dial(f, c4, 0.5)
    full = np.asarray(jaxsym.defect_profile(f, x, c4))
    np.testing.assert_allclose(jaxsym.defect_profile(half, x, c4), 0.5 * full, rtol=1e-4, atol=1e-6)
    jaxsym.assert_equivariant(jaxsym.symmetrize(f, c4), x, c4)
    with pytest.raises(AssertionError):
        jaxsym.assert_equivariant(f, x, c4)
    y = jnp.asarray([0, 1])
    result = jaxsym.data_defect(x, y, groups.image_rotations(8))
    assert np.asarray(result.profile).shape == (8,)
    shifted = jaxsym.data_defect(x, y, groups.translation_grid(3, 0.5))
    assert np.asarray(shifted.profile).shape == (9,)


# ----------------------------------------------------------------------------- audit wiring


def test_audit_parses_image_groups():
    from jaxsym.audit.inputs import AuditError, parse_group

    full = parse_group("rot-image:8")
    np.testing.assert_allclose(full.elements, groups.image_rotations(8).elements)
    partial = parse_group("rot-image:7:30")
    np.testing.assert_allclose(
        partial.elements, groups.image_rotations(7, max_angle=math.radians(30)).elements
    )
    assert parse_group("shift-image:3:0.5").size == 9
    bad_specs = ("rot-image", "rot-image:0", "rot-image:8:30", "rot-image:7:200", "rot-image:7:x")
    for bad in (*bad_specs, "shift-image:4", "shift-image:3:0"):
        with pytest.raises(AuditError, match="--group"):
            parse_group(bad)


def test_audit_loads_rotated_digits():
    pytest.importorskip("sklearn")
    from jaxsym.audit.inputs import load_dataset

    data = load_dataset("rot-digits", groups.rot90())
    assert data.x.shape[1:] == (8, 8) and "rot-digits" in data.source
    assert len(data.x) + len(data.x_test) == len(jaxsym.datasets.rotated_digits().y)


# ----------------------------------------------------------------------------- layouts

LAYOUT_BUILDERS = {
    "rot90": lambda layout: groups.rot90(layout=layout),
    "flip_rot90": lambda layout: groups.flip_rot90(layout=layout),
    "rotations": lambda layout: groups.image_rotations(8, layout=layout),
    "partial": lambda layout: groups.image_rotations(5, max_angle=0.4, layout=layout),
    "translations": lambda layout: groups.image_translations(
        [[0.3, -1.2], [2.0, 1.0]], layout=layout
    ),
    "grid": lambda layout: groups.translation_grid(3, 0.5, layout=layout),
}


def _channels_first(x):
    """``(..., H, W, C) -> (..., C, H, W)``."""
    return jnp.moveaxis(x, -1, -3)


@jax.jit
def _every_element(group, x):
    """``(|G|, B, *example)``: every element on every example (one compiled call)."""
    return jax.vmap(lambda g: jax.vmap(group.act_in, in_axes=(None, 0))(g, x))(group.elements)


@pytest.mark.parametrize("builder", sorted(LAYOUT_BUILDERS))
def test_channels_first_is_the_channels_last_result_transposed(builder):
    last = LAYOUT_BUILDERS[builder]("channels_last")
    first = LAYOUT_BUILDERS[builder]("channels_first")
    assert (last.action.layout, first.action.layout) == ("channels_last", "channels_first")
    np.testing.assert_array_equal(last.elements, first.elements)
    x = jnp.asarray(np.random.default_rng(20).standard_normal((2, 9, 9, 3)), jnp.float32)
    moved = _every_element(first, _channels_first(x))
    assert moved.shape == (last.size, 2, 3, 9, 9)
    np.testing.assert_array_equal(moved, _channels_first(_every_element(last, x)))
    flat = x[..., 0]  # (B, H, W) single-channel images fit both layouts, with one result
    np.testing.assert_array_equal(_every_element(first, flat), _every_element(last, flat))


def test_channels_first_quarter_turns_and_flips_match_numpy():
    x = np.random.default_rng(21).standard_normal((1, 3, 9, 9)).astype(np.float32)  # (B, C, H, W)
    turned = np.stack([np.rot90(x, k, axes=(2, 3)) for k in range(4)])
    flipped = np.stack([np.rot90(x[..., ::-1], k, axes=(2, 3)) for k in range(4)])  # R^k F
    c4 = _every_element(groups.rot90(layout="channels_first"), x)
    d4 = _every_element(groups.flip_rot90(layout="channels_first"), x)
    turns = _every_element(groups.image_rotations(4, layout="channels_first"), x)
    np.testing.assert_array_equal(c4, turned)
    np.testing.assert_array_equal(d4, np.concatenate([turned, flipped]))
    np.testing.assert_allclose(turns, turned, atol=1e-6)


def test_channels_first_interpolation_matches_independent_references():
    x = jnp.asarray(np.random.default_rng(22).standard_normal((2, 9, 9)), jnp.float32)  # (C, H, W)
    rotations = groups.image_rotations(5, max_angle=0.4, layout="channels_first")
    moved = _every_element(rotations, x[None])[:, 0]
    for k in (1, 4):
        theta = float(rotations.elements[k])
        expected = jnp.moveaxis(reference_rotation(jnp.moveaxis(x, 0, -1), theta), -1, 0)
        np.testing.assert_allclose(moved[k], expected, atol=1e-5)
    shifts = groups.image_translations([[0.3, -1.7]], layout="channels_first")
    rr, cc = np.meshgrid(np.arange(9), np.arange(9), indexing="ij")
    expected = jnp.stack(
        [map_coordinates(x[c], [rr - 0.3, cc + 1.7], order=1, mode="constant") for c in range(2)]
    )
    np.testing.assert_allclose(_every_element(shifts, x[None])[1, 0], expected, atol=1e-5)


def test_orbit_augment_symmetrize_and_subsets_agree_across_layouts():
    rng = np.random.default_rng(24)
    x = jnp.asarray(rng.standard_normal((3, 9, 9, 2)), jnp.float32)
    weights = jnp.asarray(rng.standard_normal((9 * 9 * 2, 4)) / 13, jnp.float32)

    def f_last(z):  # a fixed linear map on flattened channels-last images
        return z.reshape(z.shape[0], -1) @ weights

    def f_first(z):  # the same model, fed channels-first images
        return f_last(jnp.moveaxis(z, -3, -1))

    last, first = groups.image_rotations(8), groups.image_rotations(8, layout="channels_first")
    orbit = jax.jit(groups.orbit_augment)  # one compiled call each (eager ops are slow on CPU)
    np.testing.assert_array_equal(orbit(_channels_first(x), first), _channels_first(orbit(x, last)))
    np.testing.assert_allclose(
        jax.jit(jaxsym.symmetrize(f_first, first))(_channels_first(x)),
        jax.jit(jaxsym.symmetrize(f_last, last))(x),
        rtol=1e-5,
        atol=1e-5,
    )
    assert groups.element_labels(first) == groups.element_labels(last)
    quarter = first.subset([0, 2, 4, 6])  # the layout travels with the action
    assert quarter.action.layout == "channels_first" and "channels_first" in quarter.name
    # Independent: the C4 average of the linear model, from numpy quarter turns.
    turned = [np.rot90(np.asarray(x), k, axes=(1, 2)) for k in range(4)]
    expected = np.mean([np.asarray(x_k).reshape(3, -1) @ weights for x_k in turned], axis=0)
    symmetric = jax.jit(jaxsym.symmetrize(f_first, quarter))(_channels_first(x))
    np.testing.assert_allclose(symmetric, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("builder", sorted(LAYOUT_BUILDERS))
def test_the_other_layout_is_refused_naming_the_argument(builder):
    last = LAYOUT_BUILDERS[builder]("channels_last")
    first = LAYOUT_BUILDERS[builder]("channels_first")
    for shape in ((2, 1, 12, 12), (2, 3, 12, 12), (2, 4, 12, 13)):
        with pytest.raises(
            ValueError,
            match=re.escape(f"{shape[1:]}, which looks channels-first (C, H, W)")
            + ".*layout='channels_first'",
        ):
            last.check_inputs(jnp.zeros(shape))
    with pytest.raises(
        ValueError,
        match=r"\(12, 12, 3\), which looks channels-last \(H, W, C\).*layout='channels_last'",
    ):
        first.check_inputs(jnp.zeros((2, 12, 12, 3)))
    with pytest.raises(ValueError, match="layout must be one of"):
        LAYOUT_BUILDERS[builder]("NCHW")


def test_layout_boundaries_and_square_checks_on_the_right_axes():
    grid = groups.translation_grid(3)
    grid.check_inputs(jnp.zeros((1, 5, 12, 12)))  # a first axis of 5 is not taken for channels
    grid.check_inputs(jnp.zeros((1, 3, 4, 4)))  # tiny images: min(H, W) ≤ 4
    groups.translation_grid(3, layout="channels_first").check_inputs(jnp.zeros((1, 12, 12, 5)))
    groups.rot90(layout="channels_first").check_inputs(jnp.zeros((1, 2, 9, 9)))
    partial = groups.image_rotations(5, max_angle=0.4, layout="channels_first")
    partial.check_inputs(jnp.zeros((1, 2, 6, 10)))  # no quarter turn: any H × W
    with pytest.raises(ValueError, match=r"square.*H = 6, W = 10"):
        groups.image_rotations(4, layout="channels_first").check_inputs(jnp.zeros((1, 2, 6, 10)))
    with pytest.raises(ValueError, match=r"square images of shape \(H, H\) or \(C, H, H\)"):
        groups.rot90(layout="channels_first").check_inputs(jnp.zeros((1, 2, 6, 8)))
    with pytest.raises(ValueError, match=r"square images of shape \(H, H\) or \(H, H, C\)"):
        groups.flip_rot90().check_inputs(jnp.zeros((1, 6, 8, 2)))
    for action in (groups.GridAction, groups.ImageRotationAction, groups.ImageTranslationAction):
        with pytest.raises(ValueError, match="layout must be one of"):
            action(layout="NCHW")
    with pytest.raises(ValueError, match=r"\(H, W\) or \(C, H, W\)"):
        groups.translation_grid(3, layout="channels_first").check_inputs(jnp.zeros((1, 2, 2, 6, 6)))


def test_the_layout_is_part_of_the_name_description_and_identity():
    first = groups.image_rotations(5, max_angle=0.4, layout="channels_first")
    last = groups.image_rotations(5, max_angle=0.4)
    assert (last.name, first.name) == ("RotImg[5,partial]", "RotImg[5,partial,channels_first]")
    assert "channels_first" in repr(first) and "channels" not in repr(last)
    assert "channels-first" in first.action.describe()
    assert "channels" not in last.action.describe()
    assert groups.rot90(layout="channels_first").name == "C4(rot90,channels_first)"
    assert groups.flip_rot90(layout="channels_first").name == "D4(img,channels_first)"
    assert groups.translation_grid(3, layout="channels_first").name == "Shift[9,channels_first]"
    assert jax.tree_util.tree_structure(first) != jax.tree_util.tree_structure(last)
    traces = []

    @jax.jit
    def moved(group, x):
        traces.append(1)
        return group.act_in(group.element(1), x)

    x = blob(9, (1.0, 0.0), 2.0)
    np.testing.assert_array_equal(moved(first, x), moved(last, x))  # (H, W): the same
    assert len(traces) == 2  # the layout is static: one trace per layout


@pytest.mark.slow
def test_interpolation_floor_and_probe_agree_across_layouts():
    x = jnp.stack([blob(12, (1.0, -2.0), 2.0, 2), blob(12, (-3.0, 0.5), 1.5, 2)])
    x = x.at[1, ..., 1].multiply(-1.0)  # a signed channel
    floor_of = jax.jit(groups.interpolation_floor, static_argnames="reduce")
    for name in ("rotations", "grid"):
        last = LAYOUT_BUILDERS[name]("channels_last")
        first = LAYOUT_BUILDERS[name]("channels_first")
        floor = np.asarray(floor_of(x, last, reduce="rms"))
        np.testing.assert_allclose(
            floor_of(_channels_first(x), first, reduce="rms"),
            floor,
            rtol=1e-5,
            atol=1e-7,
        )
        probe = groups.images.invariant_probe(first, (2, 12, 12))
        mask = groups.images.disc_mask(12, 12) if name == "rotations" else np.ones((12, 12))
        expected = (np.asarray(x, np.float64) * mask[None, :, :, None]).sum((1, 2))
        np.testing.assert_allclose(probe(_channels_first(x)), expected, rtol=1e-5, atol=1e-6)
        if name == "rotations":
            assert np.all(floor[[1, 3, 5, 7]] > 1e-5)  # not trivially 0
    with pytest.raises(ValueError, match=r"looks channels-first.*layout='channels_first'"):
        groups.interpolation_floor(_channels_first(x), groups.image_rotations(8))
    with pytest.raises(ValueError, match=r"looks channels-first.*layout='channels_first'"):
        groups.images.invariant_probe(groups.image_rotations(8), (2, 12, 12))


def test_audit_layout_flag_refuses_channels_first_data_by_default(tmp_path, capsys, monkeypatch):
    from jaxsym.audit import cli
    from jaxsym.audit.inputs import AuditError, parse_group

    seen = {}

    def fake_run(args, group, data, *rest, **kwargs):  # stands in for the long audit
        seen.update(group=group, data=data)
        return 0

    monkeypatch.setattr(cli, "_run", fake_run)
    path = tmp_path / "images.npz"
    x = np.random.default_rng(25).random((40, 1, 28, 28), dtype=np.float32)
    np.savez(path, x=x, y=np.arange(40) % 2)
    argv = ["--data", str(path), "--group", "rot-image:5:20", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(1, 28, 28), which looks channels-first" in err
    assert "pass --layout channels_first" in err and "layout=" not in err and not seen
    assert cli.main([*argv, "--layout", "channels_first"]) == 0
    assert seen["group"].action.layout == "channels_first"
    assert seen["data"].x.shape[1:] == (1, 28, 28)
    group = parse_group("shift-image:3", layout="channels_first")
    assert group.action.layout == "channels_first" and group.size == 9
    assert parse_group("d4-image", layout="channels_first").name == "D4(img,channels_first)"
    with pytest.raises(AuditError, match="--layout channels_first applies to the image groups"):
        parse_group("c4", layout="channels_first")
    with pytest.raises(SystemExit):
        cli.main([*argv, "--layout", "NCHW"])
