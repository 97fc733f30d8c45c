"""A sweep stopped or killed between chunks resumes from its per-arm orbax checkpoints to exactly
the arrays an uninterrupted sweep gives; damaged checkpoints fall back to the previous one; a
changed config.yaml, an old pickle checkpoint and a directory another process is resuming are
refused in one line (exit 2).

In-process tests use the ``stop_after`` hook; the CLI test runs every step as its own
``meta-evo`` process (SIGKILL, a second resume while one runs, SIGTERM, the final resume). All on
the analytic family: each process compiles in seconds (and the persistent cache does the rest).
"""

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import ANALYTIC, cfg

from meta_evo import cli
from meta_evo.arm_progress import SweepInterrupted
from meta_evo.errors import RunDirError
from meta_evo.snapshot import decode, encode
from meta_evo.sweep import resume_sweep, sweep

ARGS = [*ANALYTIC, "meta.generations=6", "meta.chunk=2", "sweep.intensities=[0, 1]",
        "sweep.seeds=2", "sweep.diversities=[1]", "measure.heldout_tasks=3",
        "measure.reference_samples=8", "measure.alignment_samples=4"]
C = cfg(ARGS)
# for the CLI test: 6 chunks per arm, time enough to be killed part-way
LONG = [*ARGS, "meta.generations=12"]


def _arrays(path):
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    out = tmp_path_factory.mktemp("sw") / "whole"
    sweep(C, out, progress=False, report=False)
    return _arrays(out / "sweep.npz")


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _steps(arm_dir: Path) -> list[int]:
    return sorted(int(p.name) for p in arm_dir.iterdir() if p.name.isdigit()) \
        if arm_dir.is_dir() else []


def _newest(out: Path) -> int:
    root = out / "sweep_state"
    return max((s for p in root.iterdir() for s in _steps(p)), default=-1) \
        if root.is_dir() else -1


def _cut(tmp_path, stop_after: int, name: str = "cut") -> Path:
    out = tmp_path / name
    with pytest.raises(SweepInterrupted):
        sweep(C, out, progress=False, stop_after=stop_after)
    assert not (out / "report.json").exists()
    return out


def test_resumed_sweep_equals_uninterrupted(tmp_path, whole):
    out = _cut(tmp_path, 2)  # inside the first arm
    assert not list(out.rglob("*.pkl"))  # orbax only
    resume_sweep(out, progress=False)
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    _same(whole, _arrays(out / "sweep.npz"))
    with pytest.raises(RunDirError, match="finished"):
        resume_sweep(out, progress=False)


