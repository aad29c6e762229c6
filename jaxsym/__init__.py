"""jaxsym: approximate group equivariance in JAX — measure it, average it, bound it.

Implements Petrache & Trivedi, "Approximation-Generalization Trade-offs under
(Approximate) Group Equivariance", NeurIPS 2023, arXiv:2305.17592.
"""

from jaxsym import groups, testing
from jaxsym.averaging import dial, partial_average, symmetrize
from jaxsym.defects import (
    defect_profile,
    distance_to_equivariance,
    equivariance_error,
    pointwise_defects,
    stabilizer,
    stabilizer_measure,
)

__version__ = "0.1.0"

__all__ = [
    "defect_profile",
    "dial",
    "distance_to_equivariance",
    "equivariance_error",
    "groups",
    "partial_average",
    "pointwise_defects",
    "stabilizer",
    "stabilizer_measure",
    "symmetrize",
    "testing",
]
