"""The plain files of a run directory: atomic JSON, appended and rewritten JSONL, and
JSON-ready scalars. A process killed at any point leaves either the old file or the new one."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np


def to_py(x):
    """JSON-ready Python scalars (or nested lists) from numpy/JAX values; NaN and inf become
    None."""
    a = np.asarray(x)
    if a.ndim == 0:
        v = a.item()
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v
    return [to_py(v) for v in a]


def write_json(path: Path, obj) -> None:
    """Write JSON atomically (temp file, then rename): never a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False))
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    """Write text atomically (temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append one JSON line per row and sync it to disk."""
    with path.open("a") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        f.flush()
        os.fsync(f.fileno())


def write_lines(path: Path, lines: list[str]) -> None:
    """Replace ``path`` atomically by ``lines`` (each without its newline)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        f.writelines(line + "\n" for line in lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a JSONL file; a torn last line (a process killed mid-write) is ignored."""
    rows = []
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows
