"""How every report figure is drawn, for files and for notebooks.

A figure function is ``f(rep, path=None, *, axes=None) -> Figure``: it draws from the report
dict alone, into new axes or into the ``axes`` given (as many as the figure has panels, in
row order: a notebook lays figures out itself), saves to ``path`` when one is given (and then
closes the figure: the report writer makes many) and returns the ``Figure``. No backend is
chosen here: the CLI uses Agg, a notebook its own.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

DPI = 110


def panels(rows: int, cols: int, figsize, axes=None, **subplots):
    """``(figure, axes [rows, cols])``: new, or the given ``axes`` (ValueError, one line, when
    their number is not ``rows * cols``)."""
    if axes is None:
        return plt.subplots(rows, cols, figsize=figsize, squeeze=False, **subplots)
    grid = np.asarray(axes, dtype=object)
    if grid.size != rows * cols:
        raise ValueError(f"axes: this figure has {rows} x {cols} panels, got {grid.size} axes")
    grid = grid.reshape(rows, cols)
    return grid.flat[0].figure, grid


def finish(fig, path=None, dpi: int = DPI):
    """Save ``fig`` to ``path`` (then close it) when a path is given; return ``fig``."""
    if path is not None:
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig
