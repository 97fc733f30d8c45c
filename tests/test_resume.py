"""Exact resume: a run killed (SIGKILL) or stopped (SIGTERM, SIGINT) and resumed ends bitwise equal
to the uninterrupted run, on physics (reacher on Brax ``spring``) and through the CLI.

The subprocess tests use the analytic family (no physics: each process compiles in seconds, the
persistent compilation cache from conftest does the rest); the in-process test uses reacher.
"""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from meta_evo import cli, single_run
from meta_evo.config import load_config
from meta_evo.meta import Meta
from meta_evo.run_reader import load_run

REACHER_TINY = ["task.family=reacher_goal", "task.backend=spring", "task.episode_length=10",
                "task.tasks_per_member=1", "agent.kind=pd", "learner.lifetime=2",
                "learner.candidates=2", "meta.population=4", "meta.generations=6",
                "meta.chunk=2", "checkpoint.every=2", "log.progress=false"]
# slow enough to be killed part-way: 20 chunks, each followed by a checkpoint
ANALYTIC_LONG = ["task.family=analytic", "agent.kind=direct", "task.tasks_per_member=1",
                 "learner.lifetime=2", "learner.candidates=2", "meta.population=4",
                 "meta.generations=40", "meta.chunk=2", "checkpoint.every=2",
                 "checkpoint.keep=3", "log.progress=false"]
TIMING = ("wall_s", "steps_per_s")


def tree_bytes(tree):
    return [np.asarray(x).tobytes() for x in jax.tree.leaves(tree)]


def strip_rows(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def rows_of(run_dir: Path):
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def assert_same_run(run_dir: Path, ref):
    """Final checkpoint state (every leaf, PRNG key included), mean theta and metrics rows
    minus timing fields equal the uninterrupted reference bitwise."""
    run = load_run(run_dir)
    G = ref.summary["generations"]
    assert run.steps[-1] == G
    state = run.restore(G)
    assert tree_bytes(state) == tree_bytes(ref.state)
    assert run.mean_theta(G).tobytes() == ref.mean_theta.tobytes()
    assert strip_rows(rows_of(run_dir)) == strip_rows(ref.metrics)
    assert len(rows_of(run_dir)) == G
    assert run.summary["mean_theta"] == ref.summary["mean_theta"]


def cli_proc(args, tmp_path: Path, tag: str):
    out, err = (tmp_path / f"{tag}.out").open("w"), (tmp_path / f"{tag}.err").open("w")
    return subprocess.Popen([sys.executable, "-m", "meta_evo.cli", *args], stdout=out,
                            stderr=err, cwd=tmp_path, env=os.environ.copy())


def wait_for_rows(proc, metrics: Path, n: int, timeout: float = 240.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if metrics.is_file():
            k = metrics.read_text().count("\n")
            if k >= n:
                return k
        assert proc.poll() is None, "run ended before it could be interrupted"
        time.sleep(0.005)
    raise AssertionError("run too slow")


@pytest.fixture(scope="module")
def analytic_ref(tmp_path_factory):
    """The uninterrupted 40-generation analytic run (in this process, a fresh Meta)."""
    cfg = load_config(None, ANALYTIC_LONG)
    return single_run.run(cfg, tmp_path_factory.mktemp("ref") / "run")


def test_resume_after_stop_is_bitwise_equal_on_physics(tmp_path):
    # one Meta (one compile) for the three runs; test_sigkill_... covers fresh processes
    cfg = load_config(None, REACHER_TINY)
    meta = Meta(cfg)
    ref = single_run.run(cfg, tmp_path / "ref", meta=meta)
    # as if SIGINT arrived during the first chunk
    part = single_run.run(cfg, tmp_path / "part", meta=meta, program=ref.program, stop_at=2)
    assert part.interrupted == signal.SIGINT and part.generation == 2 and part.exit_code == 130
    assert not (tmp_path / "part" / "summary.json").exists()
    assert load_run(tmp_path / "part").steps == [0, 2]
    res = single_run.resume(tmp_path / "part", meta=meta, program=ref.program)
    assert res.resumed_from == 2 and res.generation == 6
    assert_same_run(tmp_path / "part", ref)
    # one compiled chunk program serves the whole resumed run and a second resume
    size = ref.program._cache_size()
    assert size == 1
    again = single_run.resume(tmp_path / "part", meta=meta, program=ref.program)
    assert again.noop and ref.program._cache_size() == size


def test_sigkill_at_random_generation_then_resume_is_bitwise_equal(tmp_path, analytic_ref):
    seed = int.from_bytes(os.urandom(4), "little")
    target = random.Random(seed).randrange(4, 38)  # after the checkpoint of generation 2
    run_dir = tmp_path / "run"
    proc = cli_proc(["run", *ANALYTIC_LONG, "--out", str(run_dir), "--quiet"], tmp_path, "run")
    try:
        seen = wait_for_rows(proc, run_dir / "metrics.jsonl", target)
        proc.send_signal(signal.SIGKILL)
    finally:
        rc = proc.wait(60)
    assert rc == -signal.SIGKILL, f"seed {seed}: the run finished before the kill"
    assert not (run_dir / "summary.json").exists()
    r = subprocess.run([sys.executable, "-m", "meta_evo.cli", "resume", str(run_dir), "--quiet"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=240)
    assert r.returncode == 0, f"seed {seed}, killed after {seen} rows: {r.stderr}"
    assert "resumed from generation" in r.stdout
    assert_same_run(run_dir, analytic_ref)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_checkpoint_and_exits_cleanly(tmp_path, analytic_ref, sig):
    run_dir = tmp_path / "run"
    proc = cli_proc(["run", *ANALYTIC_LONG, "--out", str(run_dir), "--quiet"], tmp_path, "run")
    try:
        wait_for_rows(proc, run_dir / "metrics.jsonl", 5)
        proc.send_signal(sig)
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 128 + sig  # 143 for SIGTERM, 130 for SIGINT
    err = (tmp_path / "run.err").read_text().splitlines()
    msg = [x for x in err if "interrupted at generation" in x]
    assert len(msg) == 1, err
    gen = int(msg[0].split("interrupted at generation ")[1].split(";")[0])
    assert msg[0].endswith(f"resume with: meta-evo resume {run_dir}")
    assert 5 <= gen < 40
    run = load_run(run_dir)
    assert run.steps[-1] == gen and len(run.metrics) == gen  # a checkpoint at the stop
    assert run.summary is None
    assert cli.main(["resume", str(run_dir), "--quiet"]) == 0
    assert_same_run(run_dir, analytic_ref)


def test_resume_of_finished_run_is_a_noop(analytic_ref, capfd):
    run_dir = analytic_ref.out_dir
    before = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    assert cli.main(["resume", str(run_dir)]) == 0
    out = capfd.readouterr().out
    assert "run already finished at generation 40; nothing to do" in out
    after = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    assert after == before
