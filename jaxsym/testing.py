"""Test helpers for users' models: ``assert_equivariant``."""

from __future__ import annotations

import numpy as np

from jaxsym.defects import defect_profile


def assert_equivariant(f, group, x, *, atol: float = 1e-5, rtol: float = 1e-5) -> None:
    """Assert ``‖f(ρ_X(g) x) − ρ_Y(g) f(x)‖ ≤ atol + rtol · max_b ‖f(x_b)‖`` for all g.

    Raises:
        AssertionError: naming the worst element, its defect and the tolerance.
    """
    profile = np.asarray(defect_profile(f, x, group, "max"))
    scale = float(np.max(np.linalg.norm(np.asarray(f(x)).reshape(len(x), -1), axis=-1)))
    tolerance = atol + rtol * scale
    worst = int(np.argmax(profile))
    if profile[worst] > tolerance:
        raise AssertionError(
            f"f is not equivariant under {group.name}: element {worst} has defect "
            f"{profile[worst]:.3g} > tolerance {tolerance:.3g} "
            f"({int(np.sum(profile > tolerance))} of {group.size} elements exceed it)."
        )
