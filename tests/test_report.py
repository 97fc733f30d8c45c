"""The sweep report on synthetic sweep results (no evolution, no physics), and the calibration
of its onset tests on synthetic null and step sweeps, through the code the report runs
(``meta_evo.report.stats.onset_tests``: jit + vmap over many sweeps at once).

Calibration figures are printed (run pytest with -s to see them) with their Monte Carlo
standard errors."""

import json
import math
import re

import jax
import numpy as np
import pytest
from helpers import cfg as make_cfg

from meta_evo.measure import SCALARS
from meta_evo.report import (
    build_report,
    holm_fixed_sequence,
    markdown,
    mean_ci,
    onset_tests,
    write_report,
)
from meta_evo.report.stats import level_pvalue_batch, onset_batch
from meta_evo.sweep import ArmResult, SweepResult, make_grid

BASE = ["task.family=analytic", "agent.kind=direct", "learner.lifetime=3", "meta.population=8",
        "meta.generations=4", "measure.heldout_tasks=4", "sweep.intensities=[0,0.4,0.8,1.2]",
        "sweep.seeds=12", "sweep.diversities=[1,0]", "log.progress=false"]
N, K, GENS = 4, 3, 4
ALPHA = 0.05


def _arm(grid, learner: str, rng, rising: bool, step: bool = True,
         sigma: bool = False) -> ArmResult:
    """Synthetic arm: for the learner, objective sensitivity (the primary metric), behavioral
    accuracy and lifetime gain jump from level 2 (intensity 0.8) where tasks vary (d=0), and
    stay flat with a fixed task (d=1)."""
    g = grid.size
    jump = (grid.level >= 2) & (grid.diversity == 0) & rising

    def scalars(final: bool):
        out = {k: rng.normal(0.0, 0.01, g) for k in SCALARS}
        out["objective_sensitivity"] = np.where(jump & final, 1.5, 0.0) + rng.normal(0, 0.05, g)
        out["behavioral_accuracy"] = np.where(jump & final, 0.9, 0.25) + rng.normal(0, 0.02, g)
        out["lifetime_gain"] = np.where(jump & final, 2.0, 0.0) + rng.normal(0, 0.05, g)
        return out

    def measured(final: bool):
        m = scalars(final)
        m["curve"] = np.tile(np.linspace(-2, -1, K + 1), (g, 1))
        m["curves"] = np.tile(m["curve"][:, None], (1, N, 1))
        m["matrix"] = rng.normal(-3, 1, (g, N, N + 1))
        m["predicted"] = np.argmax(m["matrix"][..., :N], -1)
        m["tail_used"] = np.zeros(g)
        return m

    desc = {}
    if step:
        desc = {0: {"step": np.zeros(g)},
                GENS: {"step": np.where(grid.level > 0, 0.3, 0.0) + rng.normal(0, 0.01, g)}}
    hist = {"fitness_mean": rng.normal(-5, 1, (g, GENS)),
            "fitness_best": rng.normal(-4, 1, (g, GENS))}
    if step:
        hist["mean_step"] = np.tile(np.linspace(0, 0.3, GENS), (g, 1))
    if sigma:
        hist["sigma"] = np.tile(np.array([0.1, 0.09, 0.08, 0.07]), (g, 1))
    return ArmResult(learner=learner, history=hist,
                     measures={0: measured(False), GENS: measured(True)},
                     theta=np.zeros((g, 3)), describe=desc, env_steps=1000, wall_s=1.0,
                     first_chunk_s=0.5, measure_s=0.2, group_size=g, groups=1, chunk=2,
                     traces={"chunk": 1, "measure": 1})


