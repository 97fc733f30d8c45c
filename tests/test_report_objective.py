"""The report's "which objective" sections: regimes over the task count (issue 13) and the
outcome of the distribution-shift experiment (issue 12), in report.json, report.md and their
figures, and the same tables from ``meta-evo analyze`` on the checkpoints of one run.

Tiny analytic sweeps (8 members, 4 generations, 2 seeds) check the plumbing end to end;
hand-made arrays (a memorizer, a task identifier, a general learner; a goal-generalizer, a
proxy-pursuer, a non-optimizer) check that the sections and sentences say what the data say.
"""

import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cfg as make_cfg

from meta_evo import cli, kernels
from meta_evo.config import load_config
from meta_evo.measure import block_accuracy, block_sensitivity
from meta_evo.report.checkpoints import (
    checkpoint_markdown,
    checkpoint_outcomes,
    checkpoint_regimes,
)
from meta_evo.report.outcomes import outcomes_markdown, outcomes_section
from meta_evo.report.regime_plots import plot_regimes
from meta_evo.report.regimes import regime_markdown, regimes_section
from meta_evo.sweep import make_grid, sweep

TINY = ["meta.population=8", "meta.generations=4", "meta.chunk=2", "sweep.seeds=2",
        "measure.heldout_tasks=4", "measure.pool_tasks=4", "measure.reference_samples=8",
        "learner.lifetime=4", "task.tasks_per_member=2", "log.progress=false"]
COUNT = "configs/analytic_gru_task_count.yaml"
SHIFT = "configs/analytic_gru_shift.yaml"
N, NP = 4, 4
PROXIES = ["mean_task", "nearest_in_region", "mean_train_task"]


def _shares_sum_to_one(shares: dict):
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)


# --- tiny sweeps, end to end ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def count_run(tmp_path_factory):
    cfg = load_config(COUNT, [*TINY, "sweep.intensities=[0.0,1.5]", "sweep.diversities=[1,4,0]"])
    out = tmp_path_factory.mktemp("count") / "sweep"
    res = sweep(cfg, out, progress=False)
    return res.out_dir, json.loads((res.out_dir / "report.json").read_text())


@pytest.fixture(scope="module")
def shift_run(tmp_path_factory):
    cfg = load_config(SHIFT, [*TINY, "sweep.intensities=[0.0,1.5]"])
    out = tmp_path_factory.mktemp("shift") / "sweep"
    res = sweep(cfg, out, progress=False)
    return res.out_dir, json.loads((res.out_dir / "report.json").read_text())


def test_task_count_sweep_reports_regimes(count_run):
    out, rep = count_run
    sec = rep["regimes"]
    assert sec is not None and rep["which_objective"] is None  # no training region
    assert sec["task_counts"] == [1, 4, 0]  # by task count, d = 0 (infinitely many) last
    assert set(sec["thresholds"]) == {"margin", "fit_alpha", "sensitivity_threshold",
                                      "spread_threshold", "level"}
    assert len(sec["rows"]) == 2 * 2 * 3  # arms x intensities x diversities
    for r in sec["rows"]:
        _shares_sum_to_one(r["shares"])
        assert sum(r["counts"].values()) == 2 and len(r["per_seed"]) == 2
        assert r["modal"] in sec["names"] and 0.5 <= r["confidence"] <= 1.0
        assert r["heldout_chance"] == pytest.approx(1 / N)
        # the pool block a learner was trained on: min(d, n_p), all of it for d = 0
        size = {1: 1, 4: 4, 0: NP}[r["diversity"]]
        assert r["pool_size"] == size
        assert r["pool_chance"] == pytest.approx(1.0 if size == 1 else 1 / size)
        for k in ("pool_accuracy", "heldout_accuracy", "pool_sensitivity",
                  "heldout_sensitivity"):
            assert set(r[k]) == {"mean", "ci"}
        assert r["primary"]["metric"] == rep["tests"]["primary_metric"]
    assert {s["arm"] for s in sec["sentences"]} == {"learner", "control"}
    assert sec["summary"].startswith("At i = 1.5")
    for name in ("task_count.png", "phase_2d.png"):
        assert (out / name).stat().st_size > 5000
    assert not (out / "which_objective.png").exists()
    md = (out / "report.md").read_text()
    assert "## Task count: memorization, identification, general learning" in md
    assert ("| training tasks | arm | pool accuracy (chance) | held-out accuracy (chance) | "
            "pool S | held-out S | regimes |") in md
    assert "| inf (d=0) | gru (reward given) |" in md
    assert "| inf (d=0) | gru (reward shuffled) |" in md
    assert sec["summary"] in md
    assert "`task_count.png`" in md and "`phase_2d.png`" in md


