"""Every module the documents name exists: ``docs/DESIGN.md``, ``README.md`` and the docstrings
of ``meta_evo/**/*.py`` and ``kernels/*.py``.

Names of two kinds are checked:

- paths: ``meta_evo/x.py``, ``meta_evo/report/x.py`` (any subpackage), ``kernels/x.py``;
- dotted names: ``meta_evo.x``, ``meta_evo.report.x``, ``kernels.x``, ``meta_evo.kernels.x``
  (``meta_evo.kernels`` is the folder ``kernels/``). A dotted name resolves when its longest
  module prefix is a module of the tree and what follows is at most one attribute that the
  module defines at its top level (a function, a class, an assignment, an import, or a name
  in ``__all__``), plus, where that attribute is a class of the module, one name of the class
  body.

Everything is read from the source with ``ast``: nothing is imported (no JAX). Each test reports
every missing name at once, with the file that names it.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ("docs/DESIGN.md", "README.md")

# Repository-relative paths (not part of a longer path or word) ending in .py.
PATH_RE = re.compile(r"(?<![\w/.-])((?:meta_evo|kernels)(?:/\w+)*/\w+\.py)\b")
# Dotted names starting at meta_evo or kernels (not the tail of a longer dotted name).
DOTTED_RE = re.compile(r"(?<![\w./-])((?:meta_evo|kernels)(?:\.\w+)+)(?![\w/])")


def names_in(text: str) -> set[str]:
    """The module paths and dotted names of the forms above that ``text`` holds."""
    found = set(PATH_RE.findall(text))
    for name in DOTTED_RE.findall(text):
        if name.endswith((".py", ".md", ".yaml", ".json", ".png", ".txt")):
            continue  # a file name, not a dotted module name
        found.add(name)
    return found


def _module_file(parts: tuple[str, ...]) -> Path | None:
    """The source file of a dotted module (``("meta_evo", "report", "stats")``), or None."""
    if parts[:2] == ("meta_evo", "kernels"):
        parts = ("kernels",) + parts[2:]
    base = ROOT.joinpath(*parts)
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _bound_names(body: list[ast.stmt]) -> set[str]:
    """Names a module or class body binds at its own level (descending into ``if``/``try``/
    ``with``/``for`` blocks, never into functions)."""
    out: set[str] = set()

    def targets(node):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                targets(elt)

    for stmt in body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(stmt.name)
        elif isinstance(stmt, ast.Assign):
            for t in stmt.targets:
                targets(t)
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in stmt.targets):
                if isinstance(stmt.value, (ast.List, ast.Tuple)):
                    out.update(e.value for e in stmt.value.elts
                               if isinstance(e, ast.Constant) and isinstance(e.value, str))
        elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
            targets(stmt.target)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            for alias in stmt.names:
                out.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for block in ("body", "orelse", "finalbody"):
                out |= _bound_names(getattr(stmt, block, []) or [])
            for handler in getattr(stmt, "handlers", []):
                out |= _bound_names(handler.body)
    return out


@functools.cache
def _module_info(path: Path) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """``(top-level names, {class name: names of its body})`` of a source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes = {s.name: frozenset(_bound_names(s.body)) for s in tree.body
               if isinstance(s, ast.ClassDef)}
    return frozenset(_bound_names(tree.body)), classes


def resolves(name: str) -> bool:
    """Whether a path or dotted name of the forms above names something in the tree."""
    if name.endswith(".py"):
        return (ROOT / name).is_file()
    parts = tuple(name.split("."))
    for cut in range(len(parts), 0, -1):
        path = _module_file(parts[:cut])
        if path is None:
            continue
        rest = parts[cut:]
        if not rest:
            return True
        top, classes = _module_info(path)
        if rest[0] not in top:
            return False
        if len(rest) == 1:
            return True
        return len(rest) == 2 and rest[1] in classes.get(rest[0], frozenset())
    return False


def docstrings(path: Path) -> str:
    """Every module, class and function docstring of a source file, joined."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append(doc)
    return "\n".join(out)


def source_files() -> list[Path]:
    return sorted((ROOT / "meta_evo").rglob("*.py")) + sorted((ROOT / "kernels").glob("*.py"))


def missing_in(texts: dict[str, str]) -> list[str]:
    """``"file: name"`` for every name of a text that does not resolve, sorted."""
    return sorted(f"{where}: {name}" for where, text in texts.items()
                  for name in names_in(text) if not resolves(name))


def test_resolver_known_answers():
    # modules, paths and attributes that exist
    for name in ("meta_evo.engine", "meta_evo/report/stats.py", "kernels/emergence.py",
                 "kernels.emergence.emergence_onset", "meta_evo.kernels.pursuit.proxy_pull",
                 "meta_evo.kernels", "kernels.lifetime_gain", "meta_evo.report.which_objective",
                 "meta_evo.meta.Meta.run_chunk", "meta_evo.learners.base.make_lifetime",
                 "meta_evo.run"):  # run: named in meta_evo.__all__, loaded lazily
        assert resolves(name), name
    # names that do not
    for name in ("meta_evo.nope", "meta_evo/nope.py", "kernels/nope.py", "kernels.nope",
                 "meta_evo.report.nope", "meta_evo.kernels.emergence.nope",
                 "meta_evo.engine.nope", "meta_evo.meta.Meta.nope", "meta_evo/report/nope.py"):
        assert not resolves(name), name
    text = ("see meta_evo/engine.py, `meta_evo.report.stats`, kernels.regime.row_spread and "
            "meta_evo.kernels.objective; not report.json, not my_kernels.x, not "
            "/usr/lib/meta_evo/x.py, and a sentence that ends with meta_evo.sweep.")
    assert names_in(text) == {"meta_evo/engine.py", "meta_evo.report.stats",
                              "kernels.regime.row_spread", "meta_evo.kernels.objective",
                              "meta_evo.sweep"}


def test_documents_name_existing_modules():
    texts = {doc: (ROOT / doc).read_text(encoding="utf-8") for doc in DOCUMENTS}
    assert all(names_in(t) for t in texts.values()), "no module name found: the regex is broken"
    missing = missing_in(texts)
    assert not missing, "modules named in the documents that do not exist:\n" + "\n".join(missing)


def test_docstrings_name_existing_modules():
    texts = {str(p.relative_to(ROOT)): docstrings(p) for p in source_files()}
    assert sum(len(names_in(t)) for t in texts.values()) > 20, "the regex finds too little"
    missing = missing_in(texts)
    assert not missing, "modules named in docstrings that do not exist:\n" + "\n".join(missing)