def _result(extra=(), **arms_kw):
    cfg = make_cfg(BASE, *extra)
    grid = make_grid(cfg)
    # the same noise in both arms: paired differences are exactly 0 where nothing rises
    arms = {"es": _arm(grid, "es", np.random.default_rng(0), True, **arms_kw),
            "amortized": _arm(grid, "amortized", np.random.default_rng(0), False, **arms_kw)}
    return SweepResult(cfg=cfg, grid=grid, arms=arms, out_dir=None, wall_s=3.0, env_steps=2000)


@pytest.fixture(scope="module")
def report():
    return build_report(_result())


def test_mean_ci_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert mean_ci([1.0, float("nan")]) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_primary_onset_found_where_the_metric_rises_and_none_where_it_does_not(report):
    on = {(o["metric"], o["diversity"]): o for o in report["onsets"]}
    sens = on[("objective_sensitivity", 0)]
    # two primary tests (d = 1 and d = 0) are one Holm family: each starts at alpha / 2, and
    # neither passes at every level (so neither hands its share on)
    assert sens["role"] == "primary" and sens["alpha"] == pytest.approx(ALPHA / 2)
    assert sens["family_size"] == 2 and report["tests"]["primary_tests"] == 2
    assert sens["found"] and sens["onset"] == pytest.approx(0.8)
    assert sens["control"] == "amortized"  # the second arm, by order
    assert sens["p"] == pytest.approx(2.0**-12, rel=1e-6) and sens["testable"]
    assert sens["onset_ci"] == [pytest.approx(0.8), pytest.approx(0.8)]
    assert sens["onset_prob"] == 1.0
    assert 0.4 <= sens["midpoint"] <= 0.8
    assert sens["trend"]["rho"] > 0.5 and sens["trend"]["p"] == pytest.approx(2.0**-12, rel=1e-6)
    assert sens["summary"].startswith("onset at i = 0.80")
    fixed = on[("objective_sensitivity", 1)]
    assert fixed["role"] == "primary"
    assert not fixed["found"] and fixed["onset"] is None and fixed["summary"] == "none in range"
    # the interval is unconditional: no resample finds an onset, so it reads "none"
    assert fixed["onset_ci"] == ["none", "none"] and fixed["onset_prob"] == 0.0
    assert report["tests"]["primary_metric"] == "objective_sensitivity"


def test_exploratory_tests_are_holm_adjusted(report):
    on = {(o["metric"], o["diversity"]): o for o in report["onsets"]}
    con = {(o["metric"], o["diversity"]): o for o in report["contrasts"]}
    explore = [o for o in report["onsets"] + report["contrasts"] if o["role"] == "exploratory"]
    m = len(explore)
    assert m == report["tests"]["exploratory_tests"] == explore[0]["family_size"]
    # every non-primary metric and every contrast is in the family
    assert m == len(report["onsets"]) + len(report["contrasts"]) - 2
    assert all(o["role"] == "exploratory" for o in report["contrasts"])
    local = explore[0]["alpha"]
    assert all(o["alpha"] == local for o in explore)
    assert ALPHA / m <= local + 1e-9 and local < ALPHA
    for o in explore:  # a test passes after adjustment iff its adjusted p is within alpha
        assert o["found"] == (o["p_adjusted"] <= ALPHA + 1e-9), o["metric"]
        assert o["p_adjusted"] >= o["p_sequence"][-1] - 1e-12
    acc = on[("behavioral_accuracy", 0)]
    assert acc["found"] and acc["onset"] == pytest.approx(0.8) and acc["p_adjusted"] <= ALPHA
    assert not on[("behavioral_accuracy", 1)]["found"]
    # the diversity contrast (varying tasks against the fixed task, same arm, paired by seed)
    # is tested for the primary metric only, and a learner parameter such as the step is not
    # in the tested family (report.common.TESTED_METRICS keeps Holm's thresholds reachable)
    assert list(con) == [("objective_sensitivity", 0)]
    assert con[("objective_sensitivity", 0)]["found"]
    assert con[("objective_sensitivity", 0)]["onset"] == pytest.approx(0.8)
    assert ("step", 0) not in on