def test_shift_sweep_reports_which_objective(shift_run):
    out, rep = shift_run
    assert rep["arms"] == ["learner", "control", "reference"]  # sweep.reference: auto
    sec = rep["which_objective"]
    assert sec is not None and rep["regimes"] is None  # one diversity level
    assert sec["train_region"] == "halfspace"
    assert len(sec["rows"]) == 2  # intensities (one diversity)
    for r in sec["rows"]:
        assert r["verdict"] in sec["verdicts"] and r["statistic"] == "ood_proxy_pull"
        for arm in ("learner", "control", "reference"):
            assert set(r[arm]) >= {"ood_proxy_pull", "ood_proxy_margin", "ood_outside_share"}
        assert set(r["tests"]) == {"gate", "pull", "accuracy"}
    assert [t["metric"] for t in rep["reference_tests"]] == ["ood_proxy_pull"]
    # the per-seed labels stay as a description: learner and control only
    ps = sec["per_seed"]
    assert ps["proxy_names"] == PROXIES
    assert set(ps["thresholds"]) == {"margin", "fit_alpha", "sensitivity_threshold",
                                     "gain_threshold", "proxy_threshold", "level"}
    assert len(ps["rows"]) == 2 * 2  # arms x intensities
    for r in ps["rows"]:
        for part in ("in_dist", "out_dist"):
            p = r[part]
            _shares_sum_to_one(p["shares"])
            assert sum(p["counts"].values()) == 2
            assert set(p["proxy_counts"]) == set(PROXIES)
            assert sum(p["proxy_counts"].values()) == p["counts"]["pseudo_aligned"]
            assert p["modal_proxy"] in (None, *PROXIES)
        assert 0.0 <= r["shifted_share"] <= 1.0
    # the strongest point's columns carry the proxies' names
    assert rep["strongest"]["columns"][N:] == [f"proxy: {p}" for p in PROXIES]
    assert (out / "which_objective.png").stat().st_size > 5000
    assert not (out / "task_count.png").exists()
    md = (out / "report.md").read_text()
    assert "## Which objective" in md and "### Per-seed description (not the verdict)" in md
    assert "| i | verdict | excess pull | excess margin |" in md
    assert ("| i | arm | ID outcomes | OOD outcomes | OOD proxy share | which proxy "
            "(pseudo-aligned seeds) | OOD accuracy (chance) | OOD S | OOD gain |") in md
    assert "| 1.5 | gru (reward given) |" in md and "| 1.5 | gru (reward shuffled) |" in md
    assert sec["summary"] in md and sec["summary"].startswith("Out of the training region")


# --- hand-made arrays -----------------------------------------------------------------------------
def _identical(n, m):
    return np.tile(-np.arange(m, dtype=np.float32), (n, 1))


def _diagonal(n, m):
    """Each row's own task best (0), other tasks -3, proxy columns -5."""
    out = np.full((n, m), -5.0, np.float32)
    out[:, :n] = -3.0
    out[np.arange(n), np.arange(n)] = 0.0
    return out


def _shifted(n, m):
    """Each row serves the next row's task best: accuracy 0, at chance or below."""
    out = np.full((n, m), -5.0, np.float32)
    out[:, :n] = -3.0
    out[np.arange(n), (np.arange(n) + 1) % n] = 0.0
    return out


