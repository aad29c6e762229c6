"""Groups and transformation sets as pytrees of elements with pure actions."""

from jaxsym.groups._base import (
    Action,
    MatrixAction,
    TransformationSet,
    cayley_table,
    identity_elements,
    inverse_indices,
    orbit_augment,
    transform_batch,
)
from jaxsym.groups.images import GridAction, flip_rot90, rot90
from jaxsym.groups.permutations import PermutationAction, permutations, random_permutations
from jaxsym.groups.planar import cyclic_rotations, dihedral, rotation_range
from jaxsym.groups.shifts import ShiftAction, cyclic_shifts
from jaxsym.groups.spatial import so3

__all__ = [
    "Action",
    "GridAction",
    "MatrixAction",
    "PermutationAction",
    "ShiftAction",
    "TransformationSet",
    "cayley_table",
    "cyclic_rotations",
    "cyclic_shifts",
    "dihedral",
    "flip_rot90",
    "identity_elements",
    "inverse_indices",
    "orbit_augment",
    "permutations",
    "random_permutations",
    "rot90",
    "rotation_range",
    "so3",
    "transform_batch",
]