def test_level_table_points_and_selection(report):
    rows = [r for r in report["levels"] if r["arm"] == "es" and r["diversity"] == 0]
    assert [r["intensity"] for r in rows] == [0.0, 0.4, 0.8, 1.2]
    assert rows[-1]["behavioral_accuracy"]["mean"] == pytest.approx(0.9, abs=0.02)
    lo, hi = rows[-1]["behavioral_accuracy"]["ci"]
    assert lo < 0.9 < hi
    assert len(report["points"]) == 2 * 4 * 12 * 2
    assert report["axes"]["raw_pressures"][0] == pytest.approx(1.0, abs=1e-4)
    assert report["strongest"]["arm"] == "es" and "control_matrix" in report["strongest"]
    sel = report["selection"]
    n_eff = [r["n_eff"] for r in sel["levels"]]
    assert n_eff[0] == pytest.approx(8.0, rel=1e-4)  # i = 0: every member a parent
    assert all(a > b for a, b in zip(n_eff, n_eff[1:], strict=False))
    assert sel["drift_i0_iid"] == pytest.approx(0.1 * math.sqrt(4 / 8), rel=1e-5)
    assert sel["levels"][0]["neutral_drift"] == pytest.approx(sel["drift_i0_iid"], rel=1e-4)
    assert not sel["sigma_recorded"] and "sigma_final" not in sel["levels"][0]
    json.dumps(report)  # JSON-ready throughout


def test_markdown_and_files(report, tmp_path):
    md = markdown(report)
    assert "## Onsets" in md and "### Primary" in md and "### Exploratory" in md
    assert "none in range" in md and "onset at i = 0.80" in md
    assert "exploratory (alpha" in md and "primary (alpha 0.025)" in md  # a family of two
    assert "smallest achievable p is 2^-12" in md
    assert "### Diversity contrast" in md and "## What selection did" in md
    assert "sigma * sqrt(G / M)" in md
    assert "### behavioral accuracy" in md and re.search(r"\| 0\.[89]\d\d ± 0\.0\d\d \|", md)
    paths = write_report(tmp_path, report)
    names = {p.name for p in paths}
    assert names == {"report.json", "report.md", "phase_diagram.png", "lifetime_curves.png",
                     "evolution.png", "cross_task_matrix.png"}
    for p in paths:
        assert p.stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["onsets"]


def test_order_based_arms_labels_missing_step_and_sigma(tmp_path):
    """The control is the second arm whatever its name; a learner without "step" (gru) gets no
    step rows or panels; a recorded sigma is reported."""
    res = _result(step=False, sigma=True)
    arms = list(res.arms.values())
    arms[1].label = "gru, shuffled reward"
    res.arms = {"gru": arms[0], "gru_shuffled": arms[1]}
    rep = build_report(res)
    assert rep["learner"] == "gru" and rep["control"] == "gru_shuffled"
    assert rep["arm_labels"]["gru_shuffled"] == "gru, shuffled reward"
    assert {o["control"] for o in rep["onsets"]} == {"gru, shuffled reward"}
    assert "step" not in {o["metric"] for o in rep["onsets"]}
    sel = rep["selection"]
    assert sel["sigma_recorded"] and sel["levels"][0]["sigma_final"] == pytest.approx(0.07)
    drift = math.sqrt((0.1**2 + 0.09**2 + 0.08**2 + 0.07**2) / 8)
    assert sel["levels"][0]["neutral_drift"] == pytest.approx(drift, rel=1e-4)
    md = markdown(rep)
    assert "### evolved step size" not in md and "control arm `gru, shuffled reward`" in md
    assert "realized sigma" in md
    names = {p.name for p in write_report(tmp_path, rep)}
    assert "phase_diagram.png" in names