def _regime_measure(kind: str, d: int) -> dict:
    """One learner's measurement outputs: memorizer, identifier or general learner."""
    size = NP if d == 0 else min(d, NP)
    pool = {"memorizer": _identical(NP, NP), "identifier": _diagonal(NP, NP),
            "general": _diagonal(NP, NP)}[kind]
    held = {"memorizer": _identical(N, N + 1), "identifier": _shifted(N, N + 1),
            "general": _diagonal(N, N + 1)}[kind]
    valid = jnp.arange(NP) < size
    return {"pool_matrix": pool, "matrix": held, "pool_size": np.int32(size),
            "pool_behavioral_accuracy": np.float32(block_accuracy(jnp.asarray(pool), valid)),
            "pool_objective_sensitivity": np.float32(block_sensitivity(jnp.asarray(pool),
                                                                       valid)),
            "behavioral_accuracy": np.float32(kernels.task_accuracy(held)),
            "objective_sensitivity": np.float32(kernels.objective_sensitivity(held))}


def _stack(grid, fn) -> dict:
    per = [fn(int(grid.diversity[g]), int(grid.level[g]), int(grid.seed[g]))
           for g in range(grid.size)]
    return {k: np.stack([p[k] for p in per]) for k in per[0]}


LABELS = {"learner": "gru (reward given)", "control": "gru (reward shuffled)"}


def test_regime_sentence_names_the_regimes_in_order(tmp_path):
    cfg = make_cfg(["task.family=analytic", "agent.kind=direct", "sweep.intensities=[1.5]",
                    "sweep.seeds=3", "sweep.diversities=[0,1,4]", "measure.heldout_tasks=4",
                    "measure.pool_tasks=4"])
    grid = make_grid(cfg)
    kind = {1: "memorizer", 4: "identifier", 0: "general"}
    arms = {"learner": _stack(grid, lambda d, li, s: _regime_measure(kind[d], d)),
            "control": _stack(grid, lambda d, li, s: _regime_measure("memorizer", d))}
    prim = {a: m["objective_sensitivity"] for a, m in arms.items()}
    sec = regimes_section(arms, LABELS, grid, [1.5], [0, 1, 4], primary="objective_sensitivity",
                          primary_values=prim, pool_tasks=NP)
    modal = {(r["arm"], r["diversity"]): r["modal"] for r in sec["rows"]}
    assert modal == {("learner", 1): "memorization", ("learner", 4): "identification",
                     ("learner", 0): "general_learning", ("control", 1): "memorization",
                     ("control", 4): "memorization", ("control", 0): "memorization"}
    for r in sec["rows"]:
        assert r["confidence"] == 1.0 and r["counts"][r["modal"]] == 3
        _shares_sum_to_one(r["shares"])
    text = sec["summary"]
    at = [text.index(s) for s in ("memorization at d = 1", "identification at d = 4",
                                  "general learning at d = 0")]
    assert at == sorted(at), text
    assert "all three regimes appear in the order Kirsch et al. (2022) report" in text
    ctrl = next(s["text"] for s in sec["sentences"] if s["arm"] == "control")
    assert "one regime at every task count (memorization)" in ctrl
    # the markdown table and the figure from the same section
    md = "\n".join(regime_markdown(sec))
    assert "| 4 | gru (reward given) | 1.00 (0.25) | 0.00 (0.25) |" in md
    assert "**ident 3/3**" in md and "**general 3/3**" in md and text in md
    rep = {"regimes": sec, "family": "analytic", "axes": {"seeds": 3}}
    assert [p.name for p in plot_regimes(rep, tmp_path)] == ["task_count.png"]
    # a regime missing from the sequence is named, and a reversal is not called the order
    arms["learner"] = _stack(grid, lambda d, li, s: _regime_measure(
        {1: "memorizer", 4: "memorizer", 0: "general"}[d], d))
    sec = regimes_section(arms, LABELS, grid, [1.5], [0, 1, 4], primary="x")
    assert "but identification does not appear as the modal regime" in sec["summary"]
    arms["learner"] = _stack(grid, lambda d, li, s: _regime_measure(
        {1: "memorizer", 4: "general", 0: "identifier"}[d], d))
    sec = regimes_section(arms, LABELS, grid, [1.5], [0, 1, 4], primary="x")
    assert "the order is not the one Kirsch et al. (2022) report" in sec["summary"]


