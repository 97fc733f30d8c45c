"""The report sits on top of the measurements, not of the machinery that ran them: no module of
``meta_evo/report/`` imports the meta-optimizer, the strategies, the engine, the sweep, the API
or the command line (at module level or inside a function). What the report needs of selection
it computes from ``kernels.selection``, with the meta-optimizer's numbers exactly."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "meta_evo" / "report"
FORBIDDEN = ("meta_evo.meta", "meta_evo.strategies", "meta_evo.engine", "meta_evo.sweep",
             "meta_evo.single_run", "meta_evo.cli")


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, dotted name)`` of every import of a module, ``from a import b`` read as both
    ``a`` and ``a.b`` (``b`` may be a module)."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append((node.lineno, node.module))
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return out


def forbidden(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_imported_modules_reads_every_form():
    tree = ast.parse("import meta_evo.sweep\nfrom meta_evo import meta\n"
                     "def f():\n    from meta_evo.engine import x\n"
                     "from meta_evo.report.common import py\nimport meta_evo.measure\n")
    bad = {n for _, n in imported_modules(tree) if forbidden(n)}
    assert bad == {"meta_evo.sweep", "meta_evo.meta", "meta_evo.engine", "meta_evo.engine.x"}
    assert not forbidden("meta_evo.metadata") and not forbidden("meta_evo.apis")


def test_report_imports_nothing_above_it():
    files = sorted(REPORT.rglob("*.py"))
    assert len(files) > 10
    bad = [f"{p.relative_to(ROOT)}:{line}: {name}" for p in files
           for line, name in imported_modules(ast.parse(p.read_text(encoding="utf-8")))
           if forbidden(name)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("selection,pressures", [
    ("truncation", [0.02, 0.1, 0.25, 0.5, 0.9, 1.0]),
    ("boltzmann", [0.0, 0.5, 1.0, 3.0, 10.0]),
])
def test_report_and_meta_optimizer_use_one_rank_weights(selection, pressures):
    """One definition: the meta-optimizer and the report both call the kernel's, and it is
    the scheme's own weights."""
    from meta_evo.kernels import selection as ks

    from meta_evo import meta
    from meta_evo.report import selection as rs

    assert meta.rank_weights is ks.rank_weights and rs.rank_weights is ks.rank_weights
    own = ks.truncation_weights if selection == "truncation" else ks.boltzmann_weights
    for n in (8, 64):
        for p in pressures:
            np.testing.assert_array_equal(np.asarray(ks.rank_weights(selection, n, p)),
                                          np.asarray(own(n, p)))
    with pytest.raises(ValueError, match="meta.selection"):
        ks.rank_weights("tournament", 8, 0.5)
