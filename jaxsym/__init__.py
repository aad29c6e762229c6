"""jaxsym: approximate group equivariance in JAX — measure it, average it, bound it.

Implements Petrache & Trivedi, "Approximation-Generalization Trade-offs under
(Approximate) Group Equivariance", NeurIPS 2023, arXiv:2305.17592; every formula
is stated in the project's docs/theory.md.

Layers (each imports only the ones above it): ``groups`` → measures
(``averaging``, ``defects``) → ``covering`` → bounds (``constants``, ``bounds``,
``approximation``, ``subgroups``), data (``data``, ``predictive``) → ``decision`` →
training (``training``, ``training_report``) →
interfaces (``audit``, imported only by the command line). Optional features
(``jaxsym.flax``, Sinkhorn in ``data``, the audit) import their extras lazily.
"""

import jaxsym._src.interrupt  # noqa: F401  first: a quiet Ctrl-C while the command line imports
from jaxsym import (
    approximation,
    bounds,
    constants,
    covering,
    data,
    datasets,
    decision,
    defects,
    groups,
    lie,
    models,
    predictive,
    subgroups,
    tasks,
    testing,
    training,
    training_report,
)
from jaxsym.approximation import (
    ApproximationBounds,
    OptimalLevel,
    TradeOff,
    approximation_error,
    optimal_level,
    tradeoff,
)
from jaxsym.averaging import dial, partial_average, symmetrize
from jaxsym.bounds import (
    GeneralizationBound,
    generalization_bound,
    generalization_bound_from_table,
)
from jaxsym.certificates import HeldOutBound, held_out_bound
from jaxsym.constants import (
    BoundConstants,
    LossConstants,
    absolute_loss_constants,
    clipped_squared_loss_constants,
    ramp_loss_constants,
    squared_loss_constants,
)
from jaxsym.covering import (
    CoveringTable,
    Domain,
    covering_numbers,
    covering_table,
    domain_covering_numbers,
    orbit_distances,
)
from jaxsym.data import DataDefect, data_defect
from jaxsym.decision import (
    Symmetry,
    SymmetryChoice,
    SymmetryProblem,
    choose_symmetry,
    cross_fit,
    post_hoc,
    symmetry_problem,
)
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
from jaxsym.lie import lie_derivative
from jaxsym.models import RandomFeaturesModel, RandomFeaturesRidge, random_features_ridge
from jaxsym.predictive import (
    DialRisk,
    cross_fitting_folds,
    dial_risk,
)
from jaxsym.subgroups import all_subgroups, subgroup_chain
from jaxsym.testing import EquivarianceProfile, assert_equivariant
from jaxsym.training import BoundRegularizer, BudgetModel, bound_regularizer
from jaxsym.training_report import RegularizerReport, regularizer_report

__version__ = "0.2.0"

__all__ = [
    "ApproximationBounds",
    "BoundConstants",
    "BoundRegularizer",
    "BudgetModel",
    "CoveringTable",
    "DataDefect",
    "DialRisk",
    "Domain",
    "EquivarianceProfile",
    "GeneralizationBound",
    "HeldOutBound",
    "LossConstants",
    "OptimalLevel",
    "OrbitStats",
    "RandomFeaturesModel",
    "RandomFeaturesRidge",
    "RegularizerReport",
    "Symmetry",
    "SymmetryChoice",
    "SymmetryProblem",
    "TradeOff",
    "absolute_loss_constants",
    "all_subgroups",
    "approximation",
    "approximation_error",
    "assert_equivariant",
    "bound_regularizer",
    "bounds",
    "choose_symmetry",
    "clipped_squared_loss_constants",
    "constants",
    "covering",
    "covering_numbers",
    "covering_table",
    "cross_fit",
    "cross_fitting_folds",
    "data",
    "data_defect",
    "datasets",
    "decision",
    "defect_profile",
    "defects",
    "dial",
    "dial_risk",
    "distance_to_equivariance",
    "domain_covering_numbers",
    "equivariance_error",
    "generalization_bound",
    "generalization_bound_from_table",
    "groups",
    "held_out_bound",
    "lie",
    "lie_derivative",
    "models",
    "optimal_level",
    "orbit_distances",
    "orbit_stats",
    "partial_average",
    "pointwise_defects",
    "post_hoc",
    "predictive",
    "ramp_loss_constants",
    "random_features_ridge",
    "regularizer_report",
    "squared_loss_constants",
    "stabilizer",
    "stabilizer_measure",
    "subgroup_chain",
    "subgroups",
    "symmetrize",
    "symmetry_problem",
    "tasks",
    "testing",
    "tradeoff",
    "training",
    "training_report",
]
