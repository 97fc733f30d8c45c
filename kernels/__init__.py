"""Measurement kernels: pure, jittable, vmappable functions over arrays.

Higher scores are better everywhere. Nothing here imports ``meta_evo``.

- ``selection``: selection intensity and the rank weights that set selection pressure.
- ``power``: optimization power in bits and its online share.
- ``objective``: lifetime gain, cross-task matrix statistics, update alignment.
- ``emergence``: onset of a metric above its control along a sweep: exact sign-flip tests,
  fixed-sequence onset, trend test, unconditional bootstrap intervals.
"""

from kernels.emergence import (
    EmergenceResult,
    LogisticFit,
    emergence_onset,
    level_pvalues,
    sign_flip_pvalues,
    within_seed_spearman,
)
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
    effective_population_size,
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
    "effective_population_size",
    "elite_fraction_for_intensity",
    "emergence_onset",
    "expected_normal_order_statistics",
    "level_pvalues",
    "lifetime_gain",
    "objective_sensitivity",
    "online_share",
    "optimization_power_bits",
    "proxy_share",
    "selection_intensity",
    "sign_flip_pvalues",
    "truncation_weights",
    "update_alignment",
    "within_seed_spearman",
]