def test_too_few_seeds_say_so():
    res = _result(["sweep.seeds=3"])
    rep = build_report(res)
    assert all(not o["found"] and not o["testable"] for o in rep["onsets"] + rep["contrasts"])
    sens = next(o for o in rep["onsets"] if o["metric"] == "objective_sensitivity"
                and o["diversity"] == 0)
    assert sens["summary"] == ("too few seeds to test at alpha 0.025 (smallest p with 3 seeds: "
                               "0.12)")  # two primary tests: one Holm family
    md = markdown(rep)
    assert "too few seeds to test at alpha" in md and "onset at i" not in md


def test_monte_carlo_p_values_above_16_seeds():
    rep = build_report(_result(["sweep.seeds=18"]))
    assert rep["tests"]["exact"] is False
    assert rep["tests"]["min_p"] == pytest.approx(1 / 10000, rel=1e-5)
    sens = next(o for o in rep["onsets"] if o["metric"] == "objective_sensitivity"
                and o["diversity"] == 0)
    assert sens["found"] and sens["onset"] == pytest.approx(0.8) and not sens["exact"]
    assert sens["p"] == pytest.approx(1 / 10000, rel=1e-5) and 0 < sens["p_se"] < 1e-3
    md = markdown(rep)
    assert "Monte Carlo estimates over random sign patterns" in md and "0.0001 ± 0.0001" in md


def test_holm_fixed_sequence_known_answers():
    # [m, L] sequence p-values, lowest level first (the last column is where a test starts)
    q = np.array([[0.5, 0.01], [0.5, 0.02], [0.9, 0.5]])
    local, p_adj = holm_fixed_sequence(q, 0.05)
    assert local == pytest.approx(0.05 / 3)  # no test passes every level: Bonferroni
    np.testing.assert_allclose(p_adj, [0.03, 0.06, 1.0])
    # test 0 passes every level at 0.05 / 3: its share goes to the others
    q = np.array([[0.001, 0.001], [0.5, 0.02], [0.9, 0.5]])
    local, p_adj = holm_fixed_sequence(q, 0.05)
    assert local == pytest.approx(0.025)
    np.testing.assert_allclose(p_adj, [0.003, 0.04, 1.0])
    # random families: passing at the local level <=> adjusted p within alpha, and the
    # adjusted p never falls below the unadjusted one
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1, 12))
        p = rng.uniform(0, 0.05, (m, 4)) ** rng.uniform(0.5, 3)
        seq = np.maximum.accumulate(p[:, ::-1], axis=1)[:, ::-1]
        local, p_adj = holm_fixed_sequence(seq, 0.05)
        np.testing.assert_array_equal(seq[:, -1] <= local * (1 + 1e-9), p_adj <= 0.05)
        assert np.all(p_adj >= seq[:, -1] - 1e-15)


# --- calibration ----------------------------------------------------------------------------
LEVELS = 5
PRESSURES = np.linspace(0.0, 1.6, LEVELS)
NUM = 500


def _sweeps(rng, num, seeds, step=0.0, onset=2):
    """values, control [num, L, S]: a seed effect shared by both arms, independent noise of
    SD 1/sqrt(2) each (the paired difference has SD 1), and ``step`` SDs added to the values
    from level ``onset`` up."""
    shared = rng.normal(0, 1, (num, 1, seeds))
    values = shared + rng.normal(0, math.sqrt(0.5), (num, LEVELS, seeds))
    control = shared + rng.normal(0, math.sqrt(0.5), (num, LEVELS, seeds))
    values[:, onset:] += step
    return values, control


def _run(values, control, key=0):
    """Each sweep's one test at alpha (what one primary test of a report runs)."""
    return onset_batch(PRESSURES, values, control, np.full(values.shape[0], ALPHA),
                       jax.random.PRNGKey(key), num_bootstrap=16)


def _within_exact(rate: float, exact: float, n: int) -> bool:
    """The observed rate within 3 standard errors of the exact size (SE from the exact size,
    so a test whose size doubled would fail)."""
    return abs(rate - exact) <= 3 * math.sqrt(exact * (1 - exact) / n)