def test_damaged_newest_sweep_checkpoint_falls_back(tmp_path, whole, capsys):
    out = _cut(tmp_path, 6)  # inside the second arm (the first writes 4 checkpoints)
    arms = [p for p in (out / "sweep_state").iterdir() if p.is_dir()]
    assert len(arms) == 2
    # the arm in progress: its newest checkpoint was written last
    arm = max(arms, key=lambda p: (p / str(_steps(p)[-1])).stat().st_mtime_ns)
    name, newest = arm.name, _steps(arm)[-1]
    assert newest >= 1
    files = sorted((p for p in (arm / str(newest) / "arrays").rglob("*") if p.is_file()),
                   key=lambda p: p.stat().st_size)
    with files[-1].open("r+b") as f:  # the largest data file, torn in half
        f.truncate(files[-1].stat().st_size // 2)
    capsys.readouterr()
    resume_sweep(out, progress=False)
    warns = [x for x in capsys.readouterr().err.splitlines() if x.startswith("meta-evo")]
    assert len(warns) == 1, warns
    assert warns[0].startswith(f"meta-evo: warning: sweep checkpoint {name}/{newest} is "
                               "damaged")
    assert f"using sweep checkpoint {name}/{newest - 1}" in warns[0]
    assert (out / "sweep_state.damaged" / name / str(newest)).is_dir()  # moved, not deleted
    _same(whole, _arrays(out / "sweep.npz"))


def test_config_mismatch_on_sweep_resume_exits_2_naming_key(tmp_path, capsys):
    out = _cut(tmp_path, 2)
    text = (out / "config.yaml").read_text()
    assert "sigma: 0.1\n" in text
    (out / "config.yaml").write_text(text.replace("sigma: 0.1\n", "sigma: 0.2\n"))
    before = sorted(p.relative_to(out) for p in (out / "sweep_state").rglob("*"))
    capsys.readouterr()
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.splitlines()
    lines = [x for x in err if x.startswith("meta-evo")]
    assert len(lines) == 1 and lines[0].startswith("meta-evo: error: "), err
    assert "meta.sigma: 0.1 != 0.2" in lines[0] and "refusing to resume" in lines[0]
    assert sorted(p.relative_to(out) for p in (out / "sweep_state").rglob("*")) == before


class _Boom:  # unpickling this would create a file: it must never be unpickled
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_old_pickle_sweep_state_is_refused_not_loaded(tmp_path, capsys):
    """A sweep directory of an older meta-evo (no manifest; its progress in pickle files) is
    refused in one line that says what still reads, and nothing in it is loaded."""
    out = tmp_path / "old"
    (out / "sweep_state").mkdir(parents=True)
    (out / "config.yaml").write_text(_cut(tmp_path, 1).joinpath("config.yaml").read_text())
    marker = tmp_path / "code_ran"
    (out / "sweep_state" / "es.pkl").write_bytes(pickle.dumps({"gi": _Boom(str(marker))}))
    capsys.readouterr()
    assert cli.main(["resume", str(out), "--quiet"]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("meta-evo")]
    assert len(err) == 1 and "written by another version of meta-evo" in err[0], err
    assert not marker.exists()


def test_payload_round_trip_is_exact():
    payload = {"gi": 3, "gen": 0, "states": None, "x": 0.1 + 0.2, "nan": float("nan"),
               "flag": True, "name": "es", "t": (1, [2.5]),
               "by_gen": {0: [{"a": np.arange(6, dtype=np.float32).reshape(2, 3)}], 12: []},
               "np": np.float64(1 / 3), "i32": np.int32(-7), "b": np.array([True, False]),
               "empty": np.zeros((0, 4), np.int32), "key": np.array([1, 2], np.uint32)}
    structure, arrays = encode(payload)
    back = decode(json.loads(json.dumps(structure)), arrays)
    assert list(back) == list(payload) and list(back["by_gen"]) == [0, 12]
    assert back["x"] == payload["x"] and np.isnan(back["nan"]) and back["t"] == (1, [2.5])
    assert type(back["np"]) is np.float64 and back["np"] == payload["np"]
    assert type(back["i32"]) is np.int32 and back["i32"] == -7
    for k in ("b", "empty", "key"):
        assert back[k].dtype == payload[k].dtype and np.array_equal(back[k], payload[k])
    a = back["by_gen"][0][0]["a"]
    assert a.dtype == np.float32 and a.tobytes() == payload["by_gen"][0][0]["a"].tobytes()


def test_signal_stops_after_the_checkpoint_with_the_resume_line(tmp_path, capsys):
    """A SIGINT caught by an entered Signals (as the CLI enters it) stops the sweep right after
    the next checkpoint is written: exit code 130 and one line naming the resume command."""
    from meta_evo.arm_progress import ArmCheckpoints, ArmProgress
    from meta_evo.meta import Meta
    from meta_evo.rundir.signals import Signals

    run_dir = tmp_path / "run dir"
    run_dir.mkdir()
    ck = ArmCheckpoints(run_dir, C, {"learner": Meta(C)})
    p = ArmProgress(gi=1, gen=2, chunks=[{"f": np.ones((2, 3))}])
    ck.save("learner", p)
    assert ck.stop_due("learner", False) is None  # no signal: goes on
    with Signals(enabled=False) as sig:
        sig.received = signal.SIGINT
        p.gen = 4
        ck.save("learner", p)
        assert ck.stop_due("learner", False) == signal.SIGINT
    assert SweepInterrupted("x", signal.SIGINT).exit_code == 130
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("meta-evo")]
    assert err == [f"meta-evo: sweep interrupted in the learner arm; resume with: meta-evo "
                   f"resume '{run_dir}'"]
    assert ck.store("learner").steps() == [0, 1] and ck.load("learner").gen == 4
    hook = ArmCheckpoints(tmp_path / "hook", C, {}, stop_after=2)
    assert hook.stop_due("learner", True) is None and hook.stop_due("x", False) is None
    hook.save("learner", p)
    assert hook.stop_due("learner", True) == -1  # the save about to happen is the 2nd


