"""jaxsym: approximate group equivariance in JAX — measure it, average it, bound it.

Implements Petrache & Trivedi, "Approximation-Generalization Trade-offs under
(Approximate) Group Equivariance", NeurIPS 2023, arXiv:2305.17592.
"""

from jaxsym import bounds, covering, data, groups, models, predictive, tasks, testing
from jaxsym.averaging import dial, partial_average, symmetrize
from jaxsym.bounds import (
    approximation_error,
    generalization_bound,
    generalization_bound_from_table,
    optimal_level,
    optimal_subset,
    ramp_loss_constants,
    squared_loss_constants,
    tradeoff,
)
from jaxsym.covering import covering_numbers, covering_table, orbit_distances
from jaxsym.data import DataDefect, data_defect
from jaxsym.defects import (
    OrbitStats,
    defect_profile,
    distance_to_equivariance,
    equivariance_error,
    orbit_stats,
    pointwise_defects,
    stabilizer,
    stabilizer_measure,
)
from jaxsym.models import RandomFeaturesModel, random_features_ridge
from jaxsym.predictive import (
    DialRisk,
    PredictiveTradeoff,
    cross_fitting_folds,
    dial_risk,
    predictive_tradeoff,
)
from jaxsym.testing import EquivarianceProfile, assert_equivariant

__version__ = "0.1.0"

__all__ = [
    "DataDefect",
    "PredictiveTradeoff",
    "approximation_error",
    "bounds",
    "covering",
    "covering_numbers",
    "covering_table",
    "data",
    "data_defect",
    "defect_profile",
    "dial",
    "dial_risk",
    "distance_to_equivariance",
    "equivariance_error",
    "generalization_bound",
    "generalization_bound_from_table",
    "groups",
    "optimal_level",
    "optimal_subset",
    "orbit_distances",
    "partial_average",
    "pointwise_defects",
    "predictive",
    "predictive_tradeoff",
    "ramp_loss_constants",
    "random_features_ridge",
    "squared_loss_constants",
    "stabilizer",
    "stabilizer_measure",
    "symmetrize",
    "testing",
    "tradeoff",
]
