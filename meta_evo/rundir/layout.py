"""What a run directory is: ``manifest.json`` says so, written when the directory is created.

``{"kind": "run" | "sweep" | "regions", "format": LAYOUT}``: a single run (``checkpoints/``,
``metrics.jsonl``, ``summary.json``), a sweep (``sweep_state/{arm}/``, ``sweep.npz``,
``report.*``) or a parent of child sweeps, one per training region or coverage share
(``region-*/`` or ``coverage-*/`` and the parent's report). ``meta-evo resume`` and ``analyze``
dispatch on it; a directory without one was written by an older meta-evo and is refused with one
line saying what still works. ``create`` never reuses an existing path and takes the
directory's lock (:mod:`meta_evo.lock`) before writing anything in it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from meta_evo.errors import RunDirError
from meta_evo.rundir.io import write_json

MANIFEST = "manifest.json"
LAYOUT = 2  # the run-directory format this version writes and resumes
KINDS = ("run", "sweep", "regions")


def default_out(family: str, kind: str = "run") -> Path:
    """``runs/<kind>-<family>-<timestamp>``."""
    return Path("runs") / f"{kind}-{family}-{time.strftime('%Y%m%d-%H%M%S')}"


def usable(path: Path) -> bool:
    """Whether ``path`` exists (RunDirError, one line, for a path the OS refuses)."""
    try:
        return path.exists()
    except (OSError, ValueError) as e:  # e.g. a NUL byte or an unencodable name
        raise RunDirError(f"{str(path)!r}: not a usable path ({e})") from None


def create(out: str | Path, kind: str) -> Path:
    """Create ``out`` (and parents), lock it and write its manifest; refuse if it exists
    already, whatever it holds."""
    out = Path(out)
    if usable(out):
        from meta_evo.lock import holder

        pid = holder(out) if out.is_dir() else None
        if pid is not None:
            who = f"pid {pid}" if pid > 0 else "pid unknown"
            raise RunDirError(f"{out}: run directory exists already and is in use by another "
                              f"meta-evo process ({who}); choose another --out")
        raise RunDirError(f"{out}: run directory exists already; choose another --out "
                          f"(or `meta-evo resume {out}` to continue it)")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
    except OSError as e:
        raise RunDirError(f"{out}: cannot create run directory ({e.strerror})") from None
    from meta_evo.lock import acquire

    acquire(out)  # held until the process exits: no second writer (see meta_evo.lock)
    write_manifest(out, kind)
    return out


def write_manifest(out: Path, kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"run directory kind {kind!r} (known: {', '.join(KINDS)})")
    write_json(out / MANIFEST, {"kind": kind, "format": LAYOUT})


def kind_of(path: str | Path) -> str:
    """The kind of the run directory ``path`` from its manifest. RunDirError (one line) when it
    is missing, not a run directory, or written by an older meta-evo."""
    path = Path(path)
    if not usable(path) or not path.is_dir():
        raise RunDirError(f"{path}: no such run directory")
    manifest = path / MANIFEST
    if not manifest.is_file():
        if not (path / "config.yaml").is_file():
            raise RunDirError(f"{path}: not a run directory (no manifest.json, no config.yaml)")
        raise RunDirError(_older(path, "no manifest.json"))
    try:
        m = json.loads(manifest.read_text())
        kind, fmt = m["kind"], m["format"]
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f"{path}: {MANIFEST} is not readable; not a run directory this "
                          "version can use") from None
    if fmt != LAYOUT or kind not in KINDS:
        raise RunDirError(_older(path, f"format {fmt!r}, kind {kind!r}"))
    return kind


def _older(path: Path, why: str) -> str:
    return (f"{path}: written by another version of meta-evo ({why}); its checkpoints cannot be "
            "resumed or analyzed by this one, but its plain files (config.yaml, metrics.jsonl, "
            "summary.json, report.json, sweep.npz) still read; to continue, start again from "
            f"its config: meta-evo run|sweep {path / 'config.yaml'} --out NEW_DIR")
