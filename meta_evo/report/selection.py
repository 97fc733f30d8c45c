"""What selection did, per intensity of a sweep: the effective number of parents of the rank
weights, the realized search scale where the strategy records it, and the drift the mean would
show on noise alone. The rank weights are ``kernels.selection.rank_weights``, the function the
meta-optimizer uses, so the report needs nothing of the meta-optimizer itself.
"""

from __future__ import annotations

import math

import numpy as np

from meta_evo import kernels
from meta_evo.kernels.selection import rank_weights
from meta_evo.report.common import py
from meta_evo.report.result_arrays import learner_and_control


def _level(res, li: int, intensity: float, sigma_hist) -> dict:
    """One intensity: its raw pressure, N_eff, the intensity of the weights, the realized
    sigma (where recorded) and the neutral drift."""
    m, grid = res.cfg.meta, res.grid
    raw = float(grid.pressure[grid.level == li][0])
    w = rank_weights(m.selection, m.population, raw)
    n_eff = float(kernels.effective_population_size(w))
    row = {"intensity": float(intensity), "raw_pressure": py(raw), "n_eff": py(n_eff),
           "intensity_of_weights": py(kernels.selection_intensity(w))}
    if sigma_hist is not None and sigma_hist.ndim == 2:
        s = sigma_hist[grid.level == li]  # [points, generations]
        row["sigma_final"] = py(np.nanmean(s[:, -1]))
        row["sigma_mean"] = py(np.nanmean(s))
        drift = np.sqrt(np.nansum(s**2, axis=1) / n_eff)
        row["neutral_drift"] = py(np.nanmean(drift))
    else:
        row["neutral_drift"] = py(m.sigma * math.sqrt(m.generations / n_eff))
    return row


def selection_summary(res) -> dict:
    """What selection did per intensity: the effective number of parents ``1 / sum w^2`` of
    the rank weights at the grid's raw pressure, the realized search scale (``sigma`` history,
    where the strategy records it), and the drift of the mean on noise alone."""
    m, sw = res.cfg.meta, res.cfg.sweep
    learner, _ = learner_and_control(res)
    sigma_hist = res.arms[learner].history.get("sigma")
    sigma_hist = None if sigma_hist is None else np.asarray(sigma_hist, np.float64)
    gens = m.generations
    levels = [_level(res, li, i, sigma_hist) for li, i in enumerate(sw.intensities)]
    mirrored = m.strategy == "Open_ES" and m.antithetic
    return {
        "strategy": m.strategy, "selection": m.selection, "population": m.population,
        "generations": gens, "sigma": m.sigma, "antithetic": m.antithetic,
        "sigma_recorded": sigma_hist is not None,
        "drift_i0_iid": py(m.sigma * math.sqrt(gens / m.population)),
        "mirrored_cancel_at_i0": mirrored,
        "levels": levels,
    }