def _rate(x):
    x = np.asarray(x, np.float64)
    return float(x.mean()), float(np.sqrt(x.mean() * (1 - x.mean()) / x.size))


@pytest.mark.parametrize("seeds", [5, 8, 12])
def test_calibration_false_onset_rate(seeds):
    rng = np.random.default_rng(100 + seeds)
    r = _run(*_sweeps(rng, NUM, seeds))
    rate, se = _rate(r.found)
    exact = math.floor(ALPHA * 2**seeds) / 2**seeds  # P(p_top <= alpha) under the null
    print(f"\ncalibration S={seeds}: false-onset rate {rate:.4f} ± {se:.4f} (MC SE, {NUM} null "
          f"sweeps of {LEVELS} levels; exact size of the top-level test {exact:.4f})")
    assert _within_exact(rate, exact, NUM)
    assert np.all(r.testable)
    # and the unconditional interval says "none" at its upper end in nearly every null sweep
    assert np.mean(np.isinf(r.onset_ci[:, 1])) >= 0.9


def test_calibration_three_seeds_never_claim():
    rng = np.random.default_rng(3)
    null = _sweeps(rng, NUM, 3)
    huge = _sweeps(rng, NUM, 3, step=20.0)
    r = _run(np.concatenate([null[0], huge[0]]), np.concatenate([null[1], huge[1]]))
    print(f"\ncalibration S=3: onsets claimed {int(r.found.sum())} of {2 * NUM} sweeps "
          f"({NUM} null, {NUM} with a 20 SD step); smallest p {float(r.min_p[0]):.3f}")
    assert not r.found.any() and not r.testable.any() and float(r.onset_prob.max()) == 0.0


def test_calibration_power_and_onset_level():
    rng = np.random.default_rng(8)
    values, control = _sweeps(rng, NUM, 8, step=1.5, onset=2)
    r = _run(values, control)
    power, se = _rate(r.found)
    right, se_right = _rate(r.onset_index == 2)
    early, _ = _rate((r.onset_index >= 0) & (r.onset_index < 2))
    print(f"\ncalibration S=8, step 1.5 SD from level 2 of {LEVELS}: power {power:.3f} ± "
          f"{se:.3f}, onset at the right level {right:.3f} ± {se_right:.3f}, early {early:.3f} "
          f"(MC SE, {NUM} sweeps)")
    assert power >= 0.8
    assert right >= 0.7  # most runs put the onset on the step
    assert early <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / NUM)


def test_calibration_exploratory_family_wise_error():
    """Families of 10 null exploratory tests at S = 10: the chance that any test of a family
    claims an onset stays within alpha (Holm, graphical, through the report's rule)."""
    reports, m, seeds = 300, 10, 10
    rng = np.random.default_rng(10)
    values, control = _sweeps(rng, reports * m, seeds)
    _, seq, _ = level_pvalue_batch(values, control, jax.random.PRNGKey(0))
    seq = seq.reshape(reports, m, LEVELS)
    any_claim = []
    for fam in seq:
        local, p_adj = holm_fixed_sequence(fam, ALPHA)
        any_claim.append(bool((p_adj <= ALPHA).any()))
    rate, se = _rate(any_claim)
    print(f"\ncalibration exploratory family (m={m}, S={seeds}): family-wise false-onset rate "
          f"{rate:.4f} ± {se:.4f} (MC SE, {reports} families)")
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reports)


def _family_error(seq_null, seq_true, alpha=ALPHA) -> list[bool]:
    """Per family: whether a null test claims an onset, with the true tests in the family."""
    out = []
    for fn, ft in zip(seq_null, seq_true, strict=True):
        _, p_adj = holm_fixed_sequence(np.concatenate([fn, ft]), alpha)
        out.append(bool((p_adj[:len(fn)] <= alpha).any()))
    return out


