"""The checkpoints of a single run classified as the sweep report classifies its grid points
(``meta-evo analyze``, :mod:`meta_evo.analysis`): per checkpoint, its regime and its outcome in
and out of distribution, and their tables in ``analysis.md``.

A single run has no seeds: each checkpoint is classified on its own (the kernels' per-seed
output of :mod:`meta_evo.report.classify` with S = 1 per checkpoint); shares over seeds exist
only in a sweep.
"""

from __future__ import annotations

from meta_evo.kernels.generalization import OUTCOME_NAMES
from meta_evo.kernels.regime import REGIME_NAMES
from meta_evo.report.classify import (
    OUTCOME_LABELS,
    REGIME_LABELS,
    accurate_text,
    classify_outcomes,
    classify_regimes,
    outcome_thresholds,
    proxy_name,
    regime_thresholds,
)
from meta_evo.report.common import py


def checkpoint_regimes(gens: list[int], meas: dict) -> list[dict]:
    """Per checkpoint (the kernels' per-seed output, S = 1 per checkpoint): the regime and
    what decided it. ``meas``: ``[N, ...]`` arrays, one row per checkpoint."""
    c = classify_regimes(meas)
    r = c["result"]
    th = regime_thresholds(r)
    return [{"generation": int(g), "regime": REGIME_NAMES[int(r.regime[k])],
             "pool_size": int(c["pool_size"][k]), "pool_chance": py(c["chance_pool"][k]),
             "heldout_chance": py(c["chance_heldout"]),
             "pool_accuracy": py(meas["pool_behavioral_accuracy"][k]),
             "heldout_accuracy": py(meas["behavioral_accuracy"][k]),
             "pool_sensitivity": py(meas["pool_objective_sensitivity"][k]),
             "heldout_sensitivity": py(meas["objective_sensitivity"][k]),
             "pool_skill": py(r.pool_skill[k]), "heldout_skill": py(r.heldout_skill[k]),
             "row_spread": py(c["spread"][k]), "thresholds": th}
            for k, g in enumerate(gens)]


def checkpoint_outcomes(gens: list[int], meas: dict, proxy_names: list[str]) -> list[dict]:
    """Per checkpoint (S = 1 per checkpoint): the outcome in and out of distribution."""
    g = classify_outcomes(meas)
    th = outcome_thresholds(g.out_dist)

    def part(o, k):
        return {"outcome": OUTCOME_NAMES[int(o.outcome[k])],
                "proxy": proxy_name(proxy_names, o.proxy[k]),
                "proxy_share": py(o.proxy_share[k]), "accuracy": py(o.task_accuracy[k]),
                "sensitivity": py(o.sensitivity[k]), "gain": py(o.gain[k])}
    return [{"generation": int(gen), "in_dist": part(g.in_dist, k),
             "out_dist": part(g.out_dist, k), "thresholds": th} for k, gen in enumerate(gens)]


def _v(x, digits=2):
    return "—" if x is None else f"{x:.{digits}f}"


def _outcomes_table(outcomes: list[dict]) -> list[str]:
    th = outcomes[0]["thresholds"]
    lines = ["## Which objective", "",
             f"Goal generalizes = task-column {accurate_text(th)} and sensitivity > "
             f"{th['sensitivity_threshold']:g}; no optimization = gain <= "
             f"{th['gain_threshold']:g}; pseudo-aligned = proxy share > "
             f"{th['proxy_threshold']:g}.", "",
             "| generation | ID outcome | OOD outcome | OOD proxy share | which proxy | OOD "
             "accuracy | OOD S | OOD gain | ID accuracy | ID S |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in outcomes:
        i, o = r["in_dist"], r["out_dist"]
        lines.append(f"| {r['generation']} | {OUTCOME_LABELS[i['outcome']]} | "
                     f"{OUTCOME_LABELS[o['outcome']]} | {_v(o['proxy_share'])} | "
                     f"{o['proxy'] or '—'} | {_v(o['accuracy'])} | {_v(o['sensitivity'])} | "
                     f"{_v(o['gain'], 3)} | {_v(i['accuracy'])} | {_v(i['sensitivity'])} |")
    return lines + [""]


def _regimes_table(regimes: list[dict]) -> list[str]:
    th = regimes[0]["thresholds"]
    lines = ["## Regime", "",
             f"Fit: {accurate_text(th)} and sensitivity > "
             f"{th['sensitivity_threshold']:g}; near-identical rows: row spread <= "
             f"{th['spread_threshold']:g}; pool block of {regimes[0]['pool_size']} "
             "training tasks.", "",
             "| generation | pool accuracy (chance) | held-out accuracy (chance) | pool S | "
             "held-out S | row spread | regime |", "|---|---|---|---|---|---|---|"]
    for r in regimes:
        lines.append(f"| {r['generation']} | {_v(r['pool_accuracy'])} "
                     f"({_v(r['pool_chance'])}) | {_v(r['heldout_accuracy'])} "
                     f"({_v(r['heldout_chance'])}) | {_v(r['pool_sensitivity'])} | "
                     f"{_v(r['heldout_sensitivity'])} | {_v(r['row_spread'])} | "
                     f"{REGIME_LABELS[r['regime']]} |")
    return lines + [""]


def checkpoint_markdown(regimes: list[dict] | None, outcomes: list[dict] | None,
                        title: str = "") -> str:
    """The regime and which-objective tables for the checkpoints of one run."""
    lines = [f"# Checkpoint analysis{': ' + title if title else ''}", "",
             "One run is one grid point: there are no seeds to take shares over, so each "
             "checkpoint is classified on its own (the kernels' per-seed output, S = 1).", ""]
    if outcomes:
        lines += _outcomes_table(outcomes)
    if regimes:
        lines += _regimes_table(regimes)
    return "\n".join(lines)
