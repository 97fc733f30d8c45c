"""Measurement kernels: pure, jittable, vmappable functions over arrays.

Higher scores are better everywhere. Nothing here imports ``meta_evo``.

- ``selection``: selection intensity and the rank weights that set selection pressure.
- ``power``: optimization power in bits and its online share.
- ``objective``: lifetime gain, cross-task matrix statistics, update alignment.
- ``emergence``: onset of a metric above its control along a sweep, with bootstrap CIs.
"""

from kernels.emergence import EmergenceResult, LogisticFit, emergence_onset
from kernels.objective import (
    behavioral_objective,
    lifetime_gain,
    objective_sensitivity,
    proxy_share,
    update_alignment,
)
from kernels.power import online_share, optimization_power_bits
from kernels.selection import (
    beta_for_intensity,
    boltzmann_weights,
    elite_fraction_for_intensity,
    expected_normal_order_statistics,
    selection_intensity,
    truncation_weights,
)

__all__ = [
    "EmergenceResult",
    "LogisticFit",
    "behavioral_objective",
    "beta_for_intensity",
    "boltzmann_weights",
    "elite_fraction_for_intensity",
    "emergence_onset",
    "expected_normal_order_statistics",
    "lifetime_gain",
    "objective_sensitivity",
    "online_share",
    "optimization_power_bits",
    "proxy_share",
    "selection_intensity",
    "truncation_weights",
    "update_alignment",
]