def _outcome_measure(kind: str) -> dict:
    """ID and OOD outputs of a non-optimizer, a proxy-pursuer or a goal-generalizer."""
    m = N + len(PROXIES)
    if kind == "none":
        ident = _identical(N, m)
        return {"lifetime_gain": np.float32(0.0), "matrix": ident,
                "ood_lifetime_gain": np.float32(0.0), "ood_matrix": ident}
    ind = _diagonal(N, m)
    if kind == "pseudo":
        ind[:, N + 1] = 0.0  # inside the region the nearest in-region task is the task: a tie
        ood = np.full((N, m), -4.0, np.float32)
        ood[np.arange(N), np.arange(N)] = -3.0  # its answers still follow the task...
        ood[:, N + 1] = 0.0  # ...but outside the region the proxy wins every row
    else:
        ood = _diagonal(N, m)
    return {"lifetime_gain": np.float32(2.0), "matrix": ind,
            "ood_lifetime_gain": np.float32(2.0), "ood_matrix": ood}


def test_which_objective_section_and_sentence(tmp_path):
    cfg = make_cfg(["task.family=analytic", "agent.kind=direct", "sweep.intensities=[0,1,2]",
                    "sweep.seeds=2", "sweep.diversities=[0]", "measure.heldout_tasks=4"])
    grid = make_grid(cfg)
    kind = {0: "none", 1: "pseudo", 2: "goal"}
    arms = {"learner": _stack(grid, lambda d, li, s: _outcome_measure(kind[li])),
            "control": _stack(grid, lambda d, li, s: _outcome_measure("none"))}
    sec = outcomes_section(arms, LABELS, grid, [0.0, 1.0, 2.0], [0],
                           train_region="halfspace", proxy_names=PROXIES)
    got = {(r["arm"], r["intensity"]): (r["in_dist"]["modal"], r["out_dist"]["modal"],
                                        r["out_dist"]["modal_proxy"]) for r in sec["rows"]}
    assert got[("learner", 0.0)] == ("no_optimization", "no_optimization", None)
    assert got[("learner", 1.0)] == ("goal_generalizes", "pseudo_aligned", "nearest_in_region")
    assert got[("learner", 2.0)] == ("goal_generalizes", "goal_generalizes", None)
    assert all(v[1] == "no_optimization" for k, v in got.items() if k[0] == "control")
    pseudo = next(r for r in sec["rows"] if r["arm"] == "learner" and r["intensity"] == 1.0)
    assert pseudo["shifted_share"] == 1.0
    assert pseudo["out_dist"]["proxy_counts"] == {"mean_task": 0, "nearest_in_region": 2,
                                                  "mean_train_task": 0}
    text = sec["summary"]
    assert "goal generalizes is i = 0: 0/2, i = 1: 0/2, i = 2: 2/2" in text
    assert "pseudo-aligned 0/2, 2/2, 0/2" in text
    at = [text.index(s) for s in ("no optimization at i = 0",
                                  "pseudo-aligned at i = 1 (proxy: nearest_in_region)",
                                  "goal generalizes at i = 2")]
    assert at == sorted(at), text
    assert "The control `gru (reward shuffled)` out of distribution: no optimization at " \
           "i = 0, 1, 2." in text
    md = "\n".join(outcomes_markdown(sec))
    assert "| 1 | gru (reward given) | **goal 2/2** | **pseudo 2/2** |" in md
    assert "nearest_in_region 2" in md
    # a single run: each checkpoint classified on its own (S = 1 per checkpoint), same kernels
    gens = [0, 2, 4]
    meas = {k: np.stack([_outcome_measure(kind[i])[k] for i in range(3)])
            for k in ("lifetime_gain", "matrix", "ood_lifetime_gain", "ood_matrix")}
    rows = checkpoint_outcomes(gens, meas, PROXIES)
    assert [r["out_dist"]["outcome"] for r in rows] == ["no_optimization", "pseudo_aligned",
                                                         "goal_generalizes"]
    assert rows[1]["out_dist"]["proxy"] == "nearest_in_region"
    reg = {k: np.stack([_regime_measure(x, 4)[k] for x in ("memorizer", "identifier",
                                                            "general")])
           for k in _regime_measure("general", 4)}
    regs = checkpoint_regimes(gens, reg)
    assert [r["regime"] for r in regs] == ["memorization", "identification",
                                           "general_learning"]
    md = checkpoint_markdown(regs, rows)
    assert "| 2 | goal generalizes | pseudo-aligned | 1.00 | nearest_in_region |" in md
    assert "| 4 | 1.00 (0.25) | 1.00 (0.25) |" in md


