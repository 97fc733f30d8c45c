"""The figures of ``meta-evo analyze`` (:mod:`meta_evo.analysis`), drawn from its result dict:
one PNG per scalar over meta-generations, an overview grid, the lifetime curves and the
cross-task matrices of the first and last analyzed generation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

REFERENCE_LINES = {"lifetime_gain": 0.0, "objective_sensitivity": 0.0, "online_share": 0.0,
                   "update_alignment": 0.0}


def plot_analysis(result: dict, out_dir: Path) -> list[Path]:
    """One PNG per scalar over meta-generations, an overview grid, the lifetime curves and the
    cross-task matrix of the first and last analyzed generation."""
    written = [_plot_scalar(result, name, out_dir) for name in result["scalars"]]
    written.append(_plot_overview(result, out_dir))
    steps = result["steps"]
    if steps and "curve" in steps[0]:
        written.append(_plot_curves(steps, out_dir))
    if steps and "matrix" in steps[0]:
        written.append(_plot_matrices(steps, out_dir))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _draw_scalar(ax, result: dict, name: str) -> None:
    """Scalar ``name`` over the analyzed meta-generations, with its reference line."""
    gens = result["generations"]
    n = result["heldout_tasks"]
    ys = [r["metrics"][name] for r in result["steps"]]
    ys = [np.nan if y is None else y for y in ys]
    ax.plot(gens, ys, "o-", color="C0")
    if name in REFERENCE_LINES:
        ax.axhline(REFERENCE_LINES[name], color="grey", lw=0.8, ls="--")
    if name == "behavioral_accuracy":
        ax.axhline(1.0 / n, color="grey", lw=0.8, ls="--", label=f"chance 1/{n}")
        ax.legend(fontsize=7)
    ax.set_title(name, fontsize=9)
    ax.set_xlabel("meta-generation", fontsize=8)
    ax.tick_params(labelsize=7)


def _plot_scalar(result: dict, name: str, out_dir: Path) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    _draw_scalar(ax, result, name)
    return _save(fig, out_dir / f"{name}.png")


def _plot_overview(result: dict, out_dir: Path) -> Path:
    """Every scalar in one grid, four to a row."""
    import matplotlib.pyplot as plt

    k = len(result["scalars"])
    cols = 4
    rows = max(1, math.ceil(k / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, result["scalars"], strict=False):
        _draw_scalar(ax, result, name)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    fig.suptitle(f"kernels over meta-generations: {result['run_dir']}", fontsize=9)
    return _save(fig, out_dir / "overview.png")


def _plot_curves(steps: list[dict], out_dir: Path) -> Path:
    """The mean lifetime curve of every analyzed generation, coloured by generation."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(steps):
        c = [np.nan if v is None else v for v in r["curve"]]
        ax.plot(range(len(c)), c, color=cmap(i / max(len(steps) - 1, 1)),
                label=f"gen {r['generation']}")
    ax.set_xlabel("lifetime update k", fontsize=8)
    ax.set_ylabel("held-out return", fontsize=8)
    ax.set_title("lifetime curves (mean over held-out tasks)", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, out_dir / "curves.png")


def _plot_matrices(steps: list[dict], out_dir: Path) -> Path:
    """The cross-task matrix of the first and last analyzed generation."""
    import matplotlib.pyplot as plt

    pick = [steps[0], steps[-1]] if len(steps) > 1 else [steps[0]]
    fig, axes = plt.subplots(1, len(pick), figsize=(4.2 * len(pick), 3.4), squeeze=False)
    for ax, r in zip(axes.flat, pick, strict=True):
        mtx = np.array([[np.nan if v is None else v for v in row] for row in r["matrix"]])
        im = ax.imshow(mtx, cmap="magma")
        ax.set_title(f"M[a, b], generation {r['generation']}", fontsize=9)
        ax.set_xlabel("scored on column b (tasks, then proxies)", fontsize=7)
        ax.set_ylabel("lifetime on task a", fontsize=7)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, out_dir / "matrix.png")