def test_calibration_exploratory_family_under_a_partial_null():
    """3 of 10 tests with a real effect at every level (which finish and pass their alpha on
    to the others), 7 null: the chance that a null test claims an onset stays within alpha."""
    reports, seeds = 300, 10
    rng = np.random.default_rng(11)
    nv, nc = _sweeps(rng, reports * 7, seeds)
    tv, tc = _sweeps(rng, reports * 3, seeds, step=3.0, onset=0)
    key = jax.random.PRNGKey(1)
    _, sn, _ = level_pvalue_batch(nv, nc, key)
    _, st, _ = level_pvalue_batch(tv, tc, key)
    err = _family_error(sn.reshape(reports, 7, LEVELS), st.reshape(reports, 3, LEVELS))
    rate, se = _rate(err)
    print(f"\ncalibration partial null (7 null + 3 true, S={seeds}): family-wise error "
          f"{rate:.4f} ± {se:.4f} (MC SE, {reports} families)")
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reports)


def test_primary_family_of_six_diversity_levels_holds_its_level():
    """The primary metric tested at 6 diversity levels is one family (onset_tests): under the
    global null the chance of any primary onset stays within alpha."""
    reports, m, seeds = 300, 6, 8
    rng = np.random.default_rng(12)
    values, control = _sweeps(rng, reports * m, seeds)
    _, seq, _ = level_pvalue_batch(values, control, jax.random.PRNGKey(2))
    claims = [bool((holm_fixed_sequence(f, ALPHA)[1] <= ALPHA).any())
              for f in seq.reshape(reports, m, LEVELS)]
    rate, se = _rate(claims)
    assert rate <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / reports)
    # and onset_tests puts the primary tests in one family: each at alpha / 6 at first
    t = onset_tests(PRESSURES, values[:m], control[:m], np.ones(m, bool), jax.random.PRNGKey(3),
                    alpha=ALPHA, num_bootstrap=16)
    assert t["primary_family_size"] == m and np.all(t["alpha"] <= ALPHA / m * (1 + 1e-9))


def test_findings_claim_no_more_than_the_tests_show(report):
    """The synthetic sweep: sensitivity and accuracy rise where tasks vary, update alignment
    does not (the same noise in both arms). The report names what passed and never says
    "learned optimization"; with all three passing it does, from the highest onset."""
    from meta_evo.report.findings import claim, findings_section

    rows = {r["diversity"]: r for r in report["findings"]["rows"]}
    got = {x["finding"]: x["passed"] for x in rows[0]["findings"]}
    assert got == {"in-context adaptation": True, "general learning": True,
                   "optimizer-like updates": False}
    assert "no optimizer is claimed" in rows[0]["claim"]
    assert "learned optimization" not in markdown(report).lower()
    # only sensitivity passing: named alone, still no claim
    only = [dict(x, passed=x["finding"] == "in-context adaptation") for x in rows[0]["findings"]]
    text = claim(only)
    assert text.startswith("in-context adaptation (from i = 0.8) passes")
    assert "learned optimization" not in text
    # all three passing: the claim, from the highest of the three onsets
    onsets = [dict(o, found=True, onset=o["onset"] or 1.2) for o in report["onsets"]]
    sec = findings_section(onsets, [0], [0.0, 0.4, 0.8, 1.2])
    assert sec["rows"][0]["claim"].startswith("learned optimization (all three findings pass)")


def test_phase_diagram_prints_the_difference_with_its_interval(report):
    from meta_evo.report.plots import _top_difference

    # the synthetic learner jumps by exactly 1.5 at d = 0 (the same noise in both arms)
    assert _top_difference(report, "objective_sensitivity", 0) == (
        "L - C at i = 1.2: +1.50 [+1.50, +1.50]")
    assert _top_difference(report, "op_final_bits", 0) is None  # not a tested metric
