"""Write ``examples/quickstart.ipynb`` from ``examples/quickstart.py`` (percent format: cells start
at ``# %%``; ``# %% [markdown]`` cells are comment lines of markdown). Standard library only.

    python examples/make_notebook.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cells(script: str) -> list[dict]:
    """The notebook cells of a percent-format script."""
    out = []
    for block in re.split(r"^# %%", script, flags=re.M)[1:]:
        head, _, body = block.partition("\n")
        lines = body.strip("\n").split("\n")
        if head.strip() == "[markdown]":
            text = [ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in lines]
            out.append({"cell_type": "markdown", "metadata": {}, "source": _source(text)})
        else:
            out.append({"cell_type": "code", "execution_count": None, "metadata": {},
                        "outputs": [], "source": _source(lines)})
    return out


def _source(lines: list[str]) -> list[str]:
    return [ln + "\n" for ln in lines[:-1]] + lines[-1:]


def notebook(script: str) -> dict:
    return {"cells": cells(script), "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                        "name": "python3"},
                         "language_info": {"name": "python"}}}


def render(script: str) -> str:
    return json.dumps(notebook(script), indent=1) + "\n"


if __name__ == "__main__":
    (HERE / "quickstart.ipynb").write_text(render((HERE / "quickstart.py").read_text()))
