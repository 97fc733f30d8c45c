"""Bad learner and reward-channel input through the command line: exit 2, one stderr line that
names the key, and no run directory (neither ``--out`` nor the default ``runs/...``)."""

import contextlib
import dataclasses
import io
from pathlib import Path

import pytest

import meta_evo.sweep as sweep_mod
from meta_evo import cli, single_run
from meta_evo.agents import DirectAgent
from meta_evo.config import LearnerConfig
from meta_evo.learners import GRULearner, make_learner

ANALYTIC = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=1",
            "learner.lifetime=2", "learner.candidates=2", "meta.population=4",
            "meta.generations=2", "meta.chunk=2", "log.progress=false"]

BAD = [
    (["learner.reward=bogus"], "learner.reward"),
    (["learner.reward=Given"], "learner.reward"),
    (["learner.kind=rl2"], "learner.kind"),  # rl2 acts in a Brax env; analytic has none
    (["learner.kind=gru", "learner.candidates=0"], "learner.candidates"),
    (["learner.kind=gru", "learner.candidates=-3"], "learner.candidates"),
    (["sweep.control=bogus"], "sweep.control"),
    (["learner.fitness=bogus"], "learner.fitness"),
    (["learner.kind=amortized", "sweep.control=shuffled"], "sweep.control"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refuse(*a, **k):
        raise AssertionError("an invalid config got as far as starting a run")
    monkeypatch.setattr(single_run, "run", refuse)
    monkeypatch.setattr(sweep_mod, "sweep", refuse)
    return tmp_path


def call(argv):
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = cli.main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue(), out.getvalue()


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("with_out", [False, True], ids=["default-out", "out"])
@pytest.mark.parametrize("bad,key", BAD, ids=[" ".join(b) for b, _ in BAD])
def test_bad_learner_input_is_one_line_exit_2_no_run_dir(workdir, command, with_out, bad, key):
    target = workdir / "new_run"
    argv = [command, *ANALYTIC, *bad] + (["--out", str(target)] if with_out else [])
    before = sorted(p.name for p in workdir.iterdir())
    code, err, out = call(argv)
    assert code == 2, (argv, code, err)
    lines = err.split("\n")[:-1]
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith(f"meta-evo: error: {key}: "), lines[0]
    assert "finished" not in out  # (stdout may name the built-in default sweep config)
    assert not target.exists()
    assert sorted(p.name for p in workdir.iterdir()) == before  # no runs/... either
    assert not (workdir / "runs").exists()


def test_bad_override_is_not_repaired_by_order(workdir):
    """The last override wins, and the bad value is what is reported."""
    code, err, _ = call(["run", *ANALYTIC, "learner.reward=given", "learner.reward=nope"])
    assert code == 2 and "learner.reward" in err and "'nope'" in err


def test_api_level_errors_name_the_key():
    """Outside the CLI the same input is a ValueError naming the key."""
    agent = DirectAgent(3)
    with pytest.raises(ValueError, match=r"^learner\.candidates"):
        GRULearner(agent, 4, candidates=0)
    with pytest.raises(ValueError, match=r"^learner\.reward"):
        make_learner(dataclasses.replace(LearnerConfig(), kind="gru", reward="bogus"), agent)
    with pytest.raises(ValueError, match=r"^learner\.kind"):
        make_learner(dataclasses.replace(LearnerConfig(), kind="bogus"), agent)


class Reached(Exception):
    pass


def test_good_input_still_accepted(workdir, monkeypatch):
    """The same command line with valid learner settings gets past validation (to
    single_run.run)."""
    reached = []

    def fake_run(cfg, out, **k):
        reached.append((cfg, out))
        raise Reached

    monkeypatch.setattr(single_run, "run", fake_run)
    with pytest.raises(Reached):
        cli.main(["run", *ANALYTIC, "learner.kind=gru", "learner.candidates=1",
                  "learner.reward=shuffled", "learner.fitness=last_half",
                  "sweep.control=blind", "--out", str(workdir / "ok")])
    cfg, out = reached[0]
    assert (cfg.learner.kind, cfg.learner.reward, cfg.learner.fitness, cfg.sweep.control) == (
        "gru", "shuffled", "last_half", "blind")
    assert Path(out) == workdir / "ok"
