"""What produced a result: meta-evo's version, its git commit, the versions of the libraries
that compute, the command line, the host and the start time (recorded in ``summary.json`` and
``report.json``).

This module imports nothing heavy (no jax): ``meta-evo --version`` reads it before anything
else. A version or commit that cannot be found is ``None``, never a placeholder.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# the distributions whose versions decide the numbers (PyPI names, as importlib.metadata reads)
PACKAGES = ("jax", "jaxlib", "evosax", "brax", "mujoco", "flax", "optax", "orbax-checkpoint",
            "numpy", "scipy")
_IMPORTED = time.time()  # fallback start time where /proc is not readable


def package_version(dist: str) -> str | None:
    """The installed version of the distribution ``dist``, or None when it is not installed."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def meta_evo_version() -> str:
    """meta-evo's version: the installed distribution's, else (run from a checkout that was
    never installed) the package's own ``meta_evo.__version__``."""
    installed = package_version("meta-evo")
    if installed is not None:
        return installed
    return sys.modules["meta_evo"].__version__  # the package: imported before this module


def git_commit() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` when meta-evo runs from a git checkout of itself (the package's
    directory is ``<toplevel>/meta_evo``), else ``(None, None)``. ``dirty``: tracked files
    differ from the commit."""
    here = Path(__file__).resolve().parent

    def git(*args) -> str:
        return subprocess.run(["git", *args], cwd=here, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        if Path(top).resolve() / "meta_evo" != here:  # an install inside some other repository
            return None, None
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):  # no git, not a checkout, no commit yet
        return None, None
    return (commit or None), dirty


def process_start() -> float:
    """When this process started (seconds since the epoch): Linux's /proc, else the time this
    module was first imported."""
    try:
        stat = Path("/proc/self/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime, clock ticks
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1]) + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORTED


def versions() -> dict:
    """``{"meta-evo": ..., "python": ..., <each of PACKAGES>: version or None}``."""
    out = {"meta-evo": meta_evo_version(), "python": platform.python_version()}
    out.update({p: package_version(p) for p in PACKAGES})
    return out


def provenance() -> dict:
    """Everything needed to say what produced a result: ``meta_evo`` (version), ``git_commit``
    and ``git_dirty`` (None outside a checkout), ``versions`` (:func:`versions`), ``argv``
    (the command line), ``host``, ``started_utc`` (this process's start, ISO 8601, UTC)."""
    commit, dirty = git_commit()
    started = _dt.datetime.fromtimestamp(process_start(), _dt.timezone.utc)
    return {"meta_evo": meta_evo_version(), "git_commit": commit, "git_dirty": dirty,
            "versions": versions(), "argv": list(sys.argv), "host": platform.node() or None,
            "started_utc": started.isoformat(timespec="seconds")}


def platform_info() -> dict:
    """The backend, the first device's kind, the device count, the machine and its CPUs."""
    import jax

    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": getattr(dev, "device_kind", str(dev)),
            "device_count": jax.device_count(), "machine": platform.machine(),
            "cpu_count": os.cpu_count()}
