"""A sweep result read as arrays: which arm is the learner and which its control, how the report
names them, each arm's scalar metrics ``[G]`` at a measured generation, one diversity level of
them as ``[L, S]`` (levels by seeds), and the grid points of each (intensity, diversity) level.

Everything here reads a :class:`meta_evo.sweep.SweepResult` or its grid by attribute only (the
report does not import the sweep).
"""

from __future__ import annotations

import numpy as np

from meta_evo.measure import ANSWER_SCALARS, OOD_SCALARS, SCALARS
from meta_evo.report.common import DEFAULT_PRIMARY


def arm_label(name: str, arm) -> str:
    """How the report names an arm: its ``label`` if it has one, else its key."""
    return getattr(arm, "label", None) or name


def arm_labels(res) -> dict:
    """``{arm: label}`` of every arm of a sweep result."""
    return {k: arm_label(k, a) for k, a in res.arms.items()}


def learner_and_control(res) -> tuple[str, str | None]:
    """The learner arm is the first entry of ``res.arms``, the control (if any) the second."""
    names = list(res.arms)
    return names[0], (names[1] if len(names) > 1 else None)


def primary_metric(cfg) -> str:
    return getattr(cfg.sweep, "primary_metric", DEFAULT_PRIMARY)


def scalars(arm, gen: int) -> dict:
    """{metric: [G]} of an arm at a measured generation: kernel scalars (held-out, pool and,
    with a training region, out of distribution) + learner describe."""
    meas = arm.measures[gen]
    out = {k: np.asarray(meas[k], np.float64) for k in SCALARS + OOD_SCALARS + ANSWER_SCALARS
           if k in meas}
    for k, v in arm.describe.get(gen, {}).items():
        out[k] = np.asarray(v, np.float64)
    return out


def by_level(grid, values: np.ndarray, div_index: int, levels: int, seeds: int) -> np.ndarray:
    """[L, S] of one diversity level from a [G] vector (grid: diversity, intensity, seed)."""
    sel = grid.div_index == div_index
    out = np.full((levels, seeds), np.nan)
    out[grid.level[sel], grid.seed[sel]] = values[sel]
    return out


def final_measures(res) -> dict:
    """{arm: final measurement outputs [G, ...]}."""
    return {a: arm.measures[res.cfg.meta.generations] for a, arm in res.arms.items()}


def grid_levels(grid, intensities, diversities):
    """(li, intensity, di, diversity, grid indices ordered by seed) of every level, diversity
    outermost."""
    for di, d in enumerate(diversities):
        for li, i in enumerate(intensities):
            idx = np.nonzero((grid.level == li) & (grid.div_index == di))[0]
            idx = idx[np.argsort(grid.seed[idx])]
            yield li, float(i), di, int(d), idx


def select(meas: dict, idx: np.ndarray, keys) -> dict:
    """The entries ``keys`` of ``meas`` (those present) at grid indices ``idx``."""
    return {k: np.asarray(meas[k])[idx] for k in keys if k in meas}
