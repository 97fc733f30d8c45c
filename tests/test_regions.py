"""The training-region axis: ``sweep.train_regions`` runs one sweep per region in
``RUN_DIR/region-<name>/`` and writes a parent report with each region's which-objective table;
``meta-evo resume`` on the parent skips finished regions. Tiny analytic sweeps."""

import json

import pytest
from helpers import cfg as make_cfg

from meta_evo.child_sweeps import region_config, region_dir
from meta_evo.cli import main
from meta_evo.rundir.layout import kind_of

TINY = ["task.family=analytic", "agent.kind=direct", "learner.kind=gru", "learner.lifetime=4",
        "learner.candidates=1", "learner.hidden=4", "task.tasks_per_member=2",
        "meta.population=8", "meta.generations=2", "meta.chunk=2", "log.progress=false",
        "sweep.intensities=[0.0,1.0]", "sweep.seeds=2", "sweep.diversities=[0]",
        "measure.heldout_tasks=4", "measure.pool_tasks=4", "measure.reference_samples=8",
        "measure.alignment_samples=2"]


def test_region_config_and_dir_names():
    cfg = make_cfg(TINY, "sweep.train_regions=[halfspace,'shell:1:2']")
    sub = region_config(cfg, "shell:1:2")
    assert sub.task.train_region == "shell:1:2" and sub.sweep.train_regions == ()
    assert region_dir("/x", "shell:1:2").name == "region-shell-1-2"


@pytest.mark.parametrize("bad", ["sweep.train_regions=[bogus]",
                                 "sweep.train_regions=[halfspace,halfspace]"])
def test_bad_regions_exit_2_one_line(bad, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["sweep", *TINY, bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sweep.train_regions" in err and not out.exists()


def test_region_sweep_runs_each_region_and_reports_them_side_by_side(tmp_path, capsys):
    out = tmp_path / "regions"
    assert main(["sweep", *TINY, "sweep.train_regions=[halfspace,shell]", "--out", str(out),
                 "--quiet"]) == 0
    assert "region sweep finished" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert [r["region"] for r in rep["regions"]] == ["halfspace", "shell"]
    for r in ("halfspace", "shell"):
        sub = region_dir(out, r)
        sub_rep = json.loads((sub / "report.json").read_text())
        assert sub_rep["config"]["task"]["train_region"] == r
        assert (sub / "which_objective.png").is_file()
        assert rep["regions"][["halfspace", "shell"].index(r)]["which_objective"]
    md = (out / "report.md").read_text()
    assert md.count("### Which objective") == 2 and "region-shell/report.md" in md
    # the manifests say what each directory is, and resume dispatches on them
    assert kind_of(out) == "regions" and kind_of(region_dir(out, "shell")) == "sweep"
    # resume on the parent: every region finished, nothing rerun, the report rewritten
    before = (region_dir(out, "shell") / "sweep.npz").stat().st_mtime_ns
    (out / "report.md").unlink()
    assert main(["resume", str(out), "--quiet"]) == 0
    assert (out / "report.md").is_file()
    assert (region_dir(out, "shell") / "sweep.npz").stat().st_mtime_ns == before
