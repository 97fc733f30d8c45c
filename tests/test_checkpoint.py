"""A single run's checkpoints in the run directory's one store: round trip, schedule and
retention, damage handling, config guard, the manifest, analysis.

All on the analytic family (no physics: compiles in seconds); one shared finished run per module.
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from meta_evo import cli, single_run
from meta_evo.analysis import analyze
from meta_evo.config import load_config
from meta_evo.errors import RunDirError
from meta_evo.meta import Meta
from meta_evo.run_reader import load_run
from meta_evo.snapshot import read_run, run_store

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=1",
            "learner.lifetime=2", "learner.candidates=2", "meta.population=4",
            "meta.generations=10", "meta.chunk=2", "checkpoint.every=2", "checkpoint.keep=3",
            "log.progress=false"]
TIMING = ("wall_s", "steps_per_s")


def tree_bytes(tree) -> list[bytes]:
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def dir_hash(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def strip(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def read_rows(run_dir: Path):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def cfg():
    return load_config(None, ANALYTIC)


@pytest.fixture(scope="module")
def meta(cfg):
    return Meta(cfg)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, cfg, meta):
    """A finished 10-generation run (checkpoints 0, 6, 8, 10) and its result."""
    out = tmp_path_factory.mktemp("ck") / "run"
    res = single_run.run(cfg, out, meta=meta)
    return out, res


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_schedule_retention_and_round_trip(finished, cfg, meta):
    out, res = finished
    assert sorted(os.listdir(out)) == [".lock", "checkpoints", "config.yaml", "manifest.json",
                                       "metrics.jsonl", "summary.json"]
    assert json.loads((out / "manifest.json").read_text()) == {"kind": "run", "format": 2}
    store = run_store(out, write=False)
    assert store.steps() == [0, 6, 8, 10]  # keep=3 newest, plus generation 0
    assert res.summary["checkpoints"] == [0, 6, 8, 10]
    state, lines = read_run(store, 10, meta)
    assert tree_bytes(state) == tree_bytes(res.state)
    extra = store.read_extra(10)
    assert extra["config"] == json.loads(json.dumps(cfg.to_dict()))
    assert extra["kind"] == "run" and extra["generation"] == 10 and len(extra["sha256"]) == 64
    assert lines == (out / "metrics.jsonl").read_text().splitlines() and len(lines) == 10
    # generation 0 holds the meta-init, before any generation ran
    s0, l0 = read_run(store, 0, meta)
    assert int(s0.generation) == 0 and l0 == []
    assert tree_bytes(s0) == tree_bytes(meta.init(jax.random.PRNGKey(cfg.seed)))


def test_checkpoint_records_no_device(finished, tmp_path, meta):
    """A checkpoint holds host arrays only (no sharding, no device names), so one written on
    a GPU restores and resumes on a CPU: nothing in it says where it was written."""
    src, ref = finished
    run_dir = copy_run(src, tmp_path)
    for p in (run_dir / "checkpoints" / "8").rglob("*"):
        if p.is_file():
            assert b"cpu:0" not in p.read_bytes() and p.name != "_sharding", p
    (run_dir / "summary.json").unlink()
    shutil.move(run_dir / "checkpoints" / "10", tmp_path / "10")
    res = single_run.resume(run_dir, meta=meta)
    assert res.resumed_from == 8 and tree_bytes(res.state) == tree_bytes(ref.state)


def test_checkpoint_every_rounds_up_to_chunk_boundaries(tmp_path):
    cfg = load_config(None, [*ANALYTIC, "meta.chunk=3", "checkpoint.every=4",
                             "checkpoint.keep=10"])
    res = single_run.run(cfg, tmp_path / "run")
    # chunk boundaries 3, 6, 9, 10: 6 is the first at/after 4, 9 the first at/after 8; 10 = end
    assert res.summary["checkpoints"] == [0, 6, 9, 10]


def test_load_run_api(finished, meta):
    out, res = finished
    run = load_run(out)
    assert run.config.meta.generations == 10
    assert run.steps == [0, 6, 8, 10]
    assert strip(run.metrics) == strip(res.metrics)
    assert run.summary["generations"] == 10
    np.testing.assert_array_equal(run.mean_theta(), res.mean_theta)
    assert int(run.restore(6).generation) == 6
    assert len(run.checkpoint_metrics(8)) == 8
    with pytest.raises(RunDirError, match="no checkpoint at generation 7"):
        run.restore(7)
    assert "checkpoints=[0, 6, 8, 10]" in repr(run)


def corrupt_newest(run_dir: Path) -> int:
    """Truncate the largest data file of the newest checkpoint's state; return its step."""
    steps = sorted(int(p.name) for p in (run_dir / "checkpoints").iterdir() if p.name.isdigit())
    newest = run_dir / "checkpoints" / str(steps[-1]) / "arrays"
    files = sorted((p for p in newest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim = files[-1]
    with victim.open("r+b") as f:
        f.truncate(victim.stat().st_size // 2)
    return steps[-1]


def test_corrupt_newest_falls_back_with_one_warning(finished, tmp_path, capsys, meta):
    src, ref = finished
    run_dir = copy_run(src, tmp_path)
    bad = corrupt_newest(run_dir)
    assert bad == 10
    warnings = []
    res = single_run.resume(run_dir, meta=meta, warn=warnings.append)
    assert len(warnings) == 1
    assert "checkpoint at generation 10 is damaged" in warnings[0]
    assert "using checkpoint at generation 8" in warnings[0]
    assert res.resumed_from == 8 and res.generation == 10 and not res.noop
    # nothing deleted: the damaged checkpoint was moved aside
    assert (run_dir / "checkpoints.damaged" / "10" / "arrays").is_dir()
    # and the rerun of generations 9-10 gives the uninterrupted result again
    assert tree_bytes(res.state) == tree_bytes(ref.state)
    assert strip(read_rows(run_dir)) == strip(ref.metrics)
    assert run_store(run_dir, write=False).steps() == [0, 6, 8, 10]


def test_corrupt_newest_cli_warning_line(finished, tmp_path, capfd):
    src, _ = finished
    run_dir = copy_run(src, tmp_path)
    # overwrite the checkpoint's JSON item: not even its metadata can be read
    (run_dir / "checkpoints" / "10" / "extra" / "metadata").write_text("{garbage")
    assert cli.main(["resume", str(run_dir), "--quiet"]) == 0
    # (XLA's C++ loader may log its own lines on fd 2 when it reads the compilation cache)
    err = [x for x in capfd.readouterr().err.splitlines() if x.startswith("meta-evo")]
    assert len(err) == 1, err
    assert err[0].startswith("meta-evo: warning: checkpoint at generation 10 is damaged")


def test_every_checkpoint_damaged_is_one_error(finished, tmp_path, capfd):
    src, _ = finished
    run_dir = copy_run(src, tmp_path)
    for p in (run_dir / "checkpoints").iterdir():
        if p.name.isdigit():
            (p / "extra" / "metadata").write_text("x")
    assert cli.main(["resume", str(run_dir), "--quiet"]) == 2
    err = [x for x in capfd.readouterr().err.splitlines() if x.startswith("meta-evo")]
    assert err[-1].startswith("meta-evo: error: ") and "no readable checkpoint" in err[-1]
    assert sum(x.startswith("meta-evo: warning:") for x in err) == 4  # one per checkpoint


def test_partial_write_is_moved_aside_not_used(finished, tmp_path, meta):
    src, ref = finished
    run_dir = copy_run(src, tmp_path)
    # what a process killed while saving generation 12 leaves behind (orbax's temporary dir)
    shutil.copytree(run_dir / "checkpoints" / "10",
                    run_dir / "checkpoints" / "12.orbax-checkpoint-tmp-1700000000")
    assert run_store(run_dir, write=False).steps() == [0, 6, 8, 10]
    warnings = []
    res = single_run.resume(run_dir, meta=meta, warn=warnings.append)
    assert res.noop and res.generation == 10
    assert len(warnings) == 1 and "unfinished checkpoint write" in warnings[0]
    assert (run_dir / "checkpoints.damaged" / "12.orbax-checkpoint-tmp-1700000000").is_dir()


def test_config_mismatch_is_refused(finished, tmp_path, capfd):
    src, _ = finished
    run_dir = copy_run(src, tmp_path)
    text = (run_dir / "config.yaml").read_text().replace("sigma: 0.1", "sigma: 0.2")
    (run_dir / "config.yaml").write_text(text)
    before = dir_hash(run_dir)
    assert cli.main(["resume", str(run_dir), "--quiet"]) == 2
    err = [x for x in capfd.readouterr().err.splitlines() if not x.startswith(("E1", "W1"))]
    assert len(err) == 1
    assert "config.yaml differs from the config of checkpoint at generation 10" in err[0]
    assert "meta.sigma: 0.1 != 0.2" in err[0]
    assert dir_hash(run_dir) == before


def test_killed_before_summary_resume_writes_it(finished, tmp_path, meta):
    src, ref = finished
    run_dir = copy_run(src, tmp_path)
    (run_dir / "summary.json").unlink()  # killed between the last checkpoint and the summary
    res = single_run.resume(run_dir, meta=meta)
    assert not res.noop and res.resumed_from == 10 and res.generation == 10
    s = json.loads((run_dir / "summary.json").read_text())
    assert s["generations"] == 10 and s["mean_theta"] == ref.summary["mean_theta"]
    assert strip([s["final"]]) == strip([ref.summary["final"]])
    assert strip(read_rows(run_dir)) == strip(ref.metrics)


def _edit_checkpoint_config(run_dir: Path, step: int, edit) -> None:
    p = run_dir / "checkpoints" / str(step) / "extra" / "metadata"
    extra = json.loads(p.read_text())
    edit(extra["config"])
    p.write_text(json.dumps(extra))


def test_config_schema_growth_and_unknown_keys(finished, tmp_path, meta, capfd):
    src, _ = finished
    # a run from before a key existed: its checkpoint lacks the key, which takes its default
    run_dir = copy_run(src, tmp_path)
    _edit_checkpoint_config(run_dir, 10, lambda c: c["meta"].pop("strategy"))
    assert single_run.resume(run_dir, meta=meta, warn=pytest.fail).noop
    # a checkpoint from a version with a key this one does not know: refused, one line
    _edit_checkpoint_config(run_dir, 10, lambda c: c["meta"].update(novel=1))
    assert cli.main(["resume", str(run_dir), "--quiet"]) == 2
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and "config of checkpoint at generation 10 is not valid" in err[0], err
    assert "meta.novel: unknown key" in err[0]


@pytest.mark.parametrize("case", ["missing", "no_config", "no_checkpoint", "no_checkpoint_dir",
                                  "no_manifest"])
def test_resume_unusable_dir_is_one_error(tmp_path, capfd, case, finished):
    d = tmp_path / "d"
    if case == "no_manifest":  # a run directory written before manifests existed
        shutil.copytree(finished[0], d)
        (d / "manifest.json").unlink()
    elif case != "missing":
        d.mkdir()
    if case.startswith("no_checkpoint"):
        shutil.copy(finished[0] / "config.yaml", d / "config.yaml")
        shutil.copy(finished[0] / "manifest.json", d / "manifest.json")
    if case == "no_checkpoint":
        (d / "checkpoints").mkdir()
    before = dir_hash(tmp_path)
    assert cli.main(["resume", str(d)]) == 2
    err = [x for x in capfd.readouterr().err.splitlines() if not x.startswith(("E1", "W1"))]
    assert len(err) == 1 and err[0].startswith("meta-evo: error: "), err
    assert dir_hash(tmp_path) == before
    if case == "no_manifest":  # says what still works and how to go on
        assert "written by another version of meta-evo" in err[0]
        assert "meta-evo run|sweep" in err[0] and "metrics.jsonl" in err[0]
        assert cli.main(["analyze", str(d), "--quiet"]) == 2


def test_analyze_writes_json_and_plots(finished, tmp_path, capfd):
    src, _ = finished
    run_dir = copy_run(src, tmp_path)
    res = analyze(run_dir, progress=False)
    assert res["generations"] == [0, 6, 8, 10]
    data = json.loads((run_dir / "analysis.json").read_text())
    assert [s["generation"] for s in data["steps"]] == [0, 6, 8, 10]
    for s in data["steps"]:
        assert {"lifetime_gain", "objective_sensitivity", "behavioral_accuracy",
                "online_share"} <= set(s["metrics"])
        assert len(s["curve"]) == 3  # K + 1
        assert len(s["matrix"]) == 6  # heldout tasks
    # at meta-init the learner's step size is 0: nothing is learned during the lifetime
    assert data["steps"][0]["metrics"]["lifetime_gain"] == 0.0
    for name in data["scalars"]:
        assert (run_dir / "analysis" / f"{name}.png").stat().st_size > 1000
    assert (run_dir / "analysis" / "overview.png").is_file()
    # --step picks generations; an unknown one is a one-line error
    assert cli.main(["analyze", str(run_dir), "--step", "6", "10", "--quiet"]) == 0
    assert json.loads((run_dir / "analysis.json").read_text())["generations"] == [6, 10]
    capfd.readouterr()
    assert cli.main(["analyze", str(run_dir), "--step", "7"]) == 2
    err = [x for x in capfd.readouterr().err.splitlines() if not x.startswith(("E1", "W1"))]
    assert len(err) == 1 and "no checkpoint at generation 7 (kept: 0, 6, 8, 10)" in err[0]