# --- the command line, one process per step -----------------------------------------------------
def _cli(args, tmp_path: Path, tag: str):
    out, err = (tmp_path / f"{tag}.out").open("w"), (tmp_path / f"{tag}.err").open("w")
    return subprocess.Popen([sys.executable, "-m", "meta_evo.cli", *args], stdout=out,
                            stderr=err, cwd=tmp_path, env=os.environ.copy())


def _lines(tmp_path: Path, tag: str) -> list[str]:
    text = (tmp_path / f"{tag}.err").read_text().replace("\r", "\n")
    return [x for x in text.splitlines() if x.startswith("meta-evo")]


def _wait(proc, cond, what: str, timeout: float = 240.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return
        assert proc.poll() is None, f"process ended before {what}"
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_cli_sigkill_second_resume_sigterm_then_resume_is_bitwise(tmp_path):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    whole = _cli(["sweep", *LONG, "--out", str(ref), "--quiet"], tmp_path, "ref")  # alongside

    # SIGKILL part-way through the first arm
    p = _cli(["sweep", *LONG, "--out", str(cut), "--quiet"], tmp_path, "sweep")
    try:
        _wait(p, lambda: _newest(cut) >= 3, "a checkpoint")
        p.send_signal(signal.SIGKILL)
    finally:
        rc = p.wait(60)
    assert rc == -signal.SIGKILL
    assert (cut / ".lock").read_text().strip() == str(p.pid)  # a stale lock is left behind

    # the stale lock does not block; a second resume while this one runs is refused
    r1 = _cli(["resume", str(cut), "--quiet"], tmp_path, "r1")
    try:
        _wait(r1, lambda: (cut / ".lock").read_text().strip() == str(r1.pid), "the lock")
        r1.send_signal(signal.SIGSTOP)  # holds the lock, makes no progress
        r2 = _cli(["resume", str(cut), "--quiet"], tmp_path, "r2")
        assert r2.wait(120) == 2
        err = _lines(tmp_path, "r2")
        assert len(err) == 1 and err[0].startswith("meta-evo: error: "), err
        assert f"in use by another meta-evo process (pid {r1.pid})" in err[0]
        r1.send_signal(signal.SIGCONT)
        r1.send_signal(signal.SIGTERM)  # checkpoint at the next chunk, exit 143
        rc = r1.wait(240)
    finally:
        if r1.poll() is None:
            r1.kill()
    assert rc == 128 + signal.SIGTERM, _lines(tmp_path, "r1")
    msg = [x for x in _lines(tmp_path, "r1") if "resume with:" in x]
    assert len(msg) == 1 and msg[0].endswith(f"resume with: meta-evo resume {cut}"), msg
    assert not (cut / "report.json").exists()

    r3 = _cli(["resume", str(cut), "--quiet"], tmp_path, "r3")
    assert r3.wait(300) == 0, _lines(tmp_path, "r3")
    assert "sweep finished" in (tmp_path / "r3.out").read_text()
    assert whole.wait(300) == 0, _lines(tmp_path, "ref")
    _same(_arrays(ref / "sweep.npz"), _arrays(cut / "sweep.npz"))
    # the resumed process set the XLA:CPU flag before its backend started, as `sweep` does
    plat = json.loads((cut / "report.json").read_text())["platform"]
    assert plat["cpu_multi_thread_eigen_off"] is True
    assert "--xla_cpu_multi_thread_eigen=false" in plat["xla_flags"]


def test_unknown_structure_is_loud_and_non_numeric_is_damage(tmp_path):
    """A state whose arm has no known structure is a programming error (raised, progress
    kept); an array spec that is not numeric is damage (never handed to a loader)."""
    import jax.numpy as jnp
    from flax import struct

    from meta_evo.arm_progress import ArmCheckpoints, ArmProgress
    from meta_evo.rundir.store import CheckpointError

    @struct.dataclass
    class State:
        mean: jnp.ndarray

    ck = ArmCheckpoints(tmp_path, C, {})
    ck.save("b", ArmProgress(states=State(jnp.zeros(3))))
    with pytest.raises(KeyError, match="no state structure"):
        ck.load("b")
    store = ck.store("b")
    assert store.steps() == [0]  # not moved aside as damaged
    extra = store.read_extra(0)
    extra["specs"] = {k: ["|O", shape] for k, (_, shape) in extra["specs"].items()}
    with pytest.raises(CheckpointError, match="non-numeric"):
        store.read(0, extra)
