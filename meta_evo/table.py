"""A small column table for notebooks: numpy columns of one length, no pandas needed.

``Table(columns)``; ``len(t)``; ``t["metric"]`` (a column); ``t.where(arm="learner",
diversity=4)`` (rows where every named column equals the value); ``t.rows()`` (dicts);
``t.to_pandas()`` (a ``pandas.DataFrame`` when pandas is installed).
"""

from __future__ import annotations

import numpy as np


class Table:
    """Columns of equal length, in order."""

    def __init__(self, columns: dict):
        cols = {k: np.asarray(v) for k, v in columns.items()}
        lengths = {v.shape[0] for v in cols.values()}
        if len(lengths) > 1:
            raise ValueError(f"Table: columns of different lengths {sorted(lengths)}")
        self.columns = cols

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.columns)})"

    def where(self, **equal) -> Table:
        """The rows where each named column equals its value."""
        unknown = sorted(set(equal) - set(self.columns))
        if unknown:
            raise KeyError(f"Table.where: no column {unknown[0]!r} (columns: "
                           f"{', '.join(self.columns)})")
        keep = np.ones(len(self), bool)
        for k, v in equal.items():
            keep &= self.columns[k] == v
        return Table({k: c[keep] for k, c in self.columns.items()})

    def rows(self) -> list[dict]:
        return [{k: c[i].item() if c.ndim == 1 else c[i] for k, c in self.columns.items()}
                for i in range(len(self))]

    def to_pandas(self):
        """A ``pandas.DataFrame`` of the table (pandas is not a dependency of meta-evo)."""
        try:
            import pandas as pd
        except ImportError as e:
            raise ImportError("Table.to_pandas needs pandas: pip install pandas") from e
        return pd.DataFrame({k: list(c) if c.ndim > 1 else c for k, c in self.columns.items()})
