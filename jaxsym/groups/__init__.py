"""Groups and transformation sets as pytrees of elements with pure actions."""

from jaxsym._src.group_base import (
    Action,
    MatrixAction,
    TransformationSet,
    cayley_table,
    element_indices,
    element_labels,
    identity_elements,
    inverse_indices,
    orbit_augment,
    transform_batch,
)
from jaxsym.groups.images import (
    GridAction,
    ImageRotationAction,
    ImageTranslationAction,
    flip_rot90,
    image_rotations,
    image_translations,
    interpolation_floor,
    rot90,
    translation_grid,
)
from jaxsym.groups.permutations import PermutationAction, permutations, random_permutations
from jaxsym.groups.planar import cyclic_rotations, dihedral, rotation_range
from jaxsym.groups.shifts import ShiftAction, cyclic_shifts
from jaxsym.groups.spatial import so3
from jaxsym.groups.subsets import (
    element_magnitudes,
    is_closed,
    nested_ranges,
    subset_of,
)

__all__ = [
    "Action",
    "GridAction",
    "ImageRotationAction",
    "ImageTranslationAction",
    "MatrixAction",
    "PermutationAction",
    "ShiftAction",
    "TransformationSet",
    "cayley_table",
    "cyclic_rotations",
    "cyclic_shifts",
    "dihedral",
    "element_indices",
    "element_labels",
    "element_magnitudes",
    "flip_rot90",
    "identity_elements",
    "image_rotations",
    "image_translations",
    "interpolation_floor",
    "inverse_indices",
    "is_closed",
    "nested_ranges",
    "orbit_augment",
    "permutations",
    "random_permutations",
    "rot90",
    "rotation_range",
    "so3",
    "subset_of",
    "transform_batch",
    "translation_grid",
]
