"""The run-directory lock: one writer per run directory at a time.

``meta-evo run``, ``sweep`` and ``resume`` (single runs and sweeps) take an advisory lock
(``fcntl.flock``) on ``RUN_DIR/.lock`` and write their pid into it. The lock is held until the
process exits (or :func:`release`): a second process that wants to write the same directory gets
:class:`RunDirLocked` (a :class:`~meta_evo.errors.RunDirError`: one line, exit 2) naming the
holder's pid. The kernel drops a flock when its process dies, however it dies, so a lock file
left by a SIGKILLed process never blocks: the next process takes the lock and rewrites the pid.

Within one process the lock is re-entrant (``meta_evo.run`` then ``meta_evo.resume`` on the same
directory in a notebook or a test).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

from meta_evo.errors import RunDirError

LOCK_NAME = ".lock"
_held: dict[str, int] = {}  # resolved run directory -> open file descriptor holding the lock


class RunDirLocked(RunDirError):
    """Another live process holds the run directory's lock."""


def holder_pid(run_dir: str | Path) -> int | None:
    """The pid written in ``RUN_DIR/.lock`` (the last process that held it), or None."""
    try:
        text = (Path(run_dir) / LOCK_NAME).read_text().strip()
        return int(text.split()[0]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def holder(run_dir: str | Path) -> int | None:
    """The pid of another live process that holds ``run_dir``'s lock (-1 when it wrote none
    yet), or None when no other process does. Probes with a shared lock; creates nothing."""
    if held(run_dir):
        return None
    try:
        fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return holder_pid(run_dir) or -1
        return None
    finally:
        os.close(fd)  # also drops the probe's shared lock
    return None


def acquire(run_dir: str | Path) -> Path:
    """Lock ``run_dir`` for this process until it exits; return the lock file's path.

    Raises :class:`RunDirLocked` when another live process holds it. On a filesystem without
    ``flock`` support, warns once and goes on unlocked.
    """
    run_dir = Path(run_dir)
    key = str(run_dir.resolve())
    path = run_dir / LOCK_NAME
    if key in _held:
        return path
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            pid = holder_pid(run_dir)
            who = f"pid {pid}" if pid is not None else "pid unknown"
            raise RunDirLocked(f"{run_dir}: in use by another meta-evo process ({who}); wait "
                               "for it to finish or stop it, then try again") from None
        sys.stderr.write(f"meta-evo: warning: {path}: cannot lock ({e.strerror}); going on "
                         "without a lock\n")
        return path
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    os.fsync(fd)
    _held[key] = fd
    return path


def release(run_dir: str | Path) -> None:
    """Give up this process's lock on ``run_dir`` (no-op when not held). The file stays."""
    fd = _held.pop(str(Path(run_dir).resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor drops the flock


def held(run_dir: str | Path) -> bool:
    """Whether this process holds the lock on ``run_dir``."""
    return str(Path(run_dir).resolve()) in _held
