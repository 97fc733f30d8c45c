"""A finished sweep, read back for a notebook: ``load_sweep(dir)``.

``SweepResults`` holds the run directory's config, ``sweep.npz`` and ``report.json`` and offers:

- ``table``: one row per (arm, grid point, measured generation, metric) with the point's
  intensity, raw pressure, seed and diversity and the metric's value: every per-point scalar the
  measurement kernels wrote to ``sweep.npz``;
- ``tests``: one row per (test, intensity level) of the report's primary, exploratory and
  reference tests: the per-level difference, its interval, its p-value before the sequence and
  Holm, and whether the level is significant in its family;
- ``points``: the grid (index, intensity, pressure, seed, diversity);
- ``theta(point, arm)``: an evolved mean theta; ``history(name, arm)``: a meta-generation curve;
- ``meta(arm)`` and ``rollout(point_or_theta, task, arm)``: the arm's learner, and one lifetime
  of an evolved learner step by step (:mod:`meta_evo.rollout`).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import numpy as np

from meta_evo.config import read_run_config
from meta_evo.errors import RunDirError
from meta_evo.table import Table

POINT_AXES = ("intensity", "pressure", "seed", "diversity")


def load_sweep(path: str | Path) -> SweepResults:
    """The finished sweep in ``path`` (RunDirError, one line, when it is not one)."""
    return SweepResults(Path(path))


class SweepResults:
    """See the module docstring."""

    def __init__(self, path: Path):
        from meta_evo.child_sweeps import children, has_children

        self.path = path
        self.cfg = read_run_config(path)
        if has_children(self.cfg):
            names = ", ".join(c.dirname for c in children(self.cfg))
            raise RunDirError(f"{path}: holds one sweep per region or coverage share; load one "
                              f"of its subdirectories ({names})")
        if not (path / "sweep.npz").is_file():
            raise RunDirError(f"{path}: no sweep.npz (not a sweep, or not finished: "
                              f"meta-evo resume {path})")
        with np.load(path / "sweep.npz") as z:
            self.arrays = {k: z[k] for k in z.files}
        report = path / "report.json"
        self.report = json.loads(report.read_text()) if report.is_file() else None
        self.arms = sorted({k.split("/")[0] for k in self.arrays} - {"grid"},
                           key=lambda a: ("learner", "control", "reference").index(a)
                           if a in ("learner", "control", "reference") else 3)
        self._metas: dict = {}

    def __repr__(self) -> str:
        return (f"SweepResults({self.path}: {len(self.points)} points, arms "
                f"{', '.join(self.arms)}, {len(self.table)} measured values)")

    @cached_property
    def points(self) -> Table:
        cols = {"point": np.arange(self.arrays["grid/seed"].shape[0])}
        cols.update({a: self.arrays[f"grid/{a}"] for a in POINT_AXES})
        return Table(cols)

    def generations(self, arm: str = "learner") -> list[int]:
        return sorted({int(k.split("/")[1]) for k in self.arrays
                       if k.startswith(f"{arm}/") and k.split("/")[1].isdigit()})

    @cached_property
    def table(self) -> Table:
        pts = self.points
        parts: dict[str, list] = {c: [] for c in ("arm", "point", *POINT_AXES, "generation",
                                                  "metric", "value")}
        for arm in self.arms:
            for gen in self.generations(arm):
                for key in sorted(k for k in self.arrays if k.startswith(f"{arm}/{gen}/")):
                    values = self.arrays[key]
                    if values.ndim != 1:
                        continue  # matrices and curves stay in .arrays
                    n = values.shape[0]
                    parts["arm"].append(np.full(n, arm))
                    parts["point"].append(pts["point"])
                    for a in POINT_AXES:
                        parts[a].append(pts[a])
                    parts["generation"].append(np.full(n, gen))
                    parts["metric"].append(np.full(n, key.split("/", 2)[2]))
                    parts["value"].append(values.astype(np.float64))
        return Table({k: np.concatenate(v) for k, v in parts.items()})

    @cached_property
    def tests(self) -> Table:
        rows = []
        rep = self.report or {}
        for group in ("onsets", "contrasts", "reference_tests"):
            for t in rep.get(group, []):
                for i, lv in enumerate(t.get("levels") or []):
                    sig = t.get("significant") or []
                    rows.append({
                        "role": t.get("role", ""), "arm": t["arm"], "metric": t["metric"],
                        "diversity": t["diversity"], "against": t.get("control", ""),
                        "intensity": lv["intensity"], "difference": lv["difference"],
                        "ci_low": lv["ci"][0], "ci_high": lv["ci"][1], "p_level": lv["p"],
                        "significant": bool(sig[i]) if i < len(sig) else False})
        if not rows:
            return Table({})
        return Table({k: np.array([r[k] for r in rows]) for k in rows[0]})

    def point_index(self, point) -> int:
        """A grid index from an int or a dict of coordinates (``intensity``, ``seed``,
        ``diversity``, ``pressure``) that picks exactly one point."""
        if isinstance(point, int | np.integer):
            if not 0 <= point < len(self.points):
                raise IndexError(f"point {point}: the grid has {len(self.points)} points")
            return int(point)
        match = self.points.where(**point)
        if len(match) != 1:
            raise KeyError(f"point {point}: matches {len(match)} grid points; name "
                           f"{', '.join(POINT_AXES)} until one is left")
        return int(match["point"][0])

    def theta(self, point, arm: str = "learner") -> np.ndarray:
        """The evolved mean theta of ``arm`` at ``point`` (index or coordinates)."""
        self._check_arm(arm)
        return self.arrays[f"{arm}/theta"][self.point_index(point)]

    def history(self, name: str, arm: str = "learner") -> np.ndarray:
        """A meta-generation curve ``[G, generations]`` (e.g. ``fitness_mean``)."""
        self._check_arm(arm)
        key = f"{arm}/history/{name}"
        if key not in self.arrays:
            have = sorted(k.rsplit("/", 1)[1] for k in self.arrays
                          if k.startswith(f"{arm}/history/"))
            raise KeyError(f"history {name!r}: not recorded (have: {', '.join(have)})")
        return self.arrays[key]

    def meta(self, arm: str = "learner", reward: str = "given"):
        """The :class:`meta_evo.meta.Meta` of ``arm`` (its learner kind and training region)
        with reward channel ``reward`` (the measurement's ``given`` by default)."""
        from meta_evo.meta import Meta
        from meta_evo.sweep import arms_of

        self._check_arm(arm)
        if (arm, reward) not in self._metas:
            a = next(a for a in arms_of(self.cfg) if a.name == arm)
            self._metas[arm, reward] = Meta(a.config(self.cfg), a.kind, reward)
        return self._metas[arm, reward]

    def heldout_tasks(self, n: int = 8, key: int = 0) -> np.ndarray:
        """``n`` tasks drawn from the family's held-out distribution ``[n, task_dim]``."""
        import jax

        meta = self.meta()
        return np.asarray(meta.family.heldout_tasks(jax.random.PRNGKey(key), n))

    def rollout(self, point_or_theta, task, arm: str = "learner", key=0,
                reward: str = "given"):
        """One lifetime (:func:`meta_evo.rollout.rollout`) of the evolved learner of ``arm``
        at a grid point (index or coordinates), or of a given theta."""
        from meta_evo.rollout import rollout

        theta = (point_or_theta if isinstance(point_or_theta, np.ndarray)
                 and point_or_theta.ndim == 1 else self.theta(point_or_theta, arm))
        return rollout(self.meta(arm, reward), theta, task, key)

    def _check_arm(self, arm: str) -> None:
        if arm not in self.arms:
            raise KeyError(f"arm {arm!r}: this sweep has {', '.join(self.arms)}")
