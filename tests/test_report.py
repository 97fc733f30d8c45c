"""The sweep report on a synthetic sweep result (no evolution, no physics): onsets where a metric
rises above the control and "none in range" where it does not, the level table, files."""

import json
import math
import re

import numpy as np
import pytest
from helpers import cfg as make_cfg

from meta_evo.measure import SCALARS
from meta_evo.report import build_report, markdown, mean_ci, write_report
from meta_evo.sweep import ArmResult, SweepResult, make_grid

BASE = ["task.family=analytic", "agent.kind=direct", "learner.lifetime=3", "meta.population=8",
        "meta.generations=4", "measure.heldout_tasks=4", "sweep.intensities=[0,0.4,0.8,1.2]",
        "sweep.seeds=6", "sweep.diversities=[1,0]", "log.progress=false"]
N, K, GENS = 4, 3, 4


def _arm(grid, learner: str, rng, rising: bool) -> ArmResult:
    """Synthetic arm: for the learner, behavioral accuracy jumps from chance to 0.9 from level 2
    (intensity 0.8) where tasks vary (d=0), and stays at chance with a fixed task (d=1)."""
    g = grid.size
    jump = (grid.level >= 2) & (grid.diversity == 0) & rising

    def scalars(final: bool):
        out = {k: rng.normal(0.0, 0.01, g) for k in SCALARS}
        out["behavioral_accuracy"] = np.where(jump & final, 0.9, 0.25) + rng.normal(0, 0.02, g)
        out["lifetime_gain"] = np.where(jump & final, 2.0, 0.0) + rng.normal(0, 0.05, g)
        return out

    def measured(final: bool):
        m = scalars(final)
        m["curve"] = np.tile(np.linspace(-2, -1, K + 1), (g, 1))
        m["curves"] = np.tile(m["curve"][:, None], (1, N, 1))
        m["matrix"] = rng.normal(-3, 1, (g, N, N + 1))
        m["predicted"] = np.argmax(m["matrix"], -1)
        m["tail_used"] = np.zeros(g)
        return m

    desc = {}
    if learner == "es":
        desc = {0: {"step": np.zeros(g)},
                GENS: {"step": np.where(grid.level > 0, 0.3, 0.0) + rng.normal(0, 0.01, g)}}
    hist = {"fitness_mean": rng.normal(-5, 1, (g, GENS)),
            "fitness_best": rng.normal(-4, 1, (g, GENS))}
    if learner == "es":
        hist["mean_step"] = np.tile(np.linspace(0, 0.3, GENS), (g, 1))
    return ArmResult(learner=learner, history=hist,
                     measures={0: measured(False), GENS: measured(True)},
                     theta=np.zeros((g, 3)), describe=desc, env_steps=1000, wall_s=1.0,
                     first_chunk_s=0.5, measure_s=0.2, group_size=g, groups=1, chunk=2,
                     traces={"chunk": 1, "measure": 1})


@pytest.fixture(scope="module")
def report():
    cfg = make_cfg(BASE)
    grid = make_grid(cfg)
    # the same noise in both arms: paired differences are exactly 0 where nothing rises
    res = SweepResult(cfg=cfg, grid=grid,
                      arms={"es": _arm(grid, "es", np.random.default_rng(0), True),
                            "amortized": _arm(grid, "amortized", np.random.default_rng(0),
                                              False)},
                      out_dir=None, wall_s=3.0, env_steps=2000)
    return build_report(res)


def test_mean_ci_t_interval():
    m, lo, hi = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert hi - m == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert mean_ci([1.0, float("nan")]) == (1.0, 1.0, 1.0)
    assert all(math.isnan(v) for v in mean_ci([]))


def test_onset_found_where_the_metric_rises_and_none_where_it_does_not(report):
    on = {(o["metric"], o["diversity"]): o for o in report["onsets"]}
    acc = on[("behavioral_accuracy", 0)]
    assert acc["found"] and acc["onset"] == pytest.approx(0.8)
    assert acc["control"] == "amortized"
    assert acc["onset_ci"][0] <= 0.8 <= acc["onset_ci"][1]
    assert 0.4 <= acc["midpoint"] <= 0.8
    assert acc["summary"].startswith("onset at i = 0.80")
    fixed = on[("behavioral_accuracy", 1)]
    assert not fixed["found"] and fixed["onset"] is None and fixed["summary"] == "none in range"
    # the diversity contrast: varying tasks against the fixed task, same arm, paired by seed
    con = {(o["metric"], o["diversity"]): o for o in report["contrasts"]}
    assert con[("behavioral_accuracy", 0)]["found"]
    assert con[("behavioral_accuracy", 0)]["onset"] == pytest.approx(0.8)
    assert not con[("step", 0)]["found"]
    # a learner parameter is tested against its meta-init value (the amortized has none)
    step = on[("step", 0)]
    assert step["control"] == "meta-init" and step["found"] and step["onset"] == pytest.approx(0.4)


def test_level_table_and_points(report):
    rows = [r for r in report["levels"] if r["arm"] == "es" and r["diversity"] == 0]
    assert [r["intensity"] for r in rows] == [0.0, 0.4, 0.8, 1.2]
    assert rows[-1]["behavioral_accuracy"]["mean"] == pytest.approx(0.9, abs=0.02)
    lo, hi = rows[-1]["behavioral_accuracy"]["ci"]
    assert lo < 0.9 < hi
    assert len(report["points"]) == 2 * 4 * 6 * 2
    assert report["axes"]["raw_pressures"][0] == pytest.approx(1.0, abs=1e-4)
    assert report["strongest"]["arm"] == "es" and "control_matrix" in report["strongest"]
    json.dumps(report)  # JSON-ready throughout


def test_markdown_and_files(report, tmp_path):
    md = markdown(report)
    assert "## Onsets" in md and "none in range" in md and "onset at i = 0.80" in md
    assert "### Diversity contrast" in md
    assert "### behavioral accuracy" in md and re.search(r"\| 0\.[89]\d\d ± 0\.0\d\d \|", md)
    paths = write_report(tmp_path, report)
    names = {p.name for p in paths}
    assert names == {"report.json", "report.md", "phase_diagram.png", "lifetime_curves.png",
                     "evolution.png", "cross_task_matrix.png"}
    for p in paths:
        assert p.stat().st_size > 0
    assert json.loads((tmp_path / "report.json").read_text())["onsets"]
