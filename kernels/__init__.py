"""Measurement kernels: pure, jittable, vmappable functions over arrays.

Higher scores are better everywhere. Nothing here imports ``meta_evo``.

- ``selection``: selection intensity and the rank weights that set selection pressure.
- ``power``: optimization power in bits and its online share.
- ``objective``: lifetime gain, cross-task matrix statistics, update alignment.
- ``regime``: memorization / task identification / general learning from pool and held-out
  matrices (Kirsch et al. 2022), with Wilson intervals over seeds.
- ``generalization``: outcome of the distribution-shift experiment (goal generalizes,
  pseudo-aligned, capability only, no optimization), in and out of distribution.
- ``pursuit``: which objective an answer pursues out of distribution: the proxy margin and the
  capability-invariant proxy pull.
- ``emergence``: onset of a metric above its control along a sweep: exact sign-flip tests,
  fixed-sequence onset, trend test, unconditional bootstrap intervals.
- ``identification``: which algorithm a learner runs: Bayes posterior means of its task from
  its own lifetime history, over its training pool or the full prior (Raventós et al. 2023).
"""

from .emergence import (
    EmergenceResult,
    LogisticFit,
    emergence_onset,
    level_pvalues,
    sign_flip_pvalues,
    within_seed_spearman,
)
from .generalization import (
    OUTCOME_NAMES,
    GeneralizationResult,
    OutcomeResult,
    classify_outcome,
    generalization_outcome,
)
from .identification import (
    analytic_posterior_mean,
    analytic_predictions,
    log_likelihood,
    posterior_mean,
    posterior_weights,
)
from .objective import (
    behavioral_objective,
    lifetime_gain,
    objective_sensitivity,
    proxy_share,
    update_alignment,
)
from .power import online_share, optimization_power_bits
from .pursuit import proxy_margin, proxy_pull, pull_slopes
from .regime import (
    REGIME_NAMES,
    RegimeResult,
    classify_regime,
    regime_from_matrices,
    row_spread,
    task_accuracy,
    wilson_interval,
)
from .selection import (
    beta_for_intensity,
    boltzmann_weights,
    effective_population_size,
    elite_fraction_for_intensity,
    expected_normal_order_statistics,
    rank_weights,
    selection_intensity,
    truncation_weights,
)

__all__ = [
    "EmergenceResult",
    "GeneralizationResult",
    "LogisticFit",
    "OUTCOME_NAMES",
    "OutcomeResult",
    "REGIME_NAMES",
    "RegimeResult",
    "analytic_posterior_mean",
    "analytic_predictions",
    "behavioral_objective",
    "beta_for_intensity",
    "boltzmann_weights",
    "classify_outcome",
    "classify_regime",
    "effective_population_size",
    "elite_fraction_for_intensity",
    "emergence_onset",
    "expected_normal_order_statistics",
    "generalization_outcome",
    "level_pvalues",
    "lifetime_gain",
    "log_likelihood",
    "objective_sensitivity",
    "online_share",
    "optimization_power_bits",
    "posterior_mean",
    "posterior_weights",
    "proxy_margin",
    "proxy_pull",
    "proxy_share",
    "pull_slopes",
    "rank_weights",
    "regime_from_matrices",
    "row_spread",
    "selection_intensity",
    "sign_flip_pvalues",
    "task_accuracy",
    "truncation_weights",
    "update_alignment",
    "wilson_interval",
    "within_seed_spearman",
]