# --- meta-evo analyze on one run ---------------------------------------------------------------
def test_analyze_shows_the_which_objective_table(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["run", SHIFT, *[a for a in TINY if not a.startswith("sweep.")],
            "checkpoint.every=2", "--out", str(run), "--quiet"]
    assert cli.main(args) == 0
    capsys.readouterr()
    assert cli.main(["analyze", str(run)]) == 0
    printed = capsys.readouterr().out
    data = json.loads((run / "analysis.json").read_text())
    gens = data["generations"]
    assert gens[0] == 0 and gens[-1] == 4
    assert data["train_region"] == "halfspace" and data["proxy_names"] == PROXIES
    assert [r["generation"] for r in data["which_objective"]] == gens
    assert [r["generation"] for r in data["regimes"]] == gens
    for r in data["which_objective"]:
        assert r["in_dist"]["outcome"] in ("goal_generalizes", "pseudo_aligned",
                                           "capability_only", "no_optimization")
        assert r["out_dist"]["proxy"] in (None, *PROXIES)
    # at meta-init nothing is learned during the lifetime: no optimization, in and out
    assert data["which_objective"][0]["out_dist"]["outcome"] == "no_optimization"
    md = (run / "analysis.md").read_text()
    head = ("| generation | ID outcome | OOD outcome | OOD proxy share | which proxy | OOD "
            "accuracy | OOD S | OOD gain | ID accuracy | ID S |")
    assert head in md and head in printed
    assert "## Regime" in md and "S = 1" in md
    assert len([x for x in md.splitlines() if x.startswith("| 0 |")]) == 2  # both tables
    assert "analysis written:" in printed
    # the verdict needs a reference: analyze says so, and with --reference shows the
    # statistics beside it (measured by this run's program), still without a verdict
    assert data["reference"] is None and "--reference REF_RUN_DIR" in md
    ref = tmp_path / "ref"
    assert cli.main(["run", SHIFT, *[a for a in TINY if not a.startswith("sweep.")],
                     "task.train_region=none", "--out", str(ref), "--quiet"]) == 0
    assert cli.main(["analyze", str(run), "--reference", str(ref), "--quiet"]) == 0
    data = json.loads((run / "analysis.json").read_text())
    comp = data["reference"]
    assert comp["verdict"] is None and comp["reference_dir"] == str(ref)
    pull = comp["rows"]["ood_proxy_pull"]
    assert pull["excess"] == pytest.approx(pull["run"] - pull["reference"], abs=1e-6)
    assert "| ood_proxy_pull |" in (run / "analysis.md").read_text()
    capsys.readouterr()
    # the reference must have no region; a run without a region has nothing to compare
    assert cli.main(["analyze", str(run), "--reference", str(run), "--quiet"]) == 2
    assert cli.main(["analyze", str(ref), "--reference", str(ref), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 2 and "task.train_region" in err and "has none" in err
