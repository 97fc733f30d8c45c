"""The run-directory lock: a directory another live process writes is refused in one line that
names that process's pid (exit 2); the lock of a SIGKILLed process does not block.

The holder is a small subprocess that takes the lock and sleeps; the run directory is a tiny
analytic run (no physics, compiles in seconds).
"""

import os
import signal
import subprocess
import sys

import pytest
from helpers import ANALYTIC, cfg

from meta_evo import cli, lock, single_run
from meta_evo.errors import RunDirError

HOLD = ("import sys, time\nfrom meta_evo.lock import acquire\nacquire(sys.argv[1])\n"
        "print('held', flush=True)\ntime.sleep(120)\n")


def hold(run_dir):
    """A subprocess that holds ``run_dir``'s lock until killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def kill(proc):
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(30) == -signal.SIGKILL


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("lock") / "run"
    single_run.run(cfg(ANALYTIC, "meta.generations=2", "meta.chunk=2"), run_dir)
    lock.release(run_dir)  # this process is done writing it
    return run_dir


def one_error(capsys) -> str:
    err = capsys.readouterr().err.splitlines()
    lines = [x for x in err if x.startswith("meta-evo")]
    assert len(lines) == 1 and lines[0].startswith("meta-evo: error: "), err
    return lines[0]


def test_lock_file_pid_reentrant_and_release(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    assert lock.holder(d) is None
    lock.acquire(d)
    lock.acquire(d)  # re-entrant within a process
    assert lock.held(d) and lock.holder(d) is None  # no *other* process holds it
    assert (d / ".lock").read_text().strip() == str(os.getpid())
    lock.release(d)
    assert not lock.held(d) and lock.holder(d) is None
    assert (d / ".lock").is_file()  # the file stays; only the flock goes


def test_live_holder_is_named_and_sigkill_leaves_no_block(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    proc = hold(d)
    try:
        assert lock.holder(d) == proc.pid
        with pytest.raises(RunDirError, match=rf"in use by another meta-evo process \(pid "
                                              rf"{proc.pid}\)"):
            lock.acquire(d)
    finally:
        kill(proc)
    # the killed holder's pid is still in the file, but its flock went with it
    assert (d / ".lock").read_text().strip() == str(proc.pid)
    assert lock.holder(d) is None
    lock.acquire(d)
    assert (d / ".lock").read_text().strip() == str(os.getpid())
    lock.release(d)


def test_resume_and_run_of_a_held_run_dir_exit_2_naming_pid(finished, capsys):
    before = (finished / "metrics.jsonl").read_bytes()
    proc = hold(finished)
    try:
        assert cli.main(["resume", str(finished), "--quiet"]) == 2
        line = one_error(capsys)
        assert f"pid {proc.pid}" in line and "in use" in line
        assert cli.main(["run", *ANALYTIC, "--out", str(finished), "--quiet"]) == 2
        line = one_error(capsys)
        assert f"pid {proc.pid}" in line and "exists already" in line
    finally:
        kill(proc)
    assert (finished / "metrics.jsonl").read_bytes() == before
    # a stale lock (its holder SIGKILLed) does not block: the finished run resumes as a no-op
    assert cli.main(["resume", str(finished), "--quiet"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    lock.release(finished)
